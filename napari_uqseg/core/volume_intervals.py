"""Structure volumes with conformalised intervals (numpy).

A prediction's volume of class ``c`` is its mask's voxel count times the voxel volume. Its uncertainty
scale comes from the prediction itself, by one of two sources:

- ``bernoulli``: ``sqrt(sum_v p_c(v) (1 - p_c(v)))`` voxels, the std of the volume if every voxel were an
  independent Bernoulli draw of the pooled probability (any method, one sample is enough);
- ``samples``: ``sum_v std_m p_c,m(v)`` voxels, the std over samples of the soft volume if the voxels'
  sample-to-sample changes were perfectly correlated (a boundary moving as a whole); it needs samples
  (members, masks, heads, draws, TTA).

Neither is a calibrated interval by itself. Split-conformal calibration (``core.conformal``) on held-out
cases turns one into one: the score ``|V_true - V_pred| / scale`` of each calibration case gives the
quantile ``q``, and ``V_pred +- q * scale`` then covers a new case's true volume with probability at least
``1 - alpha``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_uqseg.core.conformal import conformal_quantile
from napari_uqseg.core.errors import InputError

SOURCES = ("bernoulli", "samples")
#: interval levels fitted by default: 80, 90 and 95 %
DEFAULT_LEVELS = (0.8, 0.9, 0.95)
#: smallest scale in voxels (a certain prediction still gets a finite score)
MIN_SCALE_VOXELS = 1.0


def voxel_volume_ml(affine: np.ndarray) -> float:
    """Volume of one voxel in mL from a ``(4, 4)`` (or ``(3, 3)`` for 2-D) voxel-to-mm affine."""
    affine = np.asarray(affine, dtype=np.float64)
    n = affine.shape[0] - 1
    return float(abs(np.linalg.det(affine[:n, :n]))) / 1000.0


def volume_scales(mean_prob: np.ndarray, mean_sq_prob: np.ndarray | None, n_samples: int) -> dict[str, np.ndarray]:
    """Uncertainty scales of every class's volume, in voxels.

    Parameters
    ----------
    mean_prob : np.ndarray
        ``(C, *S)`` mean class probabilities.
    mean_sq_prob : np.ndarray or None
        ``(C, *S)`` mean squared probabilities over ``n_samples`` samples.
    n_samples : int
        Samples behind the means; ``samples`` is given only when ``> 1`` and ``mean_sq_prob`` is known.

    Returns
    -------
    dict
        Source name -> ``(C,)`` float64 scales in voxels.
    """
    return scales_from_sums(volume_scale_sums(mean_prob, mean_sq_prob, n_samples))


def volume_scale_sums(mean_prob: np.ndarray, mean_sq_prob: np.ndarray | None, n_samples: int) -> dict[str, np.ndarray]:
    """The voxel sums behind ``volume_scales``, additive over parts of a volume (``(C,)`` float64 each).

    ``bernoulli``: ``sum_v p (1 - p)``; ``samples`` (``n_samples > 1`` and ``mean_sq_prob`` given):
    ``sum_v std_m p``. Sum the dicts of slabs, then ``scales_from_sums``.
    """
    p = np.asarray(mean_prob, dtype=np.float64)
    axes = tuple(range(1, p.ndim))
    sums = {"bernoulli": (p * (1.0 - p)).sum(axis=axes)}
    if mean_sq_prob is not None and n_samples > 1:
        var = np.clip(np.asarray(mean_sq_prob, dtype=np.float64) - p**2, 0.0, None) * n_samples / (n_samples - 1)
        sums["samples"] = np.sqrt(var).sum(axis=axes)
    return sums


def scales_from_sums(sums: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``volume_scales`` from the (summed) output of ``volume_scale_sums``."""
    scales = {"bernoulli": np.sqrt(sums["bernoulli"])}
    if "samples" in sums:
        scales["samples"] = sums["samples"]
    return scales


def class_voxel_counts(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """``(C,)`` voxel count of each class in a label ``mask``."""
    return np.bincount(np.asarray(mask, dtype=np.int64).ravel(), minlength=num_classes)[:num_classes]


def true_volumes(label: np.ndarray, num_classes: int, affine: np.ndarray) -> dict[str, float]:
    """Foreground class (str) -> volume in mL of a reference ``label``."""
    counts = class_voxel_counts(label, num_classes)
    return {str(c): float(counts[c] * voxel_volume_ml(affine)) for c in range(1, num_classes)}


def interval_scores(true_voxels: np.ndarray, predicted_voxels: np.ndarray, scale_voxels: np.ndarray) -> np.ndarray:
    """Non-conformity scores ``|V_true - V_pred| / max(scale, 1 voxel)`` (arrays of equal shape)."""
    scale = np.maximum(np.asarray(scale_voxels, dtype=np.float64), MIN_SCALE_VOXELS)
    return np.abs(np.asarray(true_voxels, np.float64) - np.asarray(predicted_voxels, np.float64)) / scale


def fit_interval_quantiles(scores: np.ndarray, levels: tuple[float, ...] = DEFAULT_LEVELS) -> dict[str, float]:
    """Conformal quantile of calibration ``scores`` ``(n,)`` per coverage level (keys like ``"0.9"``)."""
    return {f"{level:g}": conformal_quantile(scores, 1.0 - level) for level in levels}


def interval(predicted_voxels: float, scale_voxels: float, quantile: float) -> tuple[float, float]:
    """``V_pred -+ q * max(scale, 1)`` in voxels, the lower end clipped at 0."""
    half = quantile * max(float(scale_voxels), MIN_SCALE_VOXELS)
    return max(0.0, predicted_voxels - half), predicted_voxels + half


def describe_volumes(
    mask: np.ndarray,
    scales: dict[str, np.ndarray],
    voxel_ml: float,
    calibration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Each foreground class's volume in mL, with calibrated intervals when ``calibration`` is given.

    Parameters
    ----------
    mask : np.ndarray
        ``(*S)`` predicted labels.
    scales : dict
        Output of :func:`volume_scales`.
    voxel_ml : float
        Volume of one voxel in mL.
    calibration : dict, optional
        ``{"source": name, "classes": {"1": {"0.9": q, ...}, ...}}`` from a conformal calibration.

    Returns
    -------
    dict
        ``{"unit": "mL", "source": ..., "calibrated": bool, "classes": {"1": {"volume": v, "scale": s,
        "intervals": {"0.9": [lo, hi], ...}}}, "voxel_ml": v, "scales_voxels": {source: [per class]}}``
        (no ``intervals`` without calibration; volumes and scales in mL).
    """
    num_classes = len(next(iter(scales.values())))
    counts = class_voxel_counts(mask, num_classes)
    source = (calibration or {}).get("source") or ("samples" if "samples" in scales else "bernoulli")
    if source not in scales:
        raise InputError("calibration.source", f"{source!r} needs a sampled prediction; have {sorted(scales)}")
    fitted = (calibration or {}).get("classes", {})
    classes = {}
    for c in range(1, num_classes):
        entry: dict[str, Any] = {"volume": float(counts[c] * voxel_ml), "scale": float(scales[source][c]) * voxel_ml}
        if str(c) in fitted:
            entry["intervals"] = {
                level: [float(bound * voxel_ml) for bound in interval(counts[c], scales[source][c], q)]
                for level, q in fitted[str(c)].items()
            }
        classes[str(c)] = entry
    return {
        "unit": "mL",
        "source": source,
        "calibrated": bool(fitted),
        "classes": classes,
        "voxel_ml": voxel_ml,
        "scales_voxels": {name: [float(v) for v in value] for name, value in scales.items()},
    }


def format_interval(bounds: list[float | None] | None) -> str:
    """``"1.31-1.74"``; an infinite upper end (too few calibration cases; ``None`` after JSON) is said so."""
    if not bounds:
        return "not calibrated"
    lo, hi = bounds
    if hi is None or not np.isfinite(hi):
        return f"{lo or 0.0:.2f}-unbounded (too few calibration cases)"
    return f"{lo:.2f}-{hi:.2f}"


def volume_text(volumes: dict[str, Any], labels: dict[str, str], level: str = "0.9") -> list[str]:
    """One plain line per class, e.g. ``"anterior: 1.52 mL (90 % interval 1.31-1.74 mL)"``."""
    lines = []
    for c, entry in volumes.get("classes", {}).items():
        name = labels.get(c, f"class {c}")
        bounds = entry.get("intervals", {}).get(level)
        if bounds is None:
            lines.append(f"{name}: {entry['volume']:.2f} mL (no calibrated interval)")
        else:
            pct = f"{float(level) * 100:g} %"
            lines.append(f"{name}: {entry['volume']:.2f} mL ({pct} interval {format_interval(bounds)} mL)")
    return lines
