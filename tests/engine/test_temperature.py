"""Temperature scaling of any method: the pooled-NLL fit, the logit recorder, the calibrated copy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_uqseg.bench.tiny_models import TINY_CONFIG
from napari_uqseg.cli import main as uqseg
from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.engine.data import Case
from napari_uqseg.engine.inference import predict_volume
from napari_uqseg.engine.make_model import calibrate, train
from napari_uqseg.engine.methods.base import method_class
from napari_uqseg.engine.model_folder import load_model, read_card
from napari_uqseg.engine.temperature import calibration_window, fit_temperature, recorded_logits, validation_logits
from napari_uqseg.engine.unet import UNetConfig


def _labels_drawn_from(logits: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Labels sampled from softmax(logits): the model that made them is perfectly calibrated at T = 1."""
    return torch.multinomial(torch.softmax(logits, -1), 1, generator=torch.Generator().manual_seed(seed))[:, 0]


def test_single_sample_fit_recovers_the_temperature_of_the_data():
    true_logits = 3.0 * torch.randn(20_000, 3, generator=torch.Generator().manual_seed(1))
    labels = _labels_drawn_from(true_logits)
    assert fit_temperature(true_logits, labels) == pytest.approx(1.0, abs=0.05)
    assert fit_temperature(2.0 * true_logits, labels) == pytest.approx(2.0, rel=0.05)  # overconfident by 2
    assert fit_temperature(0.5 * true_logits, labels) == pytest.approx(0.5, rel=0.05)  # underconfident


def test_pooled_fit_minimises_the_nll_of_the_mean_probability():
    gen = torch.Generator().manual_seed(2)
    logits = 2.0 * torch.randn(4, 5_000, 3, generator=gen)  # 4 samples that disagree
    labels = _labels_drawn_from(logits.mean(0), seed=3)
    t = fit_temperature(logits, labels)

    def pooled_nll(temperature: float) -> float:
        mean = torch.softmax(logits / temperature, -1).mean(0)
        return float(-torch.log(mean.gather(1, labels[:, None])).mean())

    assert pooled_nll(t) <= min(pooled_nll(t * 0.9), pooled_nll(t * 1.1), pooled_nll(1.0)) + 1e-6
    # with one sample the pooled objective is plain cross-entropy temperature scaling
    assert fit_temperature(logits[:1], labels) == pytest.approx(fit_temperature(logits[0], labels), rel=1e-4)


def test_window_is_centred_on_the_foreground_and_pads_outside_the_roi():
    image, label = synthetic_case((30, 12, 20), seed=5)
    case = Case("c", image.array.astype(np.float32), label.array, image.affine)
    x, labels, roi = calibration_window(case, (16, 16, 16))
    assert x.shape == (1, 1, 16, 16, 16) and labels.shape == roi.shape == (16, 16, 16)
    assert not roi[:, :2].any() and not roi[:, -2:].any()  # axis 1 (12 < 16) is padded on both sides
    assert float(x[0, 0, :, 0].max()) == pytest.approx(float(image.array.min()))
    assert labels[roi].max() > 0  # the window holds the labelled structure


def test_recorder_sees_every_member_and_leaves_the_method_as_it_was():
    method = method_class("deep_ensemble")(UNetConfig(channels=(4, 8, 16)), {"members": 3})
    method.eval()
    x = torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad(), recorded_logits(method) as records:
        stats = method.window_statistics(x)
    logits = torch.cat(records)
    assert logits.shape == (3, 3, 16, 16, 16)
    torch.testing.assert_close(stats["mean_prob"][0], torch.softmax(logits, 1).mean(0))
    assert "probabilities" not in vars(method)  # the class's method is back


@pytest.mark.parametrize("name,options", [("deterministic", {}), ("mc_dropout", {"samples": 3})])
def test_calibrated_copy_changes_probabilities_not_the_segmentation(synthetic_dataset, tmp_path, name, options):
    config = {
        **TINY_CONFIG,
        "method": {**options, **({"temperature_scaling": False} if name == "deterministic" else {})},
    }
    model = train(name, synthetic_dataset, tmp_path / "raw", config, device="cpu")
    out, temperature = calibrate(model, tmp_path / "calibrated", device="cpu")
    assert read_card(model).extra["temperature"] == 1.0  # the original is untouched
    card = read_card(out)
    assert card.extra["temperature"] == pytest.approx(temperature) and temperature != 1.0
    assert card.training["calibration"]["cases"] == read_card(model).training["data"]["val_cases"]
    raw, scaled = load_model(model), load_model(out)
    assert scaled.temperature == pytest.approx(temperature)
    image, _ = synthetic_case((20, 22, 18), seed=7)
    results = []
    for method in (raw, scaled):
        torch.manual_seed(0)
        results.append(predict_volume(method, image))
    # argmax of one window's softmax ignores T; where windows are blended or samples pooled it may move a little
    assert np.mean(results[0].mask.array == results[1].mask.array) > 0.98
    assert not np.allclose(results[0].probabilities.array, results[1].probabilities.array)
    # the fitted T lowers the validation NLL of the pooled prediction
    z, y = validation_logits(raw, _val_cases(model))
    nll = lambda t: float(-torch.log(torch.softmax(z / t, -1).mean(0).gather(1, y[:, None])).mean())  # noqa: E731
    assert nll(temperature) <= nll(1.0)


def _val_cases(model):
    from napari_uqseg.engine.data import load_cases

    data = read_card(model).training["data"]
    return load_cases(data["dir"], data["val_cases"])


def test_cli_calibrate_refuses_to_overwrite_the_model(synthetic_dataset, tmp_path, capsys):
    model = train("deterministic", synthetic_dataset, tmp_path / "m", TINY_CONFIG, device="cpu")
    assert uqseg(["calibrate", "--model", str(model), "--out", str(model)]) == 2
    assert "must differ from --model" in capsys.readouterr().err
