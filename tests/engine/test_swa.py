"""SWA: the averaged weights are the mean of the last cycle's constant-phase weights; BN re-estimated."""

import pytest
import torch
from torch import nn

from napari_uqseg.engine.data import load_cases
from napari_uqseg.engine.make_model import train
from napari_uqseg.engine.methods.base import TrainingData, method_class
from napari_uqseg.engine.model_folder import load_model, save_model
from napari_uqseg.engine.prediction_files import predict_file
from napari_uqseg.engine.training import TrainConfig
from napari_uqseg.engine.unet import UNetConfig

OPTIONS = {"cycles": 2, "gamma": 0.5, "checkpoints_per_cycle": 2}


def test_average_of_the_collected_weights(synthetic_dataset, tiny_config):
    cases = load_cases(synthetic_dataset, ["synth_001", "synth_002"])
    swa = method_class("swa")(UNetConfig(channels=(4, 8)), OPTIONS)
    ens = method_class("checkpoint_ensemble")(UNetConfig(channels=(4, 8)), {**OPTIONS, "variant": "single_modal"})
    cfg = TrainConfig.from_dict({**tiny_config["train"], "iterations": 8})
    for m in (swa, ens):
        torch.manual_seed(0)  # same initial weights and patches: the same SGD trajectory
        m.nets["net"].load_state_dict(
            method_class("deterministic")(UNetConfig(channels=(4, 8))).nets["net"].state_dict()
        )
        m.fit(TrainingData(cases, [], 3), cfg, lambda *_: None, None)
    assert swa.averaged_count == 2
    checkpoints = [{k: v.float() for k, v in ens._cache[n].items()} for n in ens.checkpoint_files]
    for key, value in swa.nets["net"].state_dict().items():
        mean = (checkpoints[0][key] + checkpoints[1][key]) / 2
        assert torch.allclose(value, mean, atol=2e-3)  # fp16 checkpoints vs fp32 average
    assert any(not torch.equal(checkpoints[0][k], checkpoints[1][k]) for k in checkpoints[0])


def test_batch_norm_statistics_are_re_estimated(synthetic_dataset, tiny_config, tmp_path):
    tiny_config["net"]["norm"] = "batch"
    tiny_config["train"]["iterations"] = 8
    tiny_config["method"] = {**OPTIONS, "bn_batches": 3}
    model = train("swa", synthetic_dataset, tmp_path / "model", tiny_config)
    method = load_model(model)
    norms = [m for m in method.nets.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms and all(int(m.num_batches_tracked) == 3 for m in norms)  # update_bn ran 3 batches fresh
    assert method.info().forward_passes == 1 and method.maps == ("entropy",)
    assert method.extra_state()["averaged_checkpoints"] == 2
    save_model(method, tmp_path / "again", {"0": "bg"}, {})
    x = torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad():
        a = method.window_statistics(x)["mean_prob"]
        b = load_model(tmp_path / "again").window_statistics(x)["mean_prob"]
    assert torch.equal(a, b)
    written = predict_file(model, synthetic_dataset / "imagesTr" / "synth_003.nii.gz", tmp_path / "pred")
    assert set(written) == {"mask", "probabilities", "entropy", "review"}


@pytest.mark.parametrize("norm", ["instance"])
def test_instance_norm_needs_no_update(norm):
    swa = method_class("swa")(UNetConfig(channels=(4, 8), norm=norm), OPTIONS)
    assert not [m for m in swa.nets.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def test_swa_from_a_trained_checkpoint_ensemble(synthetic_dataset, tiny_config, tmp_path):
    config = {**tiny_config, "train": {**tiny_config["train"], "iterations": 8}, "method": OPTIONS}
    ensemble = train("checkpoint_ensemble", synthetic_dataset, tmp_path / "ens", config)
    swa_config = {**config, "method": {**OPTIONS, "from_model": str(ensemble)}}
    swa = load_model(train("swa", synthetic_dataset, tmp_path / "swa", swa_config))
    ens = load_model(ensemble)
    last = [n for n in ens.checkpoint_files if "_c1_" in n]
    assert swa.averaged_count == len(last) == 2
    states = [torch.load(ensemble / "checkpoints" / n, weights_only=True) for n in last]
    for key, value in swa.nets["net"].state_dict().items():
        if value.is_floating_point():
            assert torch.allclose(value, (states[0][key].float() + states[1][key].float()) / 2, atol=1e-6)


def test_swa_from_a_model_of_another_method_is_rejected(synthetic_dataset, tiny_config, tmp_path):
    from napari_uqseg.core.errors import InputError

    det = train("deterministic", synthetic_dataset, tmp_path / "det", tiny_config)
    with pytest.raises(InputError, match="not a checkpoint_ensemble"):
        train("swa", synthetic_dataset, tmp_path / "swa", {**tiny_config, "method": {"from_model": str(det)}})
