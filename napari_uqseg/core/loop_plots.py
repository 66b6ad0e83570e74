"""PNG curves of the review-loop benchmark (matplotlib Agg; no display needed).

``errors_found_png``: errors found (share of the ROI's error voxels) against reviewed ROI voxels, one line per
order and method. ``loop_dice_png``: Dice on the site's unseen cases (and in-distribution) against the number
of corrected cases, one line per arm.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

STYLES = {"uncertainty": "-", "random": ":", "oracle": "--", "whole": "-."}


def _figure(width: float = 5.5, height: float = 3.6):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def errors_found_png(summaries: list[dict[str, Any]], budgets: list[float], split: str, path: str | Path) -> Path:
    """Mean errors found vs reviewed share of ROI voxels, for each method (colour) and order (line style)."""
    fig = _figure()
    ax = fig.add_subplot()
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
    x = [100 * b for b in budgets]
    for colour, summary in zip(colours, summaries, strict=False):
        for order in ("uncertainty", "random", "oracle"):
            ax.plot(
                x, summary[split][f"recall_{order}"], STYLES[order], color=colour, label=f"{summary['method']} {order}"
            )
    ax.set_xlabel("reviewed ROI voxels (%)")
    ax.set_ylabel("error voxels found (share)")
    ax.set_ylim(0, 1)
    ax.set_title(f"Errors found per effort ({split.replace('_', ' ')})", fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return Path(path)


def loop_dice_png(loop: dict[str, Any], path: str | Path) -> Path:
    """Dice on the unseen site cases (solid) and in distribution (thin) vs corrected site cases, per arm."""
    fig = _figure()
    ax = fig.add_subplot()
    base = loop["baseline"]
    for arm, rounds in loop["arms"].items():
        x = [0] + [r["corrected_cases"] for r in rounds]
        site = [base["site_unseen"]] + [r["dice"]["site_unseen"] for r in rounds]
        ind = [base["in_distribution"]] + [r["dice"]["in_distribution"] for r in rounds]
        (line,) = ax.plot(x, site, STYLES.get(arm, "-"), marker="o", label=f"{arm}: site unseen")
        ax.plot(x, ind, STYLES.get(arm, "-"), marker=".", color=line.get_color(), alpha=0.4, label=f"{arm}: in-dist.")
    ax.set_xlabel("corrected site cases")
    ax.set_ylabel("mean Dice")
    ax.set_title("Review loop: Dice after each fine-tune", fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return Path(path)
