"""The napari case list shows each case's structure volumes with their 90 % conformal interval (mL) where the model
is calibrated: worklist cases (from a triage) and cases predicted in the session."""

from __future__ import annotations

import json

import pytest
from qtpy.QtCore import Qt

from napari_uqseg.core.sample_data import write_synthetic_dataset
from napari_uqseg.core.volume_intervals import format_interval
from napari_uqseg.core.worklist import read_worklist
from napari_uqseg.engine.model_folder import read_card
from napari_uqseg.engine.triage import triage

pytestmark = pytest.mark.gui


def case_lines(widget) -> dict[str, str]:
    cases = widget.review.cases
    return {cases.item(i).data(Qt.ItemDataRole.UserRole): cases.item(i).text() for i in range(cases.count())}


def test_worklist_cases_show_volumes_with_intervals(driver, tiny_models, tmp_path):
    data = write_synthetic_dataset(tmp_path / "data", n_cases=3)
    triage(tiny_models["tiny_det"], data, tmp_path / "study", workers=1)  # tiny_det is calibrated
    labels = read_card(tiny_models["tiny_det"]).labels
    rows = read_worklist(tmp_path / "study")
    _, widget = driver.open(sample=False)
    widget.worklist.open_folder(tmp_path / "study")
    lines = case_lines(widget)
    assert set(lines) == {r.case for r in rows}
    for row in rows:
        # the interval each line shows is the one the prediction wrote into the case's review.json
        review = json.loads((tmp_path / "study" / row.outputs / "review.json").read_text())
        for c, entry in review["volumes"]["classes"].items():
            lo, hi = entry["intervals"]["0.9"]
            assert f"{labels[c]} {entry['volume']:.2f} mL (90 %: {format_interval([lo, hi])})" in lines[row.case]
        assert row.volume_intervals_ml  # and the worklist row keeps them


def test_a_case_predicted_in_the_session_shows_its_volumes(driver, local_data_dir):
    _, widget = driver.open()
    driver.connect_local(widget, local_data_dir)
    driver.predict(widget, "tiny_det")
    info = widget.cases["synthetic scan"].result.prediction.info
    line = case_lines(widget)["synthetic scan"]
    for c, entry in info["volumes"]["classes"].items():
        name = info["labels"][c] if c in info["labels"] else f"class {c}"
        interval = format_interval(entry["intervals"]["0.9"])
        assert f"{name} {entry['volume']:.2f} mL (90 %: {interval})" in line
    driver.predict(widget, "tiny_mcd")  # not calibrated: the volumes alone
    line = case_lines(widget)["synthetic scan"]
    assert " mL" in line and "90 %" not in line
