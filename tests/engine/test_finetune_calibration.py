"""Which TTA modes and risks a fine-tuned version is recalibrated for (engine.finetune_calibration)."""

from __future__ import annotations

import pytest

from napari_uqseg.engine.finetune_calibration import DEFAULT_RISK, modes_to_calibrate
from napari_uqseg.engine.tta import TTA_MODES, TTAOptions, tta_from_key


@pytest.mark.parametrize("options", [*(o for o in TTA_MODES.values() if o), TTAOptions(False, 0.2)])
def test_tta_key_round_trip(options):
    assert tta_from_key(options.key) == options
    assert tta_from_key("none") is None


def test_modes_follow_the_parent_at_its_risk():
    parent = {"entries": {"flips": {"masks": {"risk": 0.1}}, "flips+intensity0.1": {"masks": {"risk": 0.2}}}}
    assert modes_to_calibrate(parent) == {"none": DEFAULT_RISK, "flips": 0.1, "flips+intensity0.1": 0.2}
    assert modes_to_calibrate(None) == {"none": DEFAULT_RISK}
