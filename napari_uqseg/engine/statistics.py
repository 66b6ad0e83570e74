"""Streaming statistics of stochastic softmax outputs (torch); memory independent of the sample count."""

from __future__ import annotations

from collections.abc import Iterator

import torch

EPS = 1e-12


def entropy(prob: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Shannon entropy in nats along ``dim`` with ``0 log 0 = 0``; ``(B, C, *S) -> (B, 1, *S)``."""
    return -torch.special.xlogy(prob, prob).sum(dim=dim, keepdim=True)


class SampleStatistics:
    """Running sums of ``p``, ``p**2`` and ``H(p)`` over samples ``p`` of shape ``(B, C, *S)``.

    ``add`` may be called with one sample or with ``k`` samples stacked along a leading axis
    ``(k, B, C, *S)``; ``result()`` returns the means as the dict every method's
    ``window_statistics`` returns: ``mean_prob``, ``mean_sq_prob`` ``(B, C, *S)`` and
    ``expected_entropy`` ``(B, 1, *S)``.
    """

    def __init__(self) -> None:
        self.n = 0
        self._sum_p: torch.Tensor | None = None
        self._sum_p2: torch.Tensor | None = None
        self._sum_h: torch.Tensor | None = None

    def add(self, prob: torch.Tensor, stacked: bool = False) -> None:
        prob = prob.float()
        k = prob.shape[0] if stacked else 1
        p = prob.sum(0) if stacked else prob
        p2 = (prob * prob).sum(0) if stacked else prob * prob
        h = entropy(prob, dim=2 if stacked else 1)
        h = h.sum(0) if stacked else h
        if self._sum_p is None:  # own copy: the sums are updated in place, the caller's sample must not be
            self._sum_p, self._sum_p2, self._sum_h = (p if stacked else p.clone()), p2, h
        else:
            self._sum_p += p
            self._sum_p2 += p2
            self._sum_h += h
        self.n += k

    def add_tiled(self, prob: torch.Tensor, k: int) -> None:
        """Add ``k`` samples computed on a batch tiled by :func:`tile_samples`: ``(k * B, C, *S)``."""
        self.add(prob.view(k, prob.shape[0] // k, *prob.shape[1:]), stacked=True)

    def result(self) -> dict[str, torch.Tensor]:
        if self.n == 0 or self._sum_p is None:
            raise RuntimeError("no samples were added")
        return {
            "mean_prob": self._sum_p / self.n,
            "mean_sq_prob": self._sum_p2 / self.n,
            "expected_entropy": self._sum_h / self.n,
        }


def tile_samples(t: torch.Tensor, k: int) -> torch.Tensor:
    """``(B, ...) -> (k * B, ...)``: chunk ``j`` of the result is sample ``j`` of every window
    (sample-major, so ``result.view(k, B, ...)`` separates the samples again); ``t`` itself when ``k == 1``."""
    return t if k == 1 else t.repeat(k, *([1] * (t.ndim - 1)))


def sample_chunks(samples: int, chunk: int) -> Iterator[int]:
    """Sizes of consecutive chunks of at most ``chunk`` samples that add up to ``samples``."""
    done = 0
    while done < samples:
        k = min(chunk, samples - done)
        yield k
        done += k


def single_sample_statistics(prob: torch.Tensor) -> dict[str, torch.Tensor]:
    """Statistics of a deterministic prediction (one sample)."""
    stats = SampleStatistics()
    stats.add(prob)
    return stats.result()
