"""engine.finetune on its own (options, resume point, before/after) and the loopback benchmark function."""

from __future__ import annotations

import pytest

from napari_uqseg.bench.loopback import loopback_bench
from napari_uqseg.bench.perf_report import perf_section
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.engine.finetune import CorrectedCase, FinetuneOptions, finetune, finetune_config, resume_point
from napari_uqseg.engine.model_folder import read_card


@pytest.mark.parametrize("bad", [{"iterations": 0}, {"lr_factor": -1}, {"checkpoint_every": 0}, {"epochs": 3}])
def test_finetune_options_are_validated(bad):
    with pytest.raises(InputError):
        FinetuneOptions.from_dict(bad)


def test_finetune_seed_defaults_to_the_training_seed(tiny_models):
    trained_seed = read_card(tiny_models["tiny_det"]).training["config"]["train"]["seed"]
    assert finetune_config(tiny_models["tiny_det"], FinetuneOptions()).seed == trained_seed
    assert finetune_config(tiny_models["tiny_det"], FinetuneOptions.from_dict({"seed": trained_seed + 7})).seed == (
        trained_seed + 7
    )


def test_finetune_writes_new_folder_with_before_after(tiny_models, tmp_path):
    image, label = synthetic_case((24, 24, 24), seed=81)
    cases = [CorrectedCase("c1", image, label)]
    report = finetune(
        tiny_models["tiny_det"],
        cases,
        tmp_path / "out",
        tmp_path / "work",
        FinetuneOptions(iterations=4, checkpoint_every=2),
    )
    card = read_card(tmp_path / "out")
    assert card.method == "deterministic" and card.training["finetune"]["cases"] == ["c1"]
    # a single correction is trained on (nothing to hold back): its figures are a training score
    assert report["trained_on"] == ["c1"] and report["held_back"] == [] and report["before"] == {}
    assert set(report["trained_before"]["dice"]) == set(report["trained_after"]["dice"]) == {"c1"}
    assert report["regression"]["cases"] == card.training["data"]["val_cases"]  # the parent's held-out cases
    assert report["resumed_from_step"] == 0 and resume_point(tmp_path / "work") == 0  # finished: no resume file left
    assert (tiny_models["tiny_det"] / "model.json").is_file()  # the parent is untouched


def test_finetune_refuses_labels_off_grid(tiny_models, tmp_path):
    image, label = synthetic_case((24, 24, 24), seed=82)
    small, _ = synthetic_case((16, 16, 16), seed=82)
    with pytest.raises(InputError, match="differs"):
        finetune(tiny_models["tiny_det"], [CorrectedCase("c", small, label)], tmp_path / "o", tmp_path / "w")


def test_loopback_bench_reports_both_sides(tiny_models, tmp_path):
    result = loopback_bench(tiny_models["tiny_det"], shape=(48, 48, 48), repeats=1, work_dir=tmp_path)
    assert result["remote_s"] > 0 and result["local_s"] > 0
    assert result["ratio"] == pytest.approx(result["remote_s"] / result["local_s"])
    assert set(result["remote_phases"]) == {"upload", "request", "download", "inference", "review", "encode"}
    assert result["wire"]["sent_bytes"] > 48**3 and result["wire"]["received_bytes"] > 0
    roi = result["roi"]  # the last prediction fetched whole, as its region of interest, and in the ellipsoid's box
    assert 0 < roi["viewer_box_bytes"] < roi["whole_bytes"] and 0 < roi["viewer_box_fraction"] < 1
    assert roi["roi_bytes"] <= roi["whole_bytes"] + 1024  # never more than whole (the summary JSON aside)
    machine = dict.fromkeys(("date", "cpu", "cores", "ram_gb", "os", "torch", "monai"), "x")
    results = {"machine": machine, "threads": 1, "command": "c", "remote": [{**result, "patch": [8, 8, 8]}]}
    assert "cropped to a viewer's box" in perf_section(results, [], tmp_path / "b.md")


def test_member_check_warnings_travel_with_the_version(tiny_models, tmp_path):
    import json
    import shutil

    from napari_uqseg.server.data_dir import DataDir

    folder = tmp_path / "warned"
    shutil.copytree(tiny_models["tiny_mcd"], folder)
    card = json.loads((folder / "model.json").read_text())
    warning = "'class 1': sample(s) 2 of 3 at Dice 0.00-0.00 against 0.90 for the best sample"
    card["training"]["member_check"] = {"warnings": [warning]}
    (folder / "model.json").write_text(json.dumps(card))
    store = DataDir(tmp_path / "data")
    record = store.add_model_version("brain", folder, metrics={"before": {}})
    assert record.metrics == {"before": {}, "member_warnings": [warning]}
    reopened = DataDir(tmp_path / "data")  # the SQLite ledger kept it
    assert reopened.ledger.versions("brain")[0].metrics["member_warnings"] == [warning]
    clean = store.add_model_version("brain", tiny_models["tiny_det"])
    assert "member_warnings" not in clean.metrics
