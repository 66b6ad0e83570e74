"""Partial Bayes: exact top-k selection, the wrapper, prefix reuse, training end to end, save/load."""

import pytest
import torch
from torch import nn

from napari_uqseg.core.errors import InputError
from napari_uqseg.engine.data import PatchSampler, load_cases
from napari_uqseg.engine.layers.partial_gaussian import CONV_TYPES, PartialGaussian, partial_layers
from napari_uqseg.engine.make_model import build_method, train
from napari_uqseg.engine.methods.base import TrainingData, method_class
from napari_uqseg.engine.methods.partial_bayes import gradient_saliency, select_top_k
from napari_uqseg.engine.model_folder import load_model, read_card, save_model
from napari_uqseg.engine.prediction_files import predict_file
from napari_uqseg.engine.unet import UNet, UNetConfig

OPTIONS = {"samples": 2, "r_bayes": 0.05}


def test_top_k_selects_exactly_k_with_deterministic_ties():
    saliency = [torch.tensor([[0.5, 3.0], [1.0, 1.0]]), torch.tensor([2.0, 1.0, 0.0]), torch.tensor([1.0])]
    chosen = select_top_k(saliency, 3)  # 3.0, 2.0, then the first 1.0 (layer 0, flat position 2)
    assert [c.tolist() for c in chosen] == [[1, 2], [0], []]
    assert sum(c.numel() for c in select_top_k(saliency, 5)) == 5
    torch.manual_seed(0)
    values = [torch.rand(4, 3, 3), torch.rand(50)]
    chosen = select_top_k(values, 7)
    picked = torch.cat([v.flatten()[c] for v, c in zip(values, chosen)])
    assert torch.equal(picked.sort().values, torch.cat([v.flatten() for v in values]).topk(7).values.sort().values)


def test_saliency_modes_differ_as_defined(synthetic_dataset):
    cases = load_cases(synthetic_dataset, ["synth_001", "synth_002"])
    method = method_class("partial_bayes")(UNetConfig(channels=(4, 8)), OPTIONS)
    layers = list(partial_layers(method.nets["net"]))
    sq_sum = gradient_saliency(
        method.nets["net"], layers, PatchSampler(cases, (16,) * 3, seed=3), 2, 2, "square_of_sum"
    )
    sum_sq = gradient_saliency(
        method.nets["net"], layers, PatchSampler(cases, (16,) * 3, seed=3), 2, 2, "sum_of_squares"
    )
    assert [s.shape for s in sq_sum] == [layer.conv.weight.shape for layer in layers]
    # (g1 + g2)^2 <= 2 (g1^2 + g2^2), with equality nowhere in general
    for a, b in zip(sq_sum, sum_sq):
        assert bool((a <= 2 * b + 1e-12).all())
    assert any(not torch.allclose(a, b) for a, b in zip(sq_sum, sum_sq))


def test_wrapper_noise_only_on_bayesian_entries_and_state_round_trip():
    conv = nn.ConvTranspose3d(2, 3, 2, stride=2)
    layer = PartialGaussian(conv)
    layer.set_bayesian(torch.tensor([5, 0, 17]), torch.tensor([-1.0, -2.0, -3.0]))
    assert layer.index.tolist() == [0, 5, 17] and torch.allclose(layer.rho, torch.tensor([-2.0, -1.0, -3.0]))
    diff = (layer.weight_samples(torch.randn(1, 3))[0] - conv.weight).flatten()
    assert set(torch.nonzero(diff).flatten().tolist()) <= {0, 5, 17} and diff.abs().sum() > 0
    x = torch.randn(1, 2, 3, 3, 3)
    assert layer(x).shape == conv(x).shape
    layer(x).sum().backward()
    assert layer.rho.grad.shape == (3,) and conv.weight.grad is not None and not conv.weight.grad.is_sparse
    other = PartialGaussian(nn.ConvTranspose3d(2, 3, 2, stride=2))
    other.load_state_dict(layer.state_dict())  # resizes index/rho from the saved state
    assert torch.equal(other.index, layer.index) and torch.equal(other.rho, layer.rho)


def test_stage_walk_equals_forward_and_prefix_runs_once():
    net = UNet(UNetConfig(spatial_dims=2, channels=(4, 8, 16)))
    x = torch.randn(2, 1, 16, 16)
    n = len(net.stages())
    with torch.no_grad():
        assert torch.allclose(net.run_stages(x, [], 0, n)[0], net(x))
        h, skips = net.run_stages(x, [], 0, 2)
        assert torch.allclose(net.run_stages(h, skips, 2, n)[0], net(x))
    method = method_class("partial_bayes")(UNetConfig(spatial_dims=2, channels=(4, 8, 16)), {"samples": 3})
    target = method.nets["net"].decoders[0].conv_block.conv1.conv  # a PartialGaussian in decoder stage 0
    target.set_bayesian(torch.tensor([0, 1]), torch.zeros(2))
    assert method.first_bayesian_stage() == 3 and method.bayesian_parameters() == 2
    calls = {"enc0": 0, "dec1": 0}
    method.nets["net"].encoders[0].register_forward_hook(lambda *_: calls.__setitem__("enc0", calls["enc0"] + 1))
    method.nets["net"].decoders[1].register_forward_hook(lambda *_: calls.__setitem__("dec1", calls["dec1"] + 1))
    with torch.no_grad():
        stats = method.window_statistics(x)
    assert calls == {"enc0": 1, "dec1": 1}  # batched: the 3 samples pass decoder 1 as one tiled batch
    method.options.batched = False
    with torch.no_grad():
        method.window_statistics(x)
    assert calls == {"enc0": 2, "dec1": 4}  # the loop: prefix once more, 3 more sample passes
    assert stats["mean_prob"].shape == (2, 3, 16, 16)
    share = method.prefix_share()
    assert 0 < share < 1 and method.forward_passes() == pytest.approx(share + 3 * (1 - share))


def test_train_predict_and_exact_save_load(synthetic_dataset, tiny_config, tmp_path):
    tiny_config["method"] = OPTIONS
    model = train("partial_bayes", synthetic_dataset, tmp_path / "model", tiny_config)
    loaded = load_model(model)
    extra = loaded.extra_state()
    total = sum(layer.conv.weight.numel() for layer in loaded.layers())
    assert extra["bayesian_parameters"] == int(0.05 * total) == loaded.bayesian_parameters()
    assert extra["bayesian_share"] == pytest.approx(extra["bayesian_parameters"] / total)
    save_model(loaded, tmp_path / "again", {"0": "bg"}, {})
    again = load_model(tmp_path / "again")
    x = torch.randn(1, 1, 16, 16, 16)
    outs = []
    for m in (loaded, again):
        torch.manual_seed(3)
        with torch.no_grad():
            outs.append(m.window_statistics(x))
    for key in outs[0]:
        assert torch.equal(outs[0][key], outs[1][key])
    assert float((outs[0]["mean_sq_prob"] - outs[0]["mean_prob"] ** 2).max()) > 0  # samples differ
    written = predict_file(model, synthetic_dataset / "imagesTr" / "synth_004.nii.gz", tmp_path / "pred")
    assert "mutual_information" in written


def test_start_from_a_trained_model_copies_its_weights(synthetic_dataset, tiny_config, tmp_path):
    ensemble = train("deep_ensemble", synthetic_dataset, tmp_path / "ens", {**tiny_config, "method": {"members": 2}})
    seen = read_card(ensemble).training["data"]["train_cases"]
    val = [c for c in load_cases(synthetic_dataset) if c.case_id not in seen]
    method, cfg = build_method("partial_bayes", {**tiny_config, "method": OPTIONS}, 3)
    info = method._start_from(str(ensemble), "member_1", TrainingData([], val, 3), cfg)
    assert info["from_net"] == "member_1" and info["history"]["iterations"] == tiny_config["train"]["iterations"]
    source = [m for m in load_model(ensemble).nets["member_1"].modules() if isinstance(m, CONV_TYPES)]
    assert len(source) == len(method.layers())
    for layer, conv in zip(method.layers(), source, strict=True):
        assert torch.equal(layer.conv.weight, conv.weight)

    with pytest.raises(InputError, match="validation case"):
        method._start_from(str(ensemble), "member_1", TrainingData([], load_cases(synthetic_dataset, seen[:1]), 3), cfg)
    with pytest.raises(InputError, match="no plain U-Net 'net'"):
        method._start_from(str(ensemble), "net", TrainingData([], val, 3), cfg)
    wider, wider_cfg = build_method("partial_bayes", {**tiny_config, "net": {"channels": [8, 16, 32]}}, 3)
    with pytest.raises(InputError, match="differs"):
        wider._start_from(str(ensemble), "member_0", TrainingData([], val, 3), wider_cfg)


def test_train_from_a_deterministic_model_skips_pre_training(synthetic_dataset, tiny_config, tmp_path):
    det = train("deterministic", synthetic_dataset, tmp_path / "det", tiny_config)
    options = {**OPTIONS, "from_model": str(det)}
    model = train("partial_bayes", synthetic_dataset, tmp_path / "pb", {**tiny_config, "method": options})
    history = read_card(model).training["history"]
    assert history["deterministic"]["from_model"] == str(det) and "bayesian" in history
    assert history["deterministic"]["history"] == read_card(det).training["history"]["net"]
    assert load_model(model).bayesian_parameters() > 0
