"""Synthetic MSD-layout datasets: noisy blobs whose labels a small U-Net learns in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

from napari_uqseg.core.volume import Volume

DEFAULT_AFFINE = np.diag([1.0, 1.0, 1.0, 1.0])


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
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(parents=True, exist_ok=True)
    training = []
    for i in range(1, n_cases + 1):
        image, label = synthetic_case(shape, seed + i, num_classes)
        name = f"synth_{i:03d}.nii.gz"
        nib.save(nib.Nifti1Image(image.array, image.affine), root / "imagesTr" / name)
        nib.save(nib.Nifti1Image(label.array, label.affine), root / "labelsTr" / name)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    labels = {"0": "background", **{str(k): f"class_{k}" for k in range(1, num_classes)}}
    meta = {
        "name": "synthetic",
        "labels": labels,
        "modality": {"0": "MRI"},
        "numTraining": n_cases,
        "training": training,
    }
    (root / "dataset.json").write_text(json.dumps(meta, indent=1))
    return root


#: a configuration that trains any method on the synthetic data in a few seconds on one CPU core
TINY_CONFIG = {
    "net": {"channels": [4, 8, 16]},
    "train": {
        "patch_size": [16, 16, 16],
        "batch_size": 4,
        "iterations": 6,
        "checkpoint_every": 3,
        "optimizer": "adam",
        "lr": 3e-3,
        "stop_rule": "fixed",  # tests train a fixed handful of steps; the plateau rule has its own tests
        "augment": "none",
    },
}
