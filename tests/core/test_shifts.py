"""Synthetic distribution shifts: deterministic, shape-preserving, stronger with severity, not undone by z-scoring."""

from __future__ import annotations

import numpy as np
import pytest

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.core.shifts import SHIFT_NAMES, apply_shift, case_seed, parse_shift


@pytest.fixture(scope="module")
def image():
    volume, _ = synthetic_case((20, 24, 16), seed=3)
    return volume


def _zscore(x):
    return (x - x.mean()) / x.std()


@pytest.mark.parametrize("name", SHIFT_NAMES)
def test_shift_is_seeded_shape_preserving_and_grows_with_severity(image, name):
    x = image.array
    first = apply_shift(x, name, 3, seed=5, spacing=image.spacing)
    again = apply_shift(x, name, 3, seed=5, spacing=image.spacing)
    np.testing.assert_array_equal(first, again)
    assert first.shape == x.shape and first.dtype == np.float32 and np.all(np.isfinite(first))
    # the model z-scores every volume, so measure the change after z-scoring (what the network sees)
    change = [
        np.abs(_zscore(apply_shift(x, name, s, seed=5, spacing=image.spacing)) - _zscore(x)).mean() for s in (1, 3, 5)
    ]
    assert change[0] > 0.005, change
    assert change[0] < change[1] < change[2], change


@pytest.mark.parametrize("name", ["noise", "bias", "motion"])
def test_random_shifts_differ_between_seeds(image, name):
    a = apply_shift(image.array, name, 3, seed=1)
    b = apply_shift(image.array, name, 3, seed=2)
    assert not np.allclose(a, b)


def test_contrast_is_not_cancelled_by_z_score_but_a_global_scale_would_be(image):
    x = image.array
    np.testing.assert_allclose(_zscore(3.0 * x), _zscore(x), atol=1e-4)
    shifted = apply_shift(x, "contrast", 4, seed=0)
    assert np.abs(_zscore(shifted) - _zscore(x)).mean() > 0.05
    # gamma keeps the intensity range and the order of intensities
    assert shifted.min() == pytest.approx(x.min(), rel=1e-5) and shifted.max() == pytest.approx(x.max(), rel=1e-5)
    order = np.argsort(x.ravel())
    assert np.all(np.diff(shifted.ravel()[order]) >= -1e-3)


def test_blur_and_resolution_remove_fine_detail(image):
    x = image.array.astype(np.float64)

    def roughness(v):
        return np.abs(np.diff(v, axis=0)).mean()

    for name in ("blur", "resolution"):
        assert roughness(apply_shift(x, name, 3, spacing=image.spacing)) < 0.7 * roughness(x)


def test_motion_puts_ghost_energy_outside_the_object():
    x = np.zeros((32, 32, 32), dtype=np.float32)
    x[12:20, 12:20, 12:20] = 100.0
    ghosted = apply_shift(x, "motion", 5, seed=0)
    outside = x == 0
    assert ghosted[outside].mean() > 0.5  # ghosts and ringing appear where there was nothing
    assert ghosted.sum() == pytest.approx(x.sum(), rel=0.5)


def test_bias_field_is_smooth_and_multiplicative(image):
    x = np.full((16, 16, 16), 200.0)
    field = apply_shift(x, "bias", 5, seed=0) / 200.0
    assert field.min() > 0 and field.std() > 0.05
    assert np.abs(np.diff(field, axis=0)).max() < 0.3  # no voxel-to-voxel jumps


def test_parse_shift_and_errors():
    assert parse_shift("noise:3") == ("noise", 3)
    assert parse_shift(" Blur:5") == ("blur", 5)
    for bad, words in (
        ("noise", "NAME:SEVERITY"),
        ("fog:2", "unknown shift"),
        ("noise:x", "not an integer"),
        ("noise:6", "1..5"),
    ):
        with pytest.raises(InputError, match=words) as info:
            parse_shift(bad)
        assert info.value.source == "--shift"
    with pytest.raises(InputError, match="severity"):
        apply_shift(np.ones((4, 4, 4)), "noise", 0)
    assert case_seed(0, "a") == case_seed(0, "a") != case_seed(0, "b")
