"""Offline sample data: the MNI152 brain MRI bundled in nilearn's wheel, labelled grey / white matter.

No download happens: nilearn ships the 2 mm template and its tissue probability maps. Without
nilearn, ``brain_dataset`` falls back to the synthetic blobs of ``testing.synthetic``.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from napari_uqseg.core.volume import Volume
from napari_uqseg.testing.synthetic import write_synthetic_dataset

LABELS = {"0": "background", "1": "grey matter", "2": "white matter"}


def mni_brain(downsample: int = 2) -> tuple[Volume, Volume]:
    """The MNI152 T1 template and a 3-class tissue label, every ``downsample``-th voxel (2 -> 4 mm).

    Returns
    -------
    (Volume, Volume)
        Image float32 ``(50, 59, 48)`` for ``downsample=2`` and labels uint8 (0 background and
        CSF, 1 grey matter, 2 white matter: the larger tissue probability where it exceeds 0.5).
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


def _augment(image: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """A plausible other scan: smooth bias field, gamma contrast change, Rician-like noise."""
    low = rng.normal(0, 1, size=(4, 4, 4))
    bias = np.exp(0.25 * ndimage.zoom(low, np.array(image.shape) / 4, order=3))
    scaled = image / max(image.max(), 1e-6)
    out = np.power(np.clip(scaled, 0, None), rng.uniform(0.8, 1.25)) * bias
    out = np.abs(out + rng.normal(0, noise, image.shape))
    return (out * 1000).astype(np.float32)


def brain_dataset(root: str | Path, n_cases: int = 8, seed: int = 0) -> tuple[Path, Path]:
    """Write an MSD-layout training set of augmented MNI brains plus one held-back scan.

    Returns
    -------
    (Path, Path)
        The dataset folder and the held-back image (``heldout.nii.gz``: its own bias field and contrast,
        somewhat stronger noise than the training scans, never trained on).
    """
    root = Path(root)
    try:
        image, label = mni_brain()
    except ImportError:
        write_synthetic_dataset(root, n_cases=n_cases, shape=(40, 40, 40), seed=seed)
        held = root / "heldout.nii.gz"
        from napari_uqseg.testing.synthetic import synthetic_case

        img, _ = synthetic_case((40, 40, 40), seed=seed + 999)
        nib.save(nib.Nifti1Image(img.array, img.affine), held)
        return root, held
    rng = np.random.default_rng(seed)
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(parents=True, exist_ok=True)
    training = []
    for i in range(1, n_cases + 1):
        name = f"brain_{i:03d}.nii.gz"
        nib.save(nib.Nifti1Image(_augment(image.array, rng, 0.03), image.affine), root / "imagesTr" / name)
        nib.save(nib.Nifti1Image(label.array, label.affine), root / "labelsTr" / name)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    meta = {
        "name": "mni152-demo",
        "labels": LABELS,
        "modality": {"0": "T1"},
        "numTraining": n_cases,
        "training": training,
    }
    (root / "dataset.json").write_text(json.dumps(meta, indent=1))
    held = root / "heldout.nii.gz"
    nib.save(nib.Nifti1Image(_augment(image.array, rng, 0.045), image.affine), held)
    nib.save(nib.Nifti1Image(label.array, label.affine), root / "heldout_label.nii.gz")
    return root, held
