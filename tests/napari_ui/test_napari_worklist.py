"""A triage worklist in napari: its cases join the review panel's case list sorted by score; a click opens one."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_uqseg.client.remote import RemoteBackend
from napari_uqseg.core.sample_data import write_synthetic_dataset
from napari_uqseg.core.worklist import FLAG_FAILURE, read_worklist
from napari_uqseg.engine.triage import triage

pytestmark = pytest.mark.gui

LONG = 180_000  # ms


def listed_cases(widget) -> list[str]:
    cases = widget.review.cases
    return [cases.item(i).data(Qt.ItemDataRole.UserRole) for i in range(cases.count())]


def click_case(widget, qtbot, name: str) -> None:
    """Click a case's line in the case list, as a user does."""
    cases = widget.review.cases
    (item,) = [cases.item(i) for i in range(cases.count()) if cases.item(i).data(Qt.ItemDataRole.UserRole) == name]
    cases.scrollToItem(item)
    qtbot.mouseClick(cases.viewport(), Qt.MouseButton.LeftButton, pos=cases.visualItemRect(item).center())


def assert_case_open(viewer, widget, name: str, score: float) -> None:
    image, mask = viewer.layers[name], viewer.layers[f"{name} mask"]
    assert mask.data.shape == image.data.shape
    assert widget.current == name
    assert widget.review.cursor.ranking.case_score == pytest.approx(score)
    assert widget.review.regions.rowCount() == widget.review.cursor.total > 0
    assert f"Case score {score:.3f}" in widget.review.case_score.text()


def test_worklist_folder_is_sorted_by_score_and_a_row_opens_its_case(driver, qtbot, tiny_models, tmp_path):
    data = write_synthetic_dataset(tmp_path / "data", n_cases=5)
    triage(tiny_models["tiny_mcd"], data, tmp_path / "study", workers=1)
    rows = read_worklist(tmp_path / "study")
    viewer, widget = driver.open(sample=False)

    widget.worklist.open_folder(tmp_path / "study")
    assert "5 cases" in widget.worklist.status.text()
    assert listed_cases(widget) == [r.case for r in rows]  # most uncertain first
    scores = [r.score for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert f"{rows[0].score:.3f}" in widget.review.cases.item(0).text()

    pick = rows[2]  # not the first: the row decides which case opens
    click_case(widget, qtbot, pick.case)
    qtbot.waitUntil(lambda: pick.case in widget.cases, timeout=LONG)
    assert_case_open(viewer, widget, pick.case, pick.score)
    maps = {widget.map_combo.itemData(i) for i in range(widget.map_combo.count())}
    assert maps == set(pick.maps) == {"entropy", "expected_entropy", "mutual_information", "class_std"}
    assert listed_cases(widget) == [r.case for r in rows]  # opening a case keeps the order

    other = rows[0]
    click_case(widget, qtbot, other.case)
    qtbot.waitUntil(lambda: widget.current == other.case, timeout=LONG)
    assert_case_open(viewer, widget, other.case, other.score)
    np.testing.assert_allclose(viewer.layers[other.case].scale, viewer.layers[f"{other.case} mask"].scale)


def test_worklist_flags_show_in_the_case_list(driver, tmp_path, tiny_models):
    data = write_synthetic_dataset(tmp_path / "data", n_cases=2)
    triage(tiny_models["tiny_det"], data, tmp_path / "study", workers=1)
    doc = (tmp_path / "study" / "worklist.json").read_text()
    (tmp_path / "study" / "worklist.json").write_text(doc.replace('"flags": []', f'"flags": ["{FLAG_FAILURE}"]', 1))
    _, widget = driver.open(sample=False)
    widget.worklist.open_folder(tmp_path / "study")
    texts = [widget.review.cases.item(i).text() for i in range(widget.review.cases.count())]
    assert sum(FLAG_FAILURE in t for t in texts) == 1 and "1 flagged" in widget.worklist.status.text()


def test_a_missing_worklist_is_a_plain_error(driver, tmp_path):
    _, widget = driver.open(sample=False)
    widget.worklist.open_folder(tmp_path)
    assert "no worklist here" in widget.worklist.status.text()
    assert widget.review.cases.count() == 0


def test_worklist_of_a_server_triage_job_opens_a_case(driver, qtbot, uqseg_server):
    write_synthetic_dataset(uqseg_server.data_dir / "datasets" / "synth", n_cases=3)
    with RemoteBackend(uqseg_server.url, uqseg_server.token) as backend:
        job = backend.start_job("triage", "tiny_det", {"dataset": "synth"})
        status = backend.wait_job(job.id, timeout=LONG / 1000)
    assert status.state == "succeeded", status.error
    viewer, widget = driver.open(sample=False)
    driver.connect_remote(widget, uqseg_server.url, uqseg_server.token)
    widget.worklist.open_job(job.id)
    assert len(listed_cases(widget)) == 3, widget.worklist.status.text()
    source = widget.worklist.source
    assert all(r.volume_intervals_ml for r in source.rows)  # tiny_det is calibrated: its intervals travel over HTTP
    assert all("(90 %: " in widget.review.cases.item(i).text() for i in range(3))
    pick = source.rows[1]
    click_case(widget, qtbot, pick.case)
    qtbot.waitUntil(lambda: pick.case in widget.cases, timeout=LONG)
    assert_case_open(viewer, widget, pick.case, pick.score)
