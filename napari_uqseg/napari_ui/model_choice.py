"""What the Predict box offers, with no Qt: a model's methods and versions in display order, and a method's cost."""

from __future__ import annotations

from napari_uqseg.core.recalibration import version_calibration_tag
from napari_uqseg.core.records import MethodInfo, ModelSummary
from napari_uqseg.napari_ui.layers import map_title


def method_cost(info: MethodInfo | None, name: str) -> str:
    """One line on what a prediction costs and which maps it gives."""
    if info is None:
        return f"{name}: cost unknown"
    passes = f"{info.forward_passes:g} forward pass{'es' if info.forward_passes != 1 else ''}"
    maps = ", ".join(map_title(m).split(" (")[0] for m in info.maps)
    return f"{passes} per prediction; maps: {maps}"


def methods_of(model: ModelSummary) -> list[str]:
    """The methods of a model's versions, the serving version's first, then by name."""
    serving = model.method_of()
    return sorted({v.method for v in model.versions}, key=lambda m: (m != serving, m))


def version_items(model: ModelSummary, method: str) -> list[tuple[str, str]]:
    """``(text, version)`` of each version of ``method``, newest first; the serving one says so, and so does a
    fine-tuned one that could not be recalibrated (``core.recalibration``)."""
    return [
        (
            (f"{v.version} (serving)" if v.version == model.serving else v.version)
            + version_calibration_tag(v.metrics),
            v.version,
        )
        for v in reversed(model.versions)
        if v.method == method
    ]
