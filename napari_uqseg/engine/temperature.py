"""Temperature scaling (Guo et al. 2017) of any method, fitted on validation voxels in the foreground bounding box.

Every sample's logits are divided by one ``T`` before their softmax (calibrate-then-pool, see
``UQMethod.probabilities``), so the mean probability and every uncertainty map stay consistent with each
other. ``T`` minimises the NLL of the *pooled* prediction ``mean_m softmax(z_m / T)`` on validation voxels
inside each case's ground-truth bounding box, the ROI the ECE is measured in: whole-volume fitting would be
dominated by trivially-correct background. For a single-pass method this is plain temperature scaling.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import torch

from napari_uqseg.core.metrics import roi_mask
from napari_uqseg.engine.data import Case

if TYPE_CHECKING:
    from napari_uqseg.engine.methods.base import UQMethod

#: most logit entries (samples x voxels x classes) kept for the fit; more voxels are subsampled
MAX_ENTRIES = 20_000_000


def calibration_window(case: Case, patch: tuple[int, ...]) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """One patch-sized window centred on the case's ground-truth bounding box.

    A volume smaller than the patch is centred in it and padded with its minimum, as the sliding window
    pads; the padding is outside the ROI.

    Returns
    -------
    (torch.Tensor, np.ndarray, np.ndarray)
        Image ``(1, 1, *patch)``, labels ``(*patch)`` int64 and ROI ``(*patch)`` bool.
    """
    roi_full = roi_mask(case.label, "gt_bbox")
    found = np.argwhere(roi_full)
    shape = case.label.shape
    centre = (found.min(0) + found.max(0)) // 2 if found.size else np.array(shape) // 2
    image = np.full(patch, case.image.min(), np.float32)
    label = np.zeros(patch, np.int64)
    roi = np.zeros(patch, bool)
    src, dst = [], []
    for size, p, c in zip(shape, patch, centre, strict=True):
        if size <= p:
            start = (p - size) // 2
            src.append(slice(0, size))
            dst.append(slice(start, start + size))
        else:
            start = int(np.clip(c - p // 2, 0, size - p))
            src.append(slice(start, start + p))
            dst.append(slice(0, p))
    src, dst = tuple(src), tuple(dst)
    image[dst], label[dst], roi[dst] = case.image[src], case.label[src], roi_full[src]
    return torch.from_numpy(image)[None, None], label, roi


@contextmanager
def recorded_logits(method: UQMethod) -> Iterator[list[torch.Tensor]]:
    """Within the block, every logit tensor the method turns into probabilities is appended to the
    yielded list as ``(k, C, *S)``, on the CPU. Meant for a batch of *one* window: methods that tile their
    samples along the batch axis (MC-Dropout, Masksembles, partial_bayes) then give one sample per row."""
    records: list[torch.Tensor] = []
    plain = type(method).probabilities

    def record(logits: torch.Tensor, dim: int = 1) -> torch.Tensor:
        classes = logits.shape[dim]
        records.append(logits.detach().reshape(-1, classes, *logits.shape[dim + 1 :]).float().cpu())
        return plain(method, logits, dim)

    method.probabilities = record  # an instance attribute shadows the class's method
    try:
        yield records
    finally:
        del method.probabilities


@torch.no_grad()
def validation_logits(
    method: UQMethod, cases: list[Case], max_entries: int = MAX_ENTRIES, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample logits ``(M, N, C)`` and labels ``(N,)`` of ROI voxels of ``cases``, one window each."""
    method.eval()
    zs, ys = [], []
    with recorded_logits(method) as records:
        for case in cases:
            image, label, roi = calibration_window(case, tuple(method.patch_size))
            records.clear()
            method.window_statistics(image.to(method.device))
            logits = torch.cat(records)  # (M, C, *patch)
            inside = torch.from_numpy(roi)
            zs.append(logits[:, :, inside].transpose(1, 2))
            ys.append(torch.from_numpy(label[roi]))
    z, y = torch.cat(zs, dim=1), torch.cat(ys)
    keep = max(1, max_entries // (z.shape[0] * z.shape[2]))
    if len(y) > keep:
        index = torch.from_numpy(np.sort(np.random.default_rng(seed).choice(len(y), keep, replace=False)))
        z, y = z[:, index], y[index]
    return z, y


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, iterations: int = 100) -> float:
    """Scalar ``T > 0`` minimising ``-mean log mean_m softmax(logits_m / T)[label]``.

    Parameters
    ----------
    logits : torch.Tensor
        ``(M, N, C)`` logits of ``M`` samples (``(N, C)``: one sample).
    labels : torch.Tensor
        ``(N,)`` int64 classes.

    Returns
    -------
    float
        ``T = exp(tau)`` (the parametrisation keeps it positive), fitted by LBFGS.
    """
    z = (logits if logits.ndim == 3 else logits[None]).detach().float()
    index = labels.detach().view(1, -1, 1).expand(z.shape[0], -1, 1)
    log_m = math.log(z.shape[0])
    tau = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([tau], lr=0.1, max_iter=iterations, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        true_class = torch.log_softmax(z / tau.exp(), dim=-1).gather(-1, index)[..., 0]  # (M, N)
        loss = -(torch.logsumexp(true_class, dim=0) - log_m).mean()
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(tau.detach().exp())


def fit_method_temperature(method: UQMethod, cases: list[Case], seed: int = 0) -> float:
    """Fit the temperature of ``method`` on validation ``cases`` (normalised) and return it.

    ``method.temperature`` is left unchanged; the caller sets it.
    """
    logits, labels = validation_logits(method, cases, seed=seed)
    return fit_temperature(logits, labels)
