"""The slab-by-slab prediction equals MONAI's full-size sliding window (the path it replaced) on tiny volumes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_uqseg.core.calibrated_uncertainty import prediction_uncertainty_summary
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.uncertainty import uncertainty_maps
from napari_uqseg.core.volume import Volume
from napari_uqseg.engine.data import normalise, zscore_stats
from napari_uqseg.engine.inference import predict_volume, window_statistics_over_volume
from napari_uqseg.engine.methods.base import method_class
from napari_uqseg.engine.slab_blend import window_grid
from napari_uqseg.engine.unet import UNetConfig

# float16 outputs: half a step below 1 for probabilities, a relative half step for maps (prediction_writer);
# class_std = sqrt(E[p^2] - E[p]^2) of float32 moments: 1-ulp differences in the blended sums (fused
# multiply-add here, multiply then add in MONAI) move a near-zero std by up to sqrt(2^-23) ~ 3.5e-4
PROB_TOL, MAP_RTOL, STD_ATOL = 2.5e-4, 5e-4, 4e-4


def _method(name: str, options: dict | None = None, patch=(16, 16, 16)):
    torch.manual_seed(0)
    method = method_class(name)(UNetConfig(channels=(4, 8), num_classes=3), options or {})
    method.patch_size = patch
    return method


def _reference(method, array: np.ndarray, overlap: float = 0.25) -> dict[str, np.ndarray]:
    """The former predict_volume: full-size blended statistics from MONAI, then the maps."""
    x = torch.from_numpy(normalise(array, method.normalisation))[None, None]
    method.eval()
    torch.manual_seed(1)
    stats = {k: v[0].numpy() for k, v in window_statistics_over_volume(method, x, overlap).items()}
    n = method.n_samples()
    maps = uncertainty_maps(stats["mean_prob"], stats.get("mean_sq_prob"), stats["expected_entropy"][0], n)
    mask = np.argmax(stats["mean_prob"], axis=0)
    summary = prediction_uncertainty_summary(stats["mean_prob"], stats.get("mean_sq_prob"), n, mask, np.eye(4), None)
    return {"mean_prob": stats["mean_prob"], **maps, "summary": summary}


def _volume(shape, seed=0) -> Volume:
    rng = np.random.default_rng(seed)
    return Volume((rng.standard_normal(shape) * 50 + 200).astype(np.float32), np.eye(4))


@pytest.mark.parametrize(
    ("name", "shape", "sw_batch"),
    [("deterministic", (40, 22, 12), 1), ("deterministic", (30, 35, 20), 3), ("mc_dropout", (36, 20, 18), 1)],
)
def test_slab_prediction_matches_full_size_blending(name, shape, sw_batch):
    method, volume = _method(name, {"samples": 3} if name == "mc_dropout" else None), _volume(shape)
    ref = _reference(method, volume.array)
    torch.manual_seed(1)  # the same dropout draws in the same window order
    got = predict_volume(method, volume, sw_batch_size=sw_batch, precision="float32")
    assert got.probabilities.array.dtype == np.float16
    np.testing.assert_allclose(got.probabilities.array, ref["mean_prob"], atol=PROB_TOL + 1e-5)
    assert np.array_equal(got.mask.array, np.argmax(ref["mean_prob"], axis=0))
    assert set(got.maps) == set(method.maps) & set(ref)
    for key, value in got.maps.items():
        atol = STD_ATOL if key == "class_std" else 1e-5
        np.testing.assert_allclose(value.array, ref[key], rtol=MAP_RTOL, atol=atol)
    _assert_close_tree(got.info["volumes"], ref["summary"]["volumes"])


def _assert_close_tree(got, expected) -> None:
    """Nested dicts/lists equal, numbers within a relative 1e-4 (float32 sums in another order)."""
    if isinstance(expected, dict):
        assert set(got) == set(expected)
        for key in expected:
            _assert_close_tree(got[key], expected[key])
    elif isinstance(expected, list | tuple):
        assert len(got) == len(expected)
        for g, e in zip(got, expected, strict=True):
            _assert_close_tree(g, e)
    elif isinstance(expected, float):
        assert got == pytest.approx(expected, rel=1e-4, abs=1e-6)
    else:
        assert got == expected


def test_float32_switch_and_probability_classes():
    method, volume = _method("deterministic"), _volume((20, 18, 17))
    ref = _reference(method, volume.array)
    got = predict_volume(method, volume, output_dtype="float32", probability_classes=[1, 2], precision="float32")
    assert got.probabilities.array.dtype == np.float32 and got.maps["entropy"].array.dtype == np.float32
    np.testing.assert_allclose(got.probabilities.array, ref["mean_prob"][1:], atol=2e-6)
    np.testing.assert_allclose(got.maps["entropy"].array, ref["entropy"], atol=2e-6)
    assert got.info["probability_classes"] == [1, 2]
    assert np.array_equal(got.mask.array, np.argmax(ref["mean_prob"], axis=0))
    with pytest.raises(InputError, match="probability_classes"):
        predict_volume(method, volume, probability_classes=[3])
    with pytest.raises(InputError, match="output_dtype"):
        predict_volume(method, volume, output_dtype="int8")


def test_window_grid_uses_the_axis_with_most_windows_and_pads_like_monai():
    grid = window_grid((100, 30, 40), (32, 32, 32), 0.25)
    assert grid.axis == 0 and grid.padded == (100, 32, 40) and grid.pad_before == (0, 1, 0)
    assert len(grid.starts) == 4 * 1 * 2


def test_zscore_stats_match_numpy_in_float64():
    rng = np.random.default_rng(3)
    array = rng.integers(-1000, 2000, size=(300, 70, 9)).astype(np.int16)
    array[:40] = 0
    mean, std = zscore_stats(array)
    assert mean == pytest.approx(array.astype(np.float64).mean(), rel=1e-12)
    assert std == pytest.approx(array.astype(np.float64).std(), rel=1e-12)
    nonzero = array[array != 0].astype(np.float64)
    assert zscore_stats(array, "zscore_nonzero") == pytest.approx((nonzero.mean(), nonzero.std()), rel=1e-12)
