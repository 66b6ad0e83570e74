"""Write labelled scans as an MSD-layout dataset folder (``dataset.json``, ``imagesTr/``, ``labelsTr/``).

What the viewers do to train a model from the image and label layers they have open.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.nifti_io import save_volume
from napari_uqseg.core.volume import Volume


def write_dataset(
    folder: str | Path, cases: Sequence[tuple[Volume, Volume]], labels: dict[str, str] | None = None, name: str = ""
) -> Path:
    """Write ``(image, label)`` pairs as ``case_001.nii.gz``... with a ``dataset.json``; returns ``folder``.

    Parameters
    ----------
    cases : sequence of (Volume, Volume)
        Image (float) and label (non-negative integers) on the same grid.
    labels : dict, optional
        Class index (str) -> name; default ``"0": background`` and ``"k": class k`` up to the largest label.

    Raises
    ------
    InputError
        No cases, shape mismatch between an image and its label, an empty label map.
    """
    if not cases:
        raise InputError("dataset", "needs at least one labelled image")
    folder = Path(folder)
    (folder / "imagesTr").mkdir(parents=True, exist_ok=True)
    (folder / "labelsTr").mkdir(parents=True, exist_ok=True)
    top = 0
    training = []
    for i, (image, label) in enumerate(cases, start=1):
        if image.array.shape != label.array.shape:
            raise InputError(f"case {i}", f"label shape {label.array.shape} differs from image {image.array.shape}")
        values = np.asarray(label.array)
        if values.dtype.kind not in "iub" or values.min() < 0 or values.max() == 0:
            raise InputError(f"case {i}", "the label layer must hold non-negative integer classes, not only 0")
        top = max(top, int(values.max()))
        file = f"case_{i:03d}.nii.gz"
        save_volume(Volume(image.array.astype(np.float32), image.affine), folder / "imagesTr" / file)
        save_volume(Volume(values.astype(np.uint8), image.affine), folder / "labelsTr" / file)
        training.append({"image": f"./imagesTr/{file}", "label": f"./labelsTr/{file}"})
    labels = labels or {"0": "background", **{str(k): f"class {k}" for k in range(1, top + 1)}}
    meta = {"name": name or folder.name, "labels": labels, "modality": {"0": "image"}, "training": training}
    meta["numTraining"] = len(training)
    (folder / "dataset.json").write_text(json.dumps(meta, indent=1))
    return folder
