"""The slab-by-slab prediction equals MONAI's full-size sliding window (the path it replaced) on tiny volumes."""

from __future__ import annotations

from itertools import product

import numpy as np
import pytest
import torch
from monai.inferers import sliding_window_inference

from napari_uqseg.core.calibrated_uncertainty import prediction_uncertainty_summary
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.uncertainty import uncertainty_maps
from napari_uqseg.core.volume import Volume
from napari_uqseg.engine import blend_accumulator
from napari_uqseg.engine.blend_accumulator import BlockAccumulator
from napari_uqseg.engine.data import normalise, zscore_stats
from napari_uqseg.engine.inference import predict_volume, window_statistics_over_volume
from napari_uqseg.engine.methods.base import method_class
from napari_uqseg.engine.slab_blend import WindowSource, blended_chunks
from napari_uqseg.engine.unet import UNetConfig
from napari_uqseg.engine.window_grid import importance_map, window_grid, window_weight_sum

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
    [
        ("deterministic", (40, 22, 12), 1),
        ("deterministic", (30, 35, 20), 3),
        ("mc_dropout", (36, 20, 18), 1),
        ("mc_dropout", (41, 37, 21), 1),  # several rows and blocks, the last of each clamped (MONAI's order kept)
    ],
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


def _toy_predictor(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Two statistics that differ from window to window: ``(B, 2, *patch)`` and ``(B, 1, *patch)``."""
    return {"a": torch.sin(3 * x).repeat(1, 2, *[1] * (x.ndim - 2)) + 2, "b": x.abs()}


@pytest.mark.parametrize(
    ("shape", "patch", "overlap", "sw_batch"),
    [
        ((50, 33, 21), (16, 8, 12), 0.75, 2),  # a plane in up to four rows: the carry holds three rows' sums
        ((17, 40, 9), (16, 16, 16), 0.0, 1),  # no overlap: nothing carried; padding along the last axis
        ((45, 19, 33), (16, 16, 16), 0.6, 1),  # blocks along the last axis
        ((60, 41), (16, 16), 0.5, 2),  # 2-D
        ((10, 12, 9), (16, 16, 16), 0.25, 1),  # one padded window
        ((81, 20, 18), (32, 16, 16), 0.25, 1),  # last row 1 plane after the one before: overlap 31 of 32
    ],
)
def test_block_blending_matches_monai_and_covers_every_voxel_once(shape, patch, overlap, sw_batch, monkeypatch):
    monkeypatch.setattr(blend_accumulator, "CHUNK_VOXELS", 500)  # several chunks per finished block
    arr = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    grid = window_grid(shape, patch, overlap)
    source = WindowSource(arr, grid, lambda v: v.astype(np.float32), float(arr.min()))
    got = {"a": np.full((2, *shape), np.nan, np.float32), "b": np.full((1, *shape), np.nan, np.float32)}
    visits = np.zeros(shape, np.int64)
    for region, stats in blended_chunks(_toy_predictor, source, sw_batch):
        visits[region] += 1
        for name, value in stats.items():
            got[name][(slice(None), *region)] = value.numpy()
    x = torch.from_numpy(arr)[None, None]
    ref = sliding_window_inference(x, patch, sw_batch, _toy_predictor, overlap, "gaussian", cval=float(arr.min()))
    assert np.array_equal(visits, np.ones(shape, np.int64))
    for name, value in got.items():
        np.testing.assert_allclose(value, ref[name][0].numpy(), rtol=2e-6, atol=0)


def test_window_weight_sum_is_the_accumulated_count_map():
    grid, weights = window_grid((45, 30, 20), (16, 16, 16), 0.4), importance_map((16, 16, 16))
    count = torch.zeros(grid.padded)
    for start in grid.starts:  # MONAI's order, MONAI's additions
        count[tuple(slice(s, s + p) for s, p in zip(start, grid.patch, strict=True))] += weights
    assert torch.equal(window_weight_sum(grid, weights, tuple(slice(0, n) for n in grid.padded)), count)
    box = (slice(7, 31), slice(12, 13), slice(3, 20))
    assert torch.equal(window_weight_sum(grid, weights, box), count[box])
    assert len(grid.starts) == len(list(product(*grid.axis_starts)))


def test_ct_sums_are_held_for_one_block_and_the_rows_overlap():
    """512 x 512 x 300 with 128^3 windows at overlap 0.25: 128 x 128 x 300 block, 32 x 512 x 300 carry
    (an eighth of the volume together, against a quarter for a 128-plane slab; nothing allocated here)."""
    acc = BlockAccumulator(window_grid((512, 512, 300), (128, 128, 128), 0.25), importance_map((8, 8, 8)))
    assert acc.block_shape == (128, 128, 300) and acc.carry_shape == (32, 512, 300)
    assert not acc.block and not acc.carry
