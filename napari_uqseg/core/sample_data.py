"""Sample data generated offline: synthetic blobs and the MNI152 brain (napari sample data, the demo, benchmarks).

Synthetic cases are noisy ellipsoids split into classes, which a small U-Net learns in seconds. The brain
sample is the MNI152 template bundled in nilearn's wheel (no download; resampled by nilearn to 2 mm),
labelled grey / white matter; training and held-back scans are the template under smooth random
deformations with their own intensity changes. Without nilearn, ``brain_dataset`` falls back to the
synthetic blobs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from napari_uqseg.core.shifts import apply_shift
from napari_uqseg.core.volume import Volume


def synthetic_case(shape: tuple[int, ...] = (24, 24, 24), seed: int = 0, num_classes: int = 3) -> tuple[Volume, Volume]:
    """One image/label pair: an ellipsoid split into classes 1..C-1 along axis 0, plus noise.

    Returns
    -------
    (Volume, Volume)
        Image ``shape`` float32 and label ``shape`` uint8, both on an affine with 1.0/1.2/1.5 mm
        voxels and a non-zero origin (so affine handling is exercised).
    """
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    centre = rng.uniform(-0.2, 0.2, size=len(shape))
    radii = rng.uniform(0.35, 0.55, size=len(shape))
    inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True)) <= 1.0
    label = np.zeros(shape, dtype=np.uint8)
    bands = np.linspace(centre[0] - radii[0], centre[0] + radii[0], num_classes)
    for k in range(1, num_classes):
        label[inside & (grid[0] >= bands[k - 1])] = k
    image = (label.astype(np.float32) * 1.0 + rng.normal(0, 0.35, shape)).astype(np.float32) * 100 + 300
    affine = np.diag([1.0, 1.2, 1.5, 1.0][: len(shape)] + [1.0] * (4 - len(shape)))
    affine[:3, 3] = [-10.0, 5.0, 2.5]
    return Volume(image, affine), Volume(label, affine)


def write_synthetic_dataset(
    root: str | Path, n_cases: int = 8, shape: tuple[int, ...] = (24, 24, 24), num_classes: int = 3, seed: int = 0
) -> Path:
    """Write an MSD-layout dataset (``dataset.json``, ``imagesTr/``, ``labelsTr/``) of synthetic cases."""
    root = Path(root)
    labels = {"0": "background", **{str(k): f"class_{k}" for k in range(1, num_classes)}}
    cases = ((f"synth_{i:03d}.nii.gz", *synthetic_case(shape, seed + i, num_classes)) for i in range(1, n_cases + 1))
    _write_msd(root, {"name": "synthetic", "labels": labels, "modality": {"0": "MRI"}}, cases)
    return root


def _write_msd(root: Path, meta: dict, cases: Iterable[tuple[str, Volume, Volume]]) -> None:
    """Write ``(file name, image, label)`` cases into ``imagesTr/`` and ``labelsTr/``, and ``dataset.json``
    (``meta`` plus ``numTraining`` and the ``training`` list)."""
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(parents=True, exist_ok=True)
    training = []
    for name, image, label in cases:
        nib.save(nib.Nifti1Image(image.array, image.affine), root / "imagesTr" / name)
        nib.save(nib.Nifti1Image(label.array, label.affine), root / "labelsTr" / name)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    document = {**meta, "numTraining": len(training), "training": training}
    (root / "dataset.json").write_text(json.dumps(document, indent=1))


LABELS = {"0": "background", "1": "grey matter", "2": "white matter"}
#: the changes of the held-back scan: (shift name, severity) of ``core.shifts``, applied in this order
HELDOUT_SHIFTS = (("bias", 4), ("contrast", 1), ("resolution", 1))


def mni_brain(downsample: int = 1) -> tuple[Volume, Volume]:
    """The MNI152 T1 template and a 3-class tissue label at 2 mm, every ``downsample``-th voxel (2 -> 4 mm).

    Returns
    -------
    (Volume, Volume)
        Image float32 ``(99, 117, 95)`` for ``downsample=1`` (``(50, 59, 48)`` for 2) and labels uint8
        (0 background and CSF, 1 grey matter, 2 white matter: the larger tissue probability where it
        exceeds 0.5), on nilearn's RAS affine.
    """
    from nilearn import datasets

    template = datasets.load_mni152_template(resolution=2)
    gm = datasets.load_mni152_gm_template(resolution=2).get_fdata()
    wm = datasets.load_mni152_wm_template(resolution=2).get_fdata()
    label = np.where((gm > 0.5) & (gm >= wm), 1, np.where(wm > 0.5, 2, 0)).astype(np.uint8)
    step = (slice(None, None, downsample),) * 3
    affine = template.affine @ np.diag([downsample, downsample, downsample, 1.0])
    image = template.get_fdata()[step].astype(np.float32) * 1000
    return Volume(image, affine), Volume(label[step], affine)


def deform(image: Volume, label: Volume, rng: np.random.Generator, max_mm: float = 5.0) -> tuple[Volume, Volume]:
    """Warp an image/label pair by one smooth random displacement field (up to about ``max_mm`` mm).

    The field is cubic-interpolated from a 5 x 5 x 5 grid of Gaussian draws, so folds and gyri move
    by a few millimetres while the brain keeps its shape. Image: linear interpolation; label: nearest.
    """
    shape = np.array(image.array.shape)
    spacing = np.linalg.norm(image.affine[:3, :3], axis=0)
    grid = np.meshgrid(*[np.arange(s, dtype=np.float32) for s in shape], indexing="ij")
    coords = []
    for axis in range(3):
        coarse = rng.normal(0, max_mm / 2.5 / spacing[axis], size=(5, 5, 5))
        coords.append(grid[axis] + ndimage.zoom(coarse, shape / 5, order=3)[: shape[0], : shape[1], : shape[2]])
    warped = ndimage.map_coordinates(image.array, coords, order=1, mode="nearest").astype(np.float32)
    labels = ndimage.map_coordinates(label.array, coords, order=0, mode="constant").astype(np.uint8)
    return Volume(warped, image.affine), Volume(labels, label.affine)


def _augment(image: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """A plausible other scan: smooth bias field, gamma contrast change, Rician-like noise."""
    low = rng.normal(0, 1, size=(4, 4, 4))
    bias = np.exp(0.25 * ndimage.zoom(low, np.array(image.shape) / 4, order=3))
    scaled = image / max(image.max(), 1e-6)
    out = np.power(np.clip(scaled, 0, None), rng.uniform(0.8, 1.25)) * bias
    out = np.abs(out + rng.normal(0, noise, image.shape))
    return (out * 1000).astype(np.float32)


def heldout_scan(image: Volume, seed: int) -> Volume:
    """The held-back scan's acquisition change: :data:`HELDOUT_SHIFTS` (bias field, contrast, resolution), then
    magnitude (Rician-like) noise at the training scans' level, as every MR image has."""
    spacing = np.linalg.norm(image.affine[:3, :3], axis=0)
    array = image.array
    for name, severity in HELDOUT_SHIFTS:
        array = apply_shift(array, name, severity, seed=seed, spacing=spacing)
    rng = np.random.default_rng(seed + 20_000)
    noisy = np.abs(array + rng.normal(0, 0.03 * float(array.max()), array.shape))
    return Volume(noisy.astype(np.float32), image.affine)


def brain_dataset(
    root: str | Path,
    n_cases: int = 8,
    seed: int = 0,
    downsample: int = 1,
    noise: tuple[float, float] = (0.03, 0.03),
) -> tuple[Path, Path]:
    """Write an MSD-layout training set of deformed, augmented MNI brains plus one held-back scan.

    ``noise``: each training case's magnitude-noise level (standard deviation as a share of the image
    maximum, in the air around the head too) is drawn uniformly from this range.

    Returns
    -------
    (Path, Path)
        The dataset folder and the held-back image (``heldout.nii.gz``: its own deformation, then the
        bias field, contrast and resolution changes of :data:`HELDOUT_SHIFTS`; never trained on). Its
        reference is ``heldout_label.nii.gz`` beside it.
    """
    root = Path(root)
    try:
        image, label = mni_brain(downsample)
    except ImportError:
        write_synthetic_dataset(root, n_cases=n_cases, shape=(40, 40, 40), seed=seed)
        held = root / "heldout.nii.gz"
        img, _ = synthetic_case((40, 40, 40), seed=seed + 999)
        nib.save(nib.Nifti1Image(img.array, img.affine), held)
        return root, held
    rng = np.random.default_rng(seed)
    levels = np.random.default_rng(seed + 30_000).uniform(*noise, size=n_cases)

    def cases() -> Iterator[tuple[str, Volume, Volume]]:  # lazily: the draws of rng stay in this order
        for i in range(1, n_cases + 1):
            case, case_label = deform(image, label, rng) if i > 1 else (image, label)
            scan = _augment(case.array, rng, float(levels[i - 1]))
            yield f"brain_{i:03d}.nii.gz", Volume(scan, case.affine), case_label

    _write_msd(root, {"name": "mni152-demo", "labels": LABELS, "modality": {"0": "T1"}}, cases())
    return root, write_heldout(root, seed, image, label)


def write_heldout(root: str | Path, seed: int = 0, image: Volume | None = None, label: Volume | None = None) -> Path:
    """Write only the held-back scan (``heldout.nii.gz``) and its reference (``heldout_label.nii.gz``).

    The scan is the template under its own deformation, then :func:`heldout_scan`'s acquisition changes;
    ``image``/``label`` default to :func:`mni_brain` at 2 mm. Returns the scan's path.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if image is None or label is None:
        image, label = mni_brain()
    held_image, held_label = deform(image, label, np.random.default_rng(seed + 10_000))
    held = root / "heldout.nii.gz"
    nib.save(nib.Nifti1Image(heldout_scan(held_image, seed).array, image.affine), held)
    nib.save(nib.Nifti1Image(held_label.array, label.affine), root / "heldout_label.nii.gz")
    return held
