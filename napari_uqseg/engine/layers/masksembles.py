"""Masksembles layer (Durasov et al., CVPR 2021): N fixed channel masks with controlled overlap."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from napari_uqseg.core.errors import InputError


def _draw(ones: int, n: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    """N masks of width ``int(ones * scale)`` with ``ones`` random ones each; all-zero columns dropped."""
    width = int(ones * scale)
    masks = np.zeros((n, width), dtype=np.float32)
    for row in masks:
        row[rng.choice(width, size=ones, replace=False)] = 1.0
    return masks[:, masks.any(axis=0)]


def generate_masks(channels: int, n: int, scale: float, seed: int = 0, max_tries: int = 2000) -> np.ndarray:
    """The paper's mask generation, searching the scale until exactly ``channels`` columns survive.

    Each of the ``n`` masks keeps ``M = channels / (S (1 - (1 - 1/S)^n))`` channels drawn from
    ``M * S`` positions, so two masks overlap with expected IoU ``1 / (2S - 1)``.

    Returns
    -------
    np.ndarray
        ``(n, channels)`` float32 of 0/1.

    Raises
    ------
    InputError
        ``scale < 1``, or no mask set of that width was found within ``max_tries`` draws.
    """
    if scale < 1.0 or n < 1:
        raise InputError("masksembles", f"needs scale >= 1 and n >= 1, got scale={scale}, n={n}")
    if n == 1 or scale == 1.0:
        return np.ones((n, channels), dtype=np.float32)
    rng = np.random.default_rng(seed)
    ones = max(1, int(channels / (scale * (1 - (1 - 1 / scale) ** n))))
    lo, hi = max(0.8 * scale, 1.0), 1.2 * scale
    for _ in range(max_tries):
        s = (lo + hi) / 2
        masks = _draw(ones, n, s, rng)
        if masks.shape[1] == channels:
            return masks
        if masks.shape[1] > channels:
            hi = s
        else:
            lo = s
        if hi - lo < 1e-4:  # the width is random: reopen the interval instead of stalling
            lo, hi = max(0.8 * scale, 1.0), 1.2 * scale
    raise InputError("masksembles", f"could not generate {n} masks of {channels} channels at scale {scale}")


class MasksemblesLayer(nn.Module):
    """Multiplies batch chunk ``j`` by mask ``j``: ``(B, C, *S) -> (B, C, *S)``, ``B`` a multiple of ``n``.

    The masks are a persistent buffer, so they are saved and restored with the model. Setting ``only``
    to a mask index applies that one mask to the whole batch (one mask at a time, any batch size).
    """

    def __init__(self, channels: int, n: int = 4, scale: float = 2.0, seed: int = 0) -> None:
        super().__init__()
        self.n = n
        self.only: int | None = None
        self.register_buffer("masks", torch.from_numpy(generate_masks(channels, n, scale, seed)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        if self.only is not None:
            return x * self.masks[self.only].to(x.dtype).view(1, -1, *([1] * (x.ndim - 2)))
        if batch % self.n:
            raise RuntimeError(f"Masksembles needs a batch that is a multiple of {self.n}, got {batch}")
        mask = self.masks.to(x.dtype).repeat_interleave(batch // self.n, dim=0)
        return x * mask.view(batch, -1, *([1] * (x.ndim - 2)))


def mask_overlap(masks: np.ndarray) -> float:
    """Mean pairwise IoU of the masks (the paper's design target is ``1 / (2S - 1)``)."""
    n = len(masks)
    ious = [
        np.logical_and(masks[i], masks[j]).sum() / np.logical_or(masks[i], masks[j]).sum()
        for i in range(n)
        for j in range(i + 1, n)
    ]
    return float(np.mean(ious)) if ious else 1.0
