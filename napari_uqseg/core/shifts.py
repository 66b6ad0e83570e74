"""Synthetic distribution shifts for robustness tests: six image corruptions at severities 1..5 (numpy/scipy).

The four shifts of the VI-MH paper (noise, blur, bias field, motion; the paper made them with TorchIO,
which is not a dependency here) plus a contrast change and a resolution change. Every shift acts on the
*raw* intensities, before the per-volume normalisation of the model, is deterministic for a given
``seed`` and keeps the shape and the affine of the image.

A global intensity scale is deliberately not a shift: the per-volume z-score undoes ``a * x`` exactly,
so the ``contrast`` shift uses a nonlinear gamma curve instead.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import numpy as np
from scipy import ndimage

from napari_uqseg.core.errors import InputError

SEVERITIES = (1, 2, 3, 4, 5)

#: per-shift parameter at severities 1..5 (index 0 = severity 1)
PARAMETERS: dict[str, tuple[float, ...]] = {
    "noise": (0.05, 0.1, 0.2, 0.3, 0.5),  # Gaussian noise std as a fraction of the image's intensity std
    "blur": (0.5, 1.0, 1.5, 2.0, 3.0),  # Gaussian kernel std in mm
    "bias": (0.1, 0.2, 0.3, 0.45, 0.6),  # max |log field|: the field lies in [exp(-L), exp(L)]
    "motion": (1.0, 2.0, 3.0, 5.0, 8.0),  # max translation in mm of each head movement
    "contrast": (1.25, 1.5, 2.0, 2.5, 3.0),  # gamma (or 1/gamma, seeded) on min-max scaled intensities
    "resolution": (1.5, 2.0, 2.5, 3.0, 4.0),  # down-sampling factor on every axis
}

#: what each shift simulates, for help texts and reports
DESCRIPTIONS = {
    "noise": "additive Gaussian noise (std = k x image std)",
    "blur": "Gaussian blur (std in mm, anisotropic in voxels)",
    "bias": "smooth multiplicative bias field exp(cubic polynomial)",
    "motion": "rigid head translations during acquisition (k-space lines after each move are phase-shifted): ghosting",
    "contrast": "nonlinear gamma contrast change (a global scale would be cancelled by the z-score)",
    "resolution": "down-sampling by a factor then linear up-sampling back to the grid (partial-volume loss)",
}

SHIFT_NAMES = tuple(PARAMETERS)


def parse_shift(text: str, source: str = "--shift") -> tuple[str, int]:
    """Parse ``"NAME:SEVERITY"`` (e.g. ``"noise:3"``).

    Raises
    ------
    InputError
        Unknown name, missing colon, severity not an integer in 1..5.
    """
    name, sep, level = str(text).partition(":")
    name = name.strip().lower()
    if not sep:
        raise InputError(source, f"{text!r} must be NAME:SEVERITY, e.g. noise:3 (names: {', '.join(SHIFT_NAMES)})")
    if name not in PARAMETERS:
        raise InputError(source, f"unknown shift {name!r}; choose one of {', '.join(SHIFT_NAMES)}")
    try:
        severity = int(level)
    except ValueError:
        raise InputError(source, f"severity {level!r} is not an integer 1..5") from None
    if severity not in SEVERITIES:
        raise InputError(source, f"severity {severity} is outside 1..5")
    return name, severity


def case_seed(seed: int, case_id: str) -> int:
    """A per-case seed: the same case always gets the same corruption, different cases different ones."""
    return (int(seed) * 1_000_003 + zlib.crc32(case_id.encode())) % (2**32)


def apply_shift(
    image: np.ndarray,
    name: str,
    severity: int,
    seed: int = 0,
    spacing: Sequence[float] | None = None,
) -> np.ndarray:
    """Corrupt a raw intensity image.

    Parameters
    ----------
    image : np.ndarray
        ``(I, J, K)`` (or 2-D) raw intensities.
    name : str
        One of :data:`SHIFT_NAMES`.
    severity : int
        1 (mild) .. 5 (strong); see :data:`PARAMETERS`.
    seed : int
        Seed of every random draw (noise, field coefficients, motion timing, gamma direction).
    spacing : sequence of float, optional
        Voxel size in mm per axis (default 1 mm); used by ``blur`` and ``motion``.

    Returns
    -------
    np.ndarray
        float32 array of the same shape.
    """
    if name not in PARAMETERS:
        raise InputError("shift", f"unknown shift {name!r}; choose one of {', '.join(SHIFT_NAMES)}")
    if severity not in SEVERITIES:
        raise InputError("severity", f"must be one of 1..5, got {severity}")
    x = np.asarray(image, dtype=np.float64)
    sp = np.ones(x.ndim) if spacing is None else np.asarray(spacing, dtype=np.float64)[: x.ndim]
    if sp.size != x.ndim or np.any(sp <= 0):
        raise InputError("spacing", f"needs {x.ndim} positive values, got {spacing}")
    # severity only scales the parameter: the same seed draws the same noise/field/motion at every severity
    rng = np.random.default_rng([int(seed) % (2**32), SHIFT_NAMES.index(name)])
    value = PARAMETERS[name][severity - 1]
    return _SHIFTS[name](x, value, rng, sp).astype(np.float32)


def _noise(x: np.ndarray, k: float, rng: np.random.Generator, sp: np.ndarray) -> np.ndarray:
    return x + rng.normal(0.0, k * float(x.std()), x.shape)


def _blur(x: np.ndarray, sigma_mm: float, rng: np.random.Generator, sp: np.ndarray) -> np.ndarray:
    return ndimage.gaussian_filter(x, sigma=sigma_mm / sp, mode="nearest")


def _bias(x: np.ndarray, limit: float, rng: np.random.Generator, sp: np.ndarray) -> np.ndarray:
    grids = np.meshgrid(*[np.linspace(-1.0, 1.0, n) for n in x.shape], indexing="ij")
    log_field = np.zeros(x.shape)
    exponents = [e for e in np.ndindex(*(4,) * x.ndim) if 0 < sum(e) <= 3]  # monomials of total order 1..3
    for e in exponents:
        term = np.ones(x.shape)
        for g, power in zip(grids, e, strict=True):
            term = term * g**power
        log_field += rng.uniform(-1.0, 1.0) * term
    peak = float(np.abs(log_field).max())
    # scale the random cubic so severity sets the field's range, whatever the number of monomials
    return x * np.exp(log_field * (limit / peak)) if peak > 0 else x.copy()


def _motion(x: np.ndarray, max_mm: float, rng: np.random.Generator, sp: np.ndarray) -> np.ndarray:
    # k-space is filled line by line along the phase-encoding axis; a move at line t shifts all later lines
    axis = int(np.argmax(x.shape))
    k = np.fft.fftn(x)
    n_lines = x.shape[axis]
    moves = sorted(rng.choice(np.arange(n_lines // 4, 3 * n_lines // 4), size=2, replace=False).tolist())
    freqs = np.meshgrid(*[np.fft.fftfreq(n) for n in x.shape], indexing="ij")
    order = np.argsort(np.abs(np.fft.fftfreq(n_lines)), kind="stable")  # centre-out acquisition order
    acquired_at = np.empty(n_lines, dtype=np.int64)
    acquired_at[order] = np.arange(n_lines)
    for start in moves:
        shift_vox = rng.uniform(-max_mm, max_mm, x.ndim) / sp
        phase = np.exp(-2j * np.pi * sum(f * s for f, s in zip(freqs, shift_vox, strict=True)))
        late = acquired_at >= start
        index = [np.newaxis] * x.ndim
        index[axis] = slice(None)
        k = np.where(late[tuple(index)], k * phase, k)
    return np.abs(np.fft.ifftn(k))


def _contrast(x: np.ndarray, gamma: float, rng: np.random.Generator, sp: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        return x.copy()
    g = gamma if rng.random() < 0.5 else 1.0 / gamma
    return lo + (hi - lo) * ((x - lo) / (hi - lo)) ** g


def _resolution(x: np.ndarray, factor: float, rng: np.random.Generator, sp: np.ndarray) -> np.ndarray:
    small = tuple(max(2, round(n / factor)) for n in x.shape)
    # anti-aliasing as a scanner with thicker voxels would do: average over the coarse voxel
    smooth = ndimage.gaussian_filter(
        x, sigma=[(n / s) / 2.355 for n, s in zip(x.shape, small, strict=True)], mode="nearest"
    )
    down = ndimage.zoom(
        smooth, [s / n for s, n in zip(small, x.shape, strict=True)], order=1, grid_mode=True, mode="nearest"
    )
    coords = np.meshgrid(
        *[(np.arange(n) + 0.5) * s / n - 0.5 for n, s in zip(x.shape, small, strict=True)], indexing="ij"
    )
    return ndimage.map_coordinates(down, coords, order=1, mode="nearest")


_SHIFTS: dict[str, Callable[[np.ndarray, float, np.random.Generator, np.ndarray], np.ndarray]] = {
    "noise": _noise,
    "blur": _blur,
    "bias": _bias,
    "motion": _motion,
    "contrast": _contrast,
    "resolution": _resolution,
}
