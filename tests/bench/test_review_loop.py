"""``uqseg loop run`` on tiny data: a simulated reader corrects through a real server, which fine-tunes."""

from __future__ import annotations

import json

import pytest

from napari_uqseg.bench.review_loop import LoopConfig, run_loop, split_site
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.loop_plots import loop_dice_png


def test_split_site_keeps_scan_partners_apart():
    corrected, unseen = split_site([f"hippocampus_{i:03d}" for i in (4, 1, 2, 3, 7, 8)], 3)
    assert corrected == ["hippocampus_001", "hippocampus_002", "hippocampus_003"]
    assert unseen == ["hippocampus_007", "hippocampus_008"]  # 004 shares its scan with the corrected 003
    with pytest.raises(InputError):
        split_site(["a1", "a2"], 2)


def test_loop_through_a_real_server(tiny_models, tmp_path):
    data_dir = tiny_models["tiny_det"].parents[1] / "dataset"
    ids = [f"synth_{i:03d}" for i in range(1, 5)]
    options = {"iterations": 2, "checkpoint_every": 1, "held_back_fraction": 0.0, "regression_cases": 1}
    options["loss_mask"] = "reviewed"  # the option under test (the default adds the model's confident voxels)
    config = LoopConfig(k=1, rounds=1, arms=("uncertainty", "random", "whole"), finetune=options, budget=0.2)
    result = run_loop(tiny_models["tiny_det"], data_dir, ids, tmp_path, config)

    assert result["corrected"] == ["synth_001"] and result["unseen"] == ["synth_003", "synth_004"]
    assert set(result["baseline"]) == {"site_unseen", "in_distribution"}
    for arm in ("uncertainty", "random", "whole"):
        (round_1,) = result["arms"][arm]
        assert round_1["version"] == "v2" and round_1["job"]["finetuned_on"] == [round_1["reads"][0]["correction"]]
        assert 0 <= round_1["dice"]["site_unseen"] <= 1 and set(round_1["per_case"]["site_unseen"]) == set(
            result["unseen"]
        )
        (read,) = round_1["reads"]
        assert 0 <= read["errors_fixed"] <= read["errors"]
        assert "promote" in round_1["job"]["recommendation"]
    for arm in ("uncertainty", "random"):  # partial readers stay within the budget of ROI voxels
        partial = result["arms"][arm][0]["reads"][0]
        assert 0 < partial["reviewed_voxels"] <= 0.2 * partial["roi_voxels"] and partial["regions"] >= 1
        # and send what they reviewed: the fine-tune trains their correction on those voxels only
        assert partial["reviewed_mask_sent"]
        assert result["arms"][arm][0]["job"]["loss_mask"] == {
            "mode": "reviewed",
            "partial": [partial["correction"]],
        }
    whole = result["arms"]["whole"][0]["reads"][0]
    assert whole["reviewed_voxels"] == whole["roi_voxels"] and whole["errors_fixed"] == whole["errors"]
    assert not whole["reviewed_mask_sent"] and result["arms"]["whole"][0]["job"]["loss_mask"]["partial"] == []
    assert json.loads((tmp_path / "loop.json").read_text())["arms"].keys() == {"uncertainty", "random", "whole"}
    png = loop_dice_png(result, tmp_path / "loop_dice.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
