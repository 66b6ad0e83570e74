"""Uncertainty maps from streaming sample statistics (numpy).

Every method reduces its M stochastic softmax outputs ``p_m`` to three running means, so memory does
not grow with M: ``mean_prob = E[p]``, ``mean_sq_prob = E[p**2]`` (both ``(C, *S)``) and
``expected_entropy = E[H(p)]`` (``(*S)``). The maps below are exact functions of those.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-12

#: map name -> its name for users (the total / aleatoric / epistemic switch). Entropies are in nats: predictive
#: entropy H[E p], expected entropy E[H p], mutual information H[E p] - E[H p]; class_std is the std over
#: samples of the predicted class's probability.
MAP_TITLES = {
    "entropy": "total (predictive entropy)",
    "expected_entropy": "aleatoric (expected entropy)",
    "mutual_information": "epistemic (mutual information)",
    "class_std": "class probability std",
}


def entropy(prob: np.ndarray, axis: int = 0) -> np.ndarray:
    """Shannon entropy in nats along ``axis`` (``0 log 0 = 0``); ``(C, *S) -> (*S)``."""
    prob = np.asarray(prob, dtype=np.float64)
    return -(prob * np.log(np.clip(prob, EPS, None))).sum(axis=axis)


def uncertainty_maps(
    mean_prob: np.ndarray,
    mean_sq_prob: np.ndarray | None,
    expected_entropy: np.ndarray | None,
    n_samples: int,
    ddof: int = 1,
) -> dict[str, np.ndarray]:
    """Voxel-wise uncertainty maps, float32 of shape ``(*S)``.

    Parameters
    ----------
    mean_prob : np.ndarray
        ``(C, *S)`` mean class probabilities over samples.
    mean_sq_prob : np.ndarray or None
        ``(C, *S)`` mean of squared probabilities; gives ``class_std``.
    expected_entropy : np.ndarray or None
        ``(*S)`` mean per-sample entropy; gives ``expected_entropy`` and ``mutual_information``.
    n_samples : int
        Samples behind the means. With 1 sample only ``entropy`` is returned.
    ddof : int
        Delta degrees of freedom of ``class_std`` (1: unbiased, as the DUDES teacher uses).

    Returns
    -------
    dict
        ``entropy`` always; ``expected_entropy``, ``mutual_information`` and ``class_std`` when
        ``n_samples > 1`` and the statistics are given.
    """
    maps = {"entropy": entropy(mean_prob).astype(np.float32)}
    if n_samples <= 1:
        return maps
    if expected_entropy is not None:
        ee = np.asarray(expected_entropy, dtype=np.float32)
        maps["expected_entropy"] = ee
        maps["mutual_information"] = np.clip(maps["entropy"] - ee, 0.0, None)  # round-off can dip below 0
    if mean_sq_prob is not None:
        predicted = np.argmax(mean_prob, axis=0)[None]
        m1 = np.take_along_axis(np.asarray(mean_prob, np.float64), predicted, 0)[0]
        m2 = np.take_along_axis(np.asarray(mean_sq_prob, np.float64), predicted, 0)[0]
        var = np.clip(m2 - m1**2, 0.0, None)
        if ddof and n_samples > ddof:
            var *= n_samples / (n_samples - ddof)
        maps["class_std"] = np.sqrt(var).astype(np.float32)
    return maps
