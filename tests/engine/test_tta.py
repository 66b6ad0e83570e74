"""Test-time augmentation around any method: mirroring, pooled samples, options."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_uqseg.cli.tta_option import TTA_CHOICES
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.core.volume import Volume
from napari_uqseg.engine.inference import predict_volume
from napari_uqseg.engine.methods.base import method_class
from napari_uqseg.engine.tta import TTA_MODES, TTAOptions, parse_tta, tta_key, with_tta
from napari_uqseg.engine.unet import UNetConfig


def _tiny(name: str, options: dict | None = None):
    torch.manual_seed(0)
    method = method_class(name)(UNetConfig(channels=(4, 8, 16)), options or {})
    method.patch_size = (16, 16, 16)
    method.eval()
    return method


def test_mirroring_averages_the_flipped_predictions():
    """TTA ``flips`` on a deterministic net = the mean of the predictions of the original and of the image
    flipped along each axis, each flipped back (exact up to float rounding on a one-window volume)."""
    method = _tiny("deterministic")
    image, _ = synthetic_case((16, 16, 16), seed=3)
    exact = {"output_dtype": "float32", "precision": "float32"}
    mirrored = predict_volume(with_tta(method, "flips"), image, **exact).probabilities.array
    expected = predict_volume(method, image, **exact).probabilities.array
    for axis in range(3):
        flipped = Volume(np.ascontiguousarray(np.flip(image.array, axis)), image.affine)
        expected = expected + np.flip(predict_volume(method, flipped, **exact).probabilities.array, axis + 1)
    np.testing.assert_allclose(mirrored, expected / 4, atol=1e-6)
    assert not np.allclose(mirrored, predict_volume(method, image, **exact).probabilities.array, atol=1e-4)


def test_a_deterministic_net_gets_sample_maps_and_costs_one_pass_per_view():
    method = _tiny("deterministic")
    image, _ = synthetic_case((16, 16, 16), seed=4)
    plain = predict_volume(method, image)
    augmented = predict_volume(with_tta(method, "flips"), image)
    assert set(plain.maps) == {"entropy"} and plain.info["tta"] == "none"
    assert {"mutual_information", "class_std", "expected_entropy"} <= set(augmented.maps)
    assert float(augmented.maps["mutual_information"].array.max()) > 0
    assert augmented.info["samples"] == 4 and augmented.info["tta"] == "flips"
    wrapped = with_tta(method, "flips+intensity")
    assert wrapped.n_samples() == 6 and wrapped.forward_passes() == 6.0
    assert tta_key(wrapped) == "flips+intensity0.1" and tta_key(method) == "none"


def test_tta_pools_with_the_methods_own_samples():
    method = _tiny("mc_dropout", {"samples": 3})
    wrapped = with_tta(method, "flips")
    assert wrapped.n_samples() == 12 and wrapped.forward_passes() == 4 * method.forward_passes()
    image, _ = synthetic_case((16, 16, 16), seed=5)
    torch.manual_seed(0)
    prediction = predict_volume(wrapped, image)
    assert prediction.method == "mc_dropout" and prediction.info["samples"] == 12
    np.testing.assert_allclose(prediction.probabilities.array.astype(np.float32).sum(0), 1.0, atol=1e-3)  # float16


def test_tta_options_are_checked():
    assert parse_tta(None) is None and parse_tta("none") is None
    assert parse_tta({"flips": False, "intensity": 0.2}) == TTAOptions(False, 0.2)
    with pytest.raises(InputError, match="unknown TTA mode"):
        parse_tta("rotations")
    with pytest.raises(InputError, match="unknown option"):
        parse_tta({"flip": True})
    with pytest.raises(InputError, match="intensity"):
        parse_tta({"intensity": 2.0})
    assert TTA_CHOICES == tuple(TTA_MODES)  # the CLI offers exactly the engine's modes
