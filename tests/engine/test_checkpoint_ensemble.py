"""Checkpoint ensembles: checkpoints written to disk in the constant phase, variants, streaming, save/load."""

import json

import numpy as np
import pytest
import torch

from napari_uqseg.core.errors import InputError
from napari_uqseg.engine.data import load_cases
from napari_uqseg.engine.make_model import train
from napari_uqseg.engine.methods.base import TrainingData, method_class
from napari_uqseg.engine.model_folder import load_model, save_model
from napari_uqseg.engine.prediction_files import predict_file
from napari_uqseg.engine.training import TrainConfig
from napari_uqseg.engine.unet import UNetConfig

OPTIONS = {"cycles": 2, "gamma": 0.5, "checkpoints_per_cycle": 2}


def _config(tiny_config, **method):
    tiny_config["train"]["iterations"] = 8  # cycles of 4 steps, 2 of them at constant LR
    tiny_config["method"] = {**OPTIONS, **method}
    return tiny_config


@pytest.mark.parametrize(("variant", "expected"), [("multi_modal", [3, 4, 7, 8]), ("single_modal", [7, 8])])
def test_checkpoints_saved_in_the_constant_phase(synthetic_dataset, tiny_config, tmp_path, variant, expected):
    config = _config(tiny_config, variant=variant)
    model = train(
        "checkpoint_ensemble",
        synthetic_dataset,
        tmp_path / "model",
        config,
        cases=[f"synth_00{i}" for i in range(1, 5)],
    )
    card = json.loads((model / "model.json").read_text())
    names = card["extra"]["checkpoints"]
    assert [int(n.split("_s")[1][:-3]) for n in names] == expected
    assert card["training"]["history"]["checkpoint_steps"] == expected
    assert sorted(p.name for p in (model / "checkpoints").iterdir()) == names
    state = torch.load(model / "checkpoints" / names[0], weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    method = load_model(model)
    assert method.n_samples() == len(expected)
    assert method.info().forward_passes == len(expected)
    states = [torch.load(model / "checkpoints" / n, weights_only=True) for n in names]
    assert any(not torch.equal(states[0][k], states[-1][k]) for k in states[0])  # SGD kept moving


def test_predict_streams_checkpoints_and_round_trips(synthetic_dataset, tiny_config, tmp_path):
    model = train("checkpoint_ensemble", synthetic_dataset, tmp_path / "model", _config(tiny_config))
    streamed = load_model(model)
    streamed.options.cache_mb = 0.0  # force reading each checkpoint from disk per window
    cached = load_model(model)
    save_model(cached, tmp_path / "again", {"0": "bg"}, {})
    again = load_model(tmp_path / "again")
    x = torch.randn(2, 1, 16, 16, 16)
    with torch.no_grad():
        a, b, c = (m.window_statistics(x) for m in (streamed, cached, again))
    assert streamed._cache is None and cached._cache is not None
    for key in a:
        assert torch.equal(a[key], b[key]) and torch.equal(a[key], c[key])
    assert float((a["mean_sq_prob"] - a["mean_prob"] ** 2).max()) > 0  # members differ
    written = predict_file(model, synthetic_dataset / "imagesTr" / "synth_002.nii.gz", tmp_path / "pred")
    assert {"mask", "entropy", "mutual_information", "class_std"} <= set(written)


def test_in_memory_fit_without_work_dir(synthetic_dataset, tiny_config):
    cases = load_cases(synthetic_dataset, ["synth_001", "synth_002"])
    method = method_class("checkpoint_ensemble")(UNetConfig(channels=(4, 8)), {**OPTIONS, "variant": "single_modal"})
    method.patch_size = (16, 16, 16)
    cfg = TrainConfig.from_dict({**tiny_config["train"], "iterations": 8})
    method.fit(TrainingData(cases, [], 3), cfg, lambda *_: None, None)
    assert len(method.checkpoint_files) == 2 and method.checkpoint_dir is None
    with torch.no_grad():
        stats = method.window_statistics(torch.randn(1, 1, 16, 16, 16))
    assert np.isfinite(stats["mean_prob"].numpy()).all()


def test_short_constant_phase_and_bad_variant_are_rejected(synthetic_dataset, tiny_config, tmp_path):
    with pytest.raises(InputError, match="variant"):
        method_class("checkpoint_ensemble")(UNetConfig(channels=(4, 8)), {"variant": "bimodal"})
    config = _config(tiny_config, checkpoints_per_cycle=3)
    with pytest.raises(InputError, match="checkpoints_per_cycle"):
        train("checkpoint_ensemble", synthetic_dataset, tmp_path / "model", config)


def test_single_modal_selected_from_a_multi_modal_run(synthetic_dataset, tiny_config, tmp_path):
    multi = train("checkpoint_ensemble", synthetic_dataset, tmp_path / "multi", _config(tiny_config))
    config = {**tiny_config, "method": {**OPTIONS, "variant": "single_modal", "from_model": str(multi)}}
    single = train("checkpoint_ensemble", synthetic_dataset, tmp_path / "single", config)
    card = json.loads((single / "model.json").read_text())
    names = card["extra"]["checkpoints"]
    assert [int(n.split("_s")[1][:-3]) for n in names] == [7, 8]  # the last cycle's, none trained anew
    assert card["training"]["history"]["selected_from"] == str(multi)
    for name in names:  # copied into the new folder, byte for byte
        assert (single / "checkpoints" / name).read_bytes() == (multi / "checkpoints" / name).read_bytes()
    x = torch.from_numpy(load_cases(synthetic_dataset, ["synth_001"])[0].image[:16, :16, :16].copy())[None, None]
    both = load_model(single), load_model(multi)
    with torch.no_grad():
        torch.testing.assert_close(both[0].nets["net"](x), both[1].nets["net"](x))  # the same final weights
    assert both[0].n_samples() == 2 and both[1].n_samples() == 4


def test_from_model_of_another_method_is_rejected(synthetic_dataset, tiny_config, tmp_path):
    det = train("deterministic", synthetic_dataset, tmp_path / "det", tiny_config)
    config = {**tiny_config, "method": {"from_model": str(det)}}
    with pytest.raises(InputError, match="not a checkpoint_ensemble"):
        train("checkpoint_ensemble", synthetic_dataset, tmp_path / "ens", config)
