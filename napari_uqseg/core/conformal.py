"""Split-conformal quantiles and conformal risk control (numpy), calibrated on held-out cases.

Two guarantees, both marginal over exchangeable cases (calibration cases and the new one drawn alike):

- :func:`conformal_quantile` (Vovk; Angelopoulos & Bates 2021, "A gentle introduction"): with ``n``
  calibration scores, the ``ceil((n + 1)(1 - alpha))``-th smallest bounds a new case's score with
  probability at least ``1 - alpha``.
- :func:`risk_control_index` (conformal risk control, Angelopoulos et al. 2022): for losses that do not
  increase along a grid of parameters and are bounded by ``B``, the first grid point where
  ``n / (n + 1) * mean_loss + B / (n + 1) <= alpha`` keeps a new case's expected loss at most ``alpha``.
"""

from __future__ import annotations

import math

import numpy as np

from napari_uqseg.core.errors import InputError


def check_alpha(alpha: float, name: str = "alpha") -> float:
    """``alpha`` as a float in (0, 1), or a clear error."""
    try:
        value = float(alpha)
    except (TypeError, ValueError) as exc:
        raise InputError(name, f"must be a number in (0, 1), got {alpha!r}") from exc
    if not 0.0 < value < 1.0:
        raise InputError(name, f"must be in (0, 1), got {value}")
    return value


def conformal_quantile(scores: np.ndarray, alpha: float) -> float:
    """The split-conformal quantile of calibration ``scores`` at miss rate ``alpha``.

    Parameters
    ----------
    scores : np.ndarray
        ``(n,)`` non-conformity scores of the calibration cases (finite).
    alpha : float
        Allowed miss rate in (0, 1).

    Returns
    -------
    float
        The ``ceil((n + 1)(1 - alpha))``-th smallest score; ``inf`` when that rank exceeds ``n`` (too few
        cases for this ``alpha``: no finite bound is honest).
    """
    alpha = check_alpha(alpha)
    scores = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    if scores.size == 0 or not np.all(np.isfinite(scores)):
        raise InputError("scores", "need at least one calibration case, all scores finite")
    rank = math.ceil((scores.size + 1) * (1.0 - alpha))
    return float("inf") if rank > scores.size else float(scores[rank - 1])


def risk_control_index(losses: np.ndarray, alpha: float, bound: float = 1.0) -> int | None:
    """Conformal risk control: the first parameter index whose corrected mean loss is at most ``alpha``.

    Parameters
    ----------
    losses : np.ndarray
        ``(n, T)`` loss of each calibration case at each of ``T`` parameters, non-increasing along the
        parameter axis (e.g. a mask growing as its threshold falls), within ``[0, bound]``.
    alpha : float
        Target expected loss, in (0, bound).
    bound : float
        Largest possible loss ``B``.

    Returns
    -------
    int or None
        Index ``t`` of the chosen parameter; ``None`` when even the last parameter does not meet the
        target (too few cases, or the target is below what any mask achieves).
    """
    losses = np.asarray(losses, dtype=np.float64)
    if losses.ndim != 2 or losses.shape[0] == 0:
        raise InputError("losses", f"need an (n cases, T parameters) array, got shape {losses.shape}")
    if np.any(losses < 0) or np.any(losses > bound) or not np.all(np.isfinite(losses)):
        raise InputError("losses", f"losses must lie in [0, {bound}]")
    check_alpha(alpha / bound, "alpha")
    n = losses.shape[0]
    corrected = n / (n + 1) * losses.mean(axis=0) + bound / (n + 1)
    ok = np.flatnonzero(corrected <= alpha)
    return int(ok[0]) if ok.size else None
