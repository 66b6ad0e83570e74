"""Install the light napari-uqseg client (no PyTorch) into Slicer's Python on first use."""

from __future__ import annotations

import importlib

import slicer
from slicer.i18n import tr as _


def ensureClient(requirementsPath: str) -> bool:
    """Install the light napari-uqseg client into Slicer's Python if missing (main thread: pip makes Qt objects)."""
    try:
        importlib.import_module("napari_uqseg.client.backend")
        return True
    except ImportError:
        pass
    for name in ("slicer.packaging", "slicer.pydeps"):  # Slicer >= 5.12 / the 5.11 preview name
        try:
            helpers = importlib.import_module(name)
        except ImportError:
            continue
        helpers.pip_ensure(helpers.load_requirements(requirementsPath), requester="UQSeg")
        break
    else:
        if not slicer.util.confirmOkCancelDisplay(
            _("UQSeg needs the light napari-uqseg client (no PyTorch). Install?")
        ):
            return False
        slicer.util.pip_install(["-r", requirementsPath])
    importlib.invalidate_caches()
    importlib.import_module("napari_uqseg.client.backend")
    return True
