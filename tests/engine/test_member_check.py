"""Member check: per-sample Dice before pooling, and the warning for a sample that lost a class."""

import numpy as np
import pytest
import torch

from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.engine.data import Case, normalise
from napari_uqseg.engine.member_check import check_members, member_dice, weak_members
from napari_uqseg.engine.methods.base import method_class
from napari_uqseg.engine.unet import UNetConfig


def _constant_member(net: torch.nn.Module, winner: int) -> None:
    """Make a U-Net predict class ``winner`` everywhere (zero head weights, one large bias)."""
    conv = net.head.conv.conv
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        conv.bias[winner] = 10.0


def test_member_dice_scores_each_sample_before_pooling():
    image, label = synthetic_case((16, 16, 16), seed=3)
    case = Case("c", normalise(image.array), label.array, image.affine)
    method = method_class("deep_ensemble")(UNetConfig(channels=(4, 8, 16)), {"members": 3})
    method.patch_size = (16, 16, 16)
    for net, winner in zip(method.members(), (0, 1, 2), strict=True):
        _constant_member(net, winner)
    dice, dissent = member_dice(method, [case])
    assert dice.shape == (3, 2)
    ones, twos = (label.array == 1).sum(), (label.array == 2).sum()
    window = label.array.size
    # member 0 predicts background only; member k predicts class k over the whole window
    np.testing.assert_allclose(dice[0], [0.0, 0.0])
    assert dice[1, 0] == pytest.approx(2 * ones / (window + ones)) and dice[1, 1] == 0.0
    assert dice[2, 1] == pytest.approx(2 * twos / (window + twos)) and dice[2, 0] == 0.0
    assert dissent == 0.0  # every voxel has three different answers: nobody dissents alone


def test_weak_members_names_the_sample_and_the_class():
    dice = np.array([[0.0, 0.87], [0.88, 0.86], [0.88, 0.0], [0.87, 0.86]])
    messages = weak_members(dice, {"1": "Anterior", "2": "Posterior"})
    assert len(messages) == 2
    assert messages[0].startswith("'Anterior': sample(s) 0 of 4 at Dice 0.00-0.00 against 0.88")
    assert messages[1].startswith("'Posterior': sample(s) 2 of 4")
    assert weak_members(np.array([[0.80, 0.7], [0.75, 0.72]])) == []
    assert weak_members(np.array([[0.1], [0.0]])) == [], "no sample segments the class: nothing to compare"


def test_check_members_record_is_json_ready():
    image, label = synthetic_case((16, 16, 16), seed=4)
    case = Case("c", normalise(image.array), label.array, image.affine)
    method = method_class("masksembles")(UNetConfig(channels=(4, 8, 16)), {"n_masks": 2})
    method.patch_size = (16, 16, 16)
    record = check_members(method, [case])
    assert record["cases"] == 1 and len(record["dice_per_sample_and_class"]) == 2
    assert all(isinstance(v, float) for row in record["dice_per_sample_and_class"] for v in row)
    assert isinstance(record["warnings"], list)


def test_cli_train_prints_the_member_check_warnings(capsys, synthetic_dataset, tiny_config, tmp_path):
    import json

    from napari_uqseg.cli import main
    from napari_uqseg.cli.train import print_member_warnings

    config = tmp_path / "config.json"
    config.write_text(json.dumps({**tiny_config, "method": {"members": 2}}))
    out = tmp_path / "ens"
    argv = ["train", "--method", "deep_ensemble", "--data", str(synthetic_dataset), "--out", str(out)]
    assert main([*argv, "--config", str(config), "--device", "cpu"]) == 0
    card = json.loads((out / "model.json").read_text())
    check = card["training"]["member_check"]
    assert np.shape(check["dice_per_sample_and_class"]) == (2, 2)
    printed = capsys.readouterr().out
    assert printed.count("warning (member check") == len(check["warnings"])
    check["warnings"] = ["'Anterior': sample(s) 1 of 2 at Dice 0.00-0.00 against 0.90 for the best sample"]
    (out / "model.json").write_text(json.dumps(card))
    print_member_warnings(out)
    assert "warning (member check on the validation cases): 'Anterior': sample(s) 1 of 2" in capsys.readouterr().out
