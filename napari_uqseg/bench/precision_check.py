"""Equal results at a faster precision: the shipped starter model on the MNI brain, float32 against bfloat16.

The starter model (MC-Dropout, trained, shipped in the wheel) predicts the held-back MNI scan (nilearn's
template, offline) once per precision with the same dropout draws. Reported: seconds per precision and
their ratio, each mask's Dice against the reference tissue labels (the results a user sees), the masks'
agreement with each other, and the largest and 99th-percentile differences of probabilities and maps.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from napari_uqseg.engine.inference import predict_volume
from napari_uqseg.engine.model_folder import load_model


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * float((a & b).sum()) / total


def precision_check(downsample: int = 1, seed: int = 3, repeats: int = 1) -> dict[str, Any]:
    """float32 against bfloat16 on the starter model and the held-back MNI scan (see the module docstring).

    Returns
    -------
    dict
        ``shape``, ``seconds`` {precision: median s}, ``speedup`` (float32 s / bfloat16 s),
        ``dice_vs_truth`` {precision: {class: Dice}}, ``dice_change`` (largest absolute difference of
        those), ``mask_agreement_dice`` {class: Dice of the two masks}, ``probability_diff`` and
        ``map_diff`` {name: {"max", "p99"}} (absolute).
    """
    from napari_uqseg.core.bundled_models import starter_model_dir
    from napari_uqseg.core.sample_data import heldout_scan, mni_brain

    method = load_model(starter_model_dir(), "cpu")
    image, label = mni_brain(downsample)
    image = heldout_scan(image, seed)
    runs, seconds = {}, {}
    for precision in ("float32", "bfloat16"):
        times = []
        for _ in range(max(1, repeats)):
            torch.manual_seed(0)
            start = time.perf_counter()
            runs[precision] = predict_volume(method, image, precision=precision, output_dtype="float32")
            times.append(time.perf_counter() - start)
        seconds[precision] = float(np.median(times))
    classes = list(range(1, int(label.array.max()) + 1))
    dice = {p: {str(c): _dice(r.mask.array == c, label.array == c) for c in classes} for p, r in runs.items()}
    a, b = runs["float32"], runs["bfloat16"]

    def diff(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        d = np.abs(x.astype(np.float32) - y.astype(np.float32))
        return {"max": float(d.max()), "p99": float(np.percentile(d, 99))}

    return {
        "shape": list(image.shape),
        "method": method.name,
        "seconds": seconds,
        "speedup": seconds["float32"] / seconds["bfloat16"],
        "dice_vs_truth": dice,
        "dice_change": max(abs(dice["float32"][c] - dice["bfloat16"][c]) for c in dice["float32"]),
        "mask_agreement_dice": {str(c): _dice(a.mask.array == c, b.mask.array == c) for c in classes},
        "probability_diff": diff(a.probabilities.array, b.probabilities.array),
        "map_diff": {name: diff(a.maps[name].array, b.maps[name].array) for name in a.maps},
    }
