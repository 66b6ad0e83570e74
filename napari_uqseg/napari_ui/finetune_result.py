"""A finished fine-tune's result for display: before/after metric rows, the recommendation, a bar chart (PNG)."""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_uqseg.core.finetune_verdict import partial_corrections_text
from napari_uqseg.core.recalibration import recalibration_text


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "—"


def _mean_row(name: str, figures: dict[str, Any]) -> tuple[str, str, str]:
    before, after = dict(figures.get("before") or {}), dict(figures.get("after") or {})
    n = len(after.get("dice", {}))
    return (f"{name} mean Dice ({n})", _fmt(before.get("mean_dice")), _fmt(after.get("mean_dice")))


def metric_rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(metric, before, after)`` display rows of a fine-tune result.

    First the held-back corrections (never trained on) and the original validation cases (regression),
    then Dice per held-back case. Empty when the result has neither.
    """
    before, after = dict(result.get("before") or {}), dict(result.get("after") or {})
    regression = dict(result.get("regression") or {})
    rows = []
    if after:
        rows.append(_mean_row("held-back", {"before": before, "after": after}))
    if regression.get("after"):
        rows.append(_mean_row("validation", regression))
    per_before, per_after = dict(before.get("dice", {})), dict(after.get("dice", {}))
    rows += [(f"Dice {case} (held back)", _fmt(per_before.get(case)), _fmt(v)) for case, v in per_after.items()]
    return rows


def recommendation_text(result: dict[str, Any]) -> str:
    """The plain promote / don't recommendation of a fine-tune result, what its partial corrections were trained
    on, and its calibration line (``""``: no recommendation)."""
    verdict = result.get("recommendation") or {}
    if not verdict:
        return ""
    text = f"Recommendation: {verdict.get('reason', 'promote' if verdict.get('promote') else 'do not promote')}"
    lines = [text, partial_corrections_text(result.get("loss_mask")), recalibration_text(result.get("uq_calibration"))]
    return "\n".join(filter(None, lines))


def before_after_png(result: dict[str, Any]) -> bytes | None:
    """Bar chart (PNG bytes): Dice before and after fine-tuning of each held-back case and the validation mean.

    ``None`` when the result has neither.
    """
    before, after = dict(result.get("before") or {}).get("dice", {}), dict(result.get("after") or {}).get("dice", {})
    groups = [(c[:10], before[c], after[c]) for c in after if c in before]
    regression = dict(result.get("regression") or {})
    val_before, val_after = dict(regression.get("before") or {}), dict(regression.get("after") or {})
    if val_after.get("mean_dice") is not None and val_before.get("mean_dice") is not None:
        groups.append(("validation", val_before["mean_dice"], val_after["mean_dice"]))
    if not groups:
        return None
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 2.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x = np.arange(len(groups))
    ax.bar(x - 0.2, [g[1] for g in groups], 0.4, label="before", color="#8c8c8c")
    ax.bar(x + 0.2, [g[2] for g in groups], 0.4, label="after", color="#e8743b")
    ax.set_xticks(x, [g[0] for g in groups], fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("Dice")
    ax.set_title(f"Held back + validation: version {result.get('version', '')}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
