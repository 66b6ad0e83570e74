"""Temperature scaling (Guo et al. 2017) fitted on validation voxels in the foreground bounding box."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from napari_uqseg.core.metrics import roi_mask
from napari_uqseg.engine.data import Case


def roi_logits(
    logits_of: Callable[[Case], torch.Tensor], cases: list[Case], max_voxels: int = 2_000_000, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``(N, C)`` and labels ``(N,)`` of voxels in each case's ground-truth bounding box.

    Whole-volume fitting would be dominated by trivially-correct background, so the ROI is the same
    one the ECE is measured in. At most ``max_voxels`` (random subsample) keep memory bounded.
    """
    xs, ys = [], []
    for case in cases:
        logits = logits_of(case)  # (C, *S)
        roi = torch.from_numpy(roi_mask(case.label, "gt_bbox"))
        xs.append(logits[:, roi].T)
        ys.append(torch.from_numpy(case.label.astype(np.int64))[roi])
    x, y = torch.cat(xs), torch.cat(ys)
    if len(y) > max_voxels:
        keep = torch.from_numpy(np.random.default_rng(seed).choice(len(y), max_voxels, replace=False))
        x, y = x[keep], y[keep]
    return x, y


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, iterations: int = 100) -> float:
    """Scalar ``T > 0`` minimising the NLL of ``softmax(logits / T)``; ``T = exp(tau)`` keeps it positive."""
    tau = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([tau], lr=0.1, max_iter=iterations, line_search_fn="strong_wolfe")
    logits, labels = logits.detach().float(), labels.detach()

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / tau.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(tau.detach().exp())
