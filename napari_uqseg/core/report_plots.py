"""Figures of an evaluation report: reliability diagram, risk-coverage, Dice after removal, case scatter.

Only matplotlib's object API (``Figure`` + the Agg canvas) is used, never ``pyplot``, so writing PNGs
changes no global backend and the same ``draw_*`` functions fill the explorer's Qt canvas. It sits in core
(needing matplotlib, which the ``engine`` and ``napari`` extras both carry) because the engine writes these
figures and the torch-free napari explorer draws them.
Every ``draw_*`` takes plain lists/arrays as stored in ``report.json`` / ``case.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from napari_uqseg.core.nifti_io import atomic_write_bytes


def _array(values: Sequence[float | None] | np.ndarray) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def draw_reliability(ax: Axes, bins: dict[str, Any], title: str = "Reliability (top label)") -> None:
    """Accuracy against mean confidence per non-empty bin, marker area ~ voxel share, with the diagonal.

    ``bins``: ``counts``, ``mean_confidence``, ``accuracy`` (one value per bin, None/NaN when empty).
    """
    counts = _array(bins["counts"])
    conf = _array(bins["mean_confidence"])
    acc = _array(bins["accuracy"])
    filled = counts > 0
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect calibration")
    if filled.any():
        share = counts[filled] / counts[filled].sum()
        ax.plot(conf[filled], acc[filled], color="C0", lw=1)
        ax.scatter(conf[filled], acc[filled], s=8 + 300 * share, color="C0", label="bins (area ~ voxels)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left")


def draw_risk_coverage(
    ax: Axes, curve: dict[str, Any], optimal: dict[str, Any] | None = None, title: str = "Risk-coverage (voxels)"
) -> None:
    """Selective risk (error rate of kept voxels) against coverage; ``curve`` has ``x`` (coverage), ``y`` (risk)."""
    ax.plot(_array(curve["x"]), _array(curve["y"]), color="C1", label="uncertainty ranking")
    if optimal is not None:
        ax.plot(_array(optimal["x"]), _array(optimal["y"]), color="0.5", ls="--", label="oracle")
    ax.set_xlim(0, 1)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("coverage (most certain voxels kept)")
    ax.set_ylabel("risk (error rate)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left")


def draw_dice_after_removal(
    ax: Axes, curves: dict[str, Any], title: str = "Dice after removing uncertain voxels"
) -> None:
    """``curves``: ``fractions`` and ``dice`` (plus optional ``oracle``), all ``(T,)``; x axis in %."""
    x = 100 * _array(curves["fractions"])
    ax.plot(x, _array(curves["dice"]), color="C2", marker=".", label="uncertainty")
    if curves.get("oracle") is not None:
        ax.plot(x, _array(curves["oracle"]), color="0.5", ls="--", label="oracle (errors first)")
    ax.set_xlabel("most uncertain voxels removed (%)")
    ax.set_ylabel("mean foreground Dice")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")


def draw_case_scatter(
    ax: Axes,
    scores: Sequence[float],
    dice: Sequence[float],
    highlight: int | None = None,
    failure_dice: float | None = None,
    title: str = "Cases: uncertainty vs Dice",
) -> None:
    """Case score against Dice for every case; ``highlight`` (an index) drawn as a red ring."""
    s, d = _array(scores), _array(dice)
    ax.scatter(s, d, s=14, color="C0", alpha=0.7)
    if highlight is not None and 0 <= highlight < s.size:
        ax.scatter([s[highlight]], [d[highlight]], s=120, facecolors="none", edgecolors="red", linewidths=2)
    if failure_dice is not None:
        ax.axhline(failure_dice, color="0.6", ls=":", lw=1)
    ax.locator_params(axis="x", nbins=4)  # case scores can be close together: keep tick labels apart
    ax.set_xlabel("case uncertainty score")
    ax.set_ylabel("Dice")
    ax.set_title(title, fontsize=9)


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)  # attaches an Agg canvas to the figure: no pyplot, no global backend
    fig.tight_layout()
    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def write_report_plots(report: dict[str, Any], folder: str | Path) -> dict[str, Path]:
    """Write ``reliability.png``, ``risk_coverage.png`` and ``dice_after_removal.png`` of a report dict.

    Parameters
    ----------
    report : dict
        The content of ``report.json`` (``curves`` and ``map`` are used).
    folder : path
        Where the PNGs go.

    Returns
    -------
    dict
        Plot name -> path.
    """
    folder = Path(folder)
    curves = report["curves"]
    label = f"{report.get('model', {}).get('method', '')}, {report.get('map', '')}"
    written = {}
    fig = Figure(figsize=(4.5, 4.2))
    draw_reliability(fig.add_subplot(), curves["reliability"], f"Reliability, pooled ROI voxels ({label})")
    written["reliability"] = _save(fig, folder / "reliability.png")
    fig = Figure(figsize=(4.5, 4.2))
    draw_risk_coverage(
        fig.add_subplot(), curves["risk_coverage"], curves.get("risk_coverage_oracle"), f"Risk-coverage ({label})"
    )
    written["risk_coverage"] = _save(fig, folder / "risk_coverage.png")
    fig = Figure(figsize=(4.5, 4.2))
    draw_dice_after_removal(fig.add_subplot(), curves["dice_after_removal"], f"Dice after removal ({label})")
    written["dice_after_removal"] = _save(fig, folder / "dice_after_removal.png")
    return written
