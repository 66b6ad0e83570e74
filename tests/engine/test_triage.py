"""``uqseg triage`` with the local executor: outputs as ``uqseg predict`` writes them, worklist, resume, kill -9."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from napari_uqseg.bench.tiny_models import build_tiny_models
from napari_uqseg.cli import main
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.review_ranking import ReviewRanking
from napari_uqseg.core.worklist import read_worklist
from napari_uqseg.engine.triage import triage
from napari_uqseg.engine.triage_cases import find_cases


@pytest.fixture(scope="module")
def tiny_det(tmp_path_factory) -> Path:
    return build_tiny_models(tmp_path_factory.mktemp("triage_models"), {"tiny_det": "deterministic"})["tiny_det"]


def test_triage_writes_predict_outputs_and_a_sorted_worklist(tiny_det, synthetic_dataset, tmp_path):
    out = tmp_path / "study"
    summary = triage(tiny_det, synthetic_dataset, out, workers=1)
    cases = find_cases(synthetic_dataset)
    assert summary["cases"] == summary["predicted"] == len(cases) == 8 and summary["skipped"] == 0
    assert not summary["failed"]
    for case in cases:  # the files `uqseg predict` writes, plus the done marker
        names = {p.name for p in (out / case.case).iterdir()}
        assert {"mask.nii.gz", "probabilities.nii.gz", "entropy.nii.gz", "review.json", "case.json"} <= names
    rows = read_worklist(out)
    assert [r.case for r in rows] == [r.case for r in sorted(rows, key=lambda r: -r.score)]
    for r in rows:  # the worklist's score is the one review.json carries
        review = ReviewRanking.from_dict(json.loads((out / r.outputs / "review.json").read_text()))
        assert r.score == review.case_score
        assert set(r.volumes_ml) == {"class_1", "class_2"} and r.maps == ["entropy"]
    assert (out / "worklist.csv").read_text().count("\n") == 9


def test_rerun_skips_finished_cases_and_redoes_only_missing_ones(tiny_det, synthetic_dataset, tmp_path):
    out = tmp_path / "study"
    triage(tiny_det, synthetic_dataset, out, workers=1)
    before = {p: p.stat().st_mtime_ns for p in out.glob("*/mask.nii.gz")}
    (out / "synth_003" / "case.json").unlink()  # as if killed before this case finished
    shutil.rmtree(out / "synth_005")
    (out / ".synth_006.abc123").mkdir()  # a staging folder a killed writer left
    summary = triage(tiny_det, synthetic_dataset, out, workers=1)
    assert (summary["skipped"], summary["predicted"]) == (6, 2)
    after = {p: p.stat().st_mtime_ns for p in out.glob("*/mask.nii.gz")}
    changed = {p.parent.name for p in after if before.get(p) != after[p]}
    assert changed == {"synth_003", "synth_005"}
    assert not (out / ".synth_006.abc123").exists()
    assert len(read_worklist(out)) == 8


def test_a_pool_of_two_processes_gives_the_same_worklist(tiny_det, synthetic_dataset, tmp_path):
    one = triage(tiny_det, synthetic_dataset, tmp_path / "one", workers=1)
    two = triage(tiny_det, synthetic_dataset, tmp_path / "two", workers=2)
    assert two["workers"] == 2 and one["predicted"] == two["predicted"] == 8
    rows_one, rows_two = read_worklist(tmp_path / "one"), read_worklist(tmp_path / "two")
    assert [r.case for r in rows_one] == [r.case for r in rows_two]
    assert [r.score for r in rows_one] == pytest.approx([r.score for r in rows_two])


def test_a_bad_image_fails_alone_and_is_retried_on_the_next_run(tiny_det, synthetic_dataset, tmp_path):
    data = tmp_path / "images"
    data.mkdir()
    for image in sorted((synthetic_dataset / "imagesTr").iterdir())[:2]:
        shutil.copy(image, data / image.name)
    (data / "broken.nii.gz").write_bytes(b"not a nifti")
    out = tmp_path / "study"
    code = main(["triage", "--model", str(tiny_det), "--data", str(data), "--out", str(out), "--workers", "1"])
    assert code == 1  # a failed case makes the run fail, after the others finished
    meta = json.loads((out / "worklist.json").read_text())["meta"]
    assert list(meta["failed"]) == ["broken"] and "cannot be read as NIfTI" in meta["failed"]["broken"]
    assert [r.case for r in read_worklist(out)] != [] and "broken" not in {r.case for r in read_worklist(out)}
    summary = triage(tiny_det, data, out, workers=1)
    assert (summary["skipped"], summary["predicted"], list(summary["failed"])) == (2, 0, ["broken"])


def test_list_file_and_bad_inputs(tiny_det, synthetic_dataset, tmp_path):
    images = sorted((synthetic_dataset / "imagesTr").iterdir())
    listing = tmp_path / "cases.txt"
    listing.write_text(f"# two cases\n{images[0]}\n{os.path.relpath(images[1], tmp_path)}\n")
    assert [c.case for c in find_cases(listing)] == ["synth_001", "synth_002"]
    with pytest.raises(InputError, match="no NIfTI images"):
        find_cases(_empty(tmp_path))
    listing.write_text(f"{images[0]}\n{tmp_path / 'gone.nii.gz'}\n")
    with pytest.raises(InputError, match="do not exist"):
        find_cases(listing)
    with pytest.raises(InputError, match="not a model folder"):
        triage(tmp_path, synthetic_dataset, tmp_path / "o")
    with pytest.raises(InputError, match="--executor"):
        triage(tiny_det, synthetic_dataset, tmp_path / "o", executor="spark")


def _empty(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


def test_kill_9_mid_run_loses_no_finished_case(tiny_det, synthetic_dataset, tmp_path):
    out = tmp_path / "study"
    code = "import sys; from napari_uqseg.cli import main; sys.exit(main(sys.argv[1:]))"
    args = ["triage", "--model", str(tiny_det), "--data", str(synthetic_dataset), "--out", str(out), "--workers", "1"]
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list(out.glob("*/case.json")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.parent.name for p in out.glob("*/case.json")}
    assert finished, "the run was killed before it finished any case"
    summary = triage(tiny_det, synthetic_dataset, out, workers=1)
    assert summary["skipped"] == len(finished)
    assert summary["predicted"] == 8 - len(finished)
    assert len(read_worklist(out)) == 8
