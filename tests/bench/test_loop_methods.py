"""`uqseg loop methods` figures for one tiny model: bounded regions, three orders, scores chosen on validation."""

from __future__ import annotations

import json
import shutil

from napari_uqseg.bench.loop_methods import BUDGETS, evaluate_model, summarise
from napari_uqseg.cli import main as uqseg
from napari_uqseg.core.case_scores import DESCRIPTIONS, choose_case_score
from napari_uqseg.engine.model_folder import read_card


def test_methods_figures_on_a_tiny_model(tiny_models):
    result = evaluate_model(tiny_models["tiny_mcd"], ["synth_003", "synth_004"])
    assert result["method"] == "mc_dropout" and set(result["site_test"]) == {"synth_003", "synth_004"}
    assert result["val"], "the tiny model's card names its validation cases"
    assert set(result["val_shift"]) == set(result["val"]) and result["selection_shift"] == [["noise", 3]]
    summary = summarise(result)
    assert summary["default_score"] in summary["val_scores"] and set(summary["val_scores"]) <= set(DESCRIPTIONS)
    val = summary["val_scores"]  # the choice is the rule's, on validation figures only
    assert summary["default_score"] == choose_case_score(
        {n: v["spearman"] for n, v in val.items()}, {n: v["site_auroc"] for n, v in val.items()}
    )
    assert "volume_spread" in summary["val_scores"]  # a sampling method has the spread score
    for split in ("test", "site_test"):
        figures = summary[split]
        assert 0 < figures["largest_region"] <= 256
        for order in ("uncertainty", "random", "oracle"):
            curve = figures[f"recall_{order}"]
            assert len(curve) == len(BUDGETS) and all(0 <= a <= b <= 1 for a, b in zip(curve, curve[1:]))
        assert figures["first5_voxels_uncertainty"] <= 5 * 256  # five regions of at most 256 voxels
        # the queue's regions sorted by their true errors: no order of them finds more in its first five
        assert figures["first5_queue_oracle"] >= figures["first5_uncertainty"] - 1e-9
    assert "site_auroc" in next(iter(summary["test_scores"].values()))
    # every map's queue is scored, and the review map is chosen on the validation cases
    row = next(iter(result["test"].values()))
    assert {"entropy", "mutual_information"} <= set(row["review_maps"])
    assert row["review_maps"][row["review_map"]]["first5_uncertainty"] == row["first5_uncertainty"]
    val_maps = summary["review_maps"]["val"]
    assert summary["best_review_map"] == max(val_maps, key=lambda n: val_maps[n]["first5_uncertainty"])
    for name, figures in summary["review_maps"]["test"].items():
        assert figures["first5_queue_oracle"] >= figures["first5_uncertainty"] - 1e-9, name


def test_loop_methods_cli_stores_both_choices_in_the_card(tiny_models, tmp_path, capsys):
    folder = shutil.copytree(tiny_models["tiny_mcd"], tmp_path / "mcd")
    cases = tmp_path / "test.txt"
    cases.write_text("synth_003\nsynth_004\n")
    out = tmp_path / "out"
    argv = ["loop", "methods", "--model", str(folder), "--cases", str(cases), "--out", str(out)]
    assert uqseg([*argv, "--selection-shift", "noise:4", "--store-choices"]) == 0
    (summary,) = json.loads((out / "methods.json").read_text())
    assert json.loads((out / "mcd.json").read_text())["selection_shift"] == [["noise", 4]]
    extra = read_card(folder).extra
    assert extra["review_map"] == summary["best_review_map"] and extra["case_score"] == summary["default_score"]
    assert (out / "errors_found_test.png").stat().st_size > 0
    capsys.readouterr()
    assert uqseg([*argv, "--selection-shift", "noise:x"]) != 0  # a bad shift is refused by its option's name
    assert "--selection-shift: severity 'x' is not an integer" in capsys.readouterr().err
