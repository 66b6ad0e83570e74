"""The floor of our sliding-window overhead: plain MONAI ``sliding_window_inference`` with the same network.

``plain_monai_mask`` is what a MONAI user writes for a mask from a deterministic U-Net: z-score the volume,
blend the softmax of every window (Gaussian weights, same window, overlap, padding value, precision and
threads as ``predict_volume``), take the argmax. ``side_by_side`` times it against ``predict_volume`` of
the same method, alternating the two, so that load from other processes falls on both.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
import torch

from napari_uqseg.bench.paired import paired_ratio
from napari_uqseg.core.volume import Volume
from napari_uqseg.engine.data import normalise
from napari_uqseg.engine.inference import blend_windows, predict_volume
from napari_uqseg.engine.methods.base import UQMethod
from napari_uqseg.engine.precision import forward_precision, resolve_precision


def plain_monai_mask(method: UQMethod, volume: Volume, overlap: float = 0.25, precision: str = "auto") -> np.ndarray:
    """uint8 argmax ``(*S)`` of MONAI's blended softmax of ``method``'s first network (deterministic use)."""
    net = next(iter(method.nets.values()))
    x = torch.from_numpy(normalise(volume.array, method.normalisation))[None, None]
    method.eval()
    with torch.no_grad(), forward_precision(precision, method.device):
        probs = blend_windows(
            lambda w: torch.softmax(net(w.to(method.device)).float(), dim=1), x, tuple(method.patch_size), method.device
        )
        return probs[0].argmax(0).to(torch.uint8).numpy()


def side_by_side(
    method: UQMethod, volume: Volume, repeats: int = 3, overlap: float = 0.25, precision: str = "auto"
) -> dict[str, Any]:
    """Median seconds of ``predict_volume`` and of ``plain_monai_mask`` (alternating which goes first, after a
    one-window warm-up).

    Returns
    -------
    dict
        ``ours_s``, ``monai_s`` (medians), ``ratio`` (median of the pairs' ours / MONAI), ``ours_all_s``,
        ``monai_all_s``, ``mask_agreement`` (fraction of voxels with the same label), ``precision``, ``threads``,
        ``shape``.
    """
    arithmetic = resolve_precision(precision, method.device)
    corner = Volume(volume.array[tuple(slice(0, p) for p in method.patch_size)], volume.affine)
    predict_volume(method, corner, overlap, precision=arithmetic)  # warm-up on one window: primitives, allocator
    plain_monai_mask(method, corner, overlap, arithmetic)
    runs = {
        "ours": lambda: predict_volume(method, volume, overlap, precision=arithmetic).mask.array,
        "monai": lambda: plain_monai_mask(method, volume, overlap, arithmetic),
    }
    seconds: dict[str, list[float]] = {side: [] for side in runs}
    masks: dict[str, np.ndarray] = {}
    for k in range(max(1, repeats)):
        for side in ("ours", "monai") if k % 2 == 0 else ("monai", "ours"):  # ABBA: neither side always goes first
            start = time.perf_counter()
            masks[side] = runs[side]()
            seconds[side].append(time.perf_counter() - start)
    ours_s, monai_s = seconds["ours"], seconds["monai"]
    return {
        "shape": list(volume.shape),
        "precision": arithmetic,
        "threads": torch.get_num_threads(),
        "ours_s": statistics.median(ours_s),
        "monai_s": statistics.median(monai_s),
        "ratio": paired_ratio(ours_s, monai_s),
        "ours_all_s": ours_s,
        "monai_all_s": monai_s,
        "mask_agreement": float(np.mean(masks["ours"] == masks["monai"])),
    }
