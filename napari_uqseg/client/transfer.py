"""Bytes to upload for the model library: a model folder or archive, a labelled dataset folder."""

from __future__ import annotations

import tempfile
from pathlib import Path

from napari_uqseg.core.archives import is_model_folder, pack_dataset, pack_model
from napari_uqseg.core.errors import InputError


def archive_bytes(path: str | Path) -> bytes:
    """The ``.tar.gz`` bytes of a model archive file, or of a model folder packed on the fly."""
    path = Path(path)
    if path.is_file():
        return path.read_bytes()
    if not is_model_folder(path):
        raise InputError(str(path), "not a model folder (no model.json) or a model archive")
    with tempfile.TemporaryDirectory() as tmp:
        return pack_model(path, Path(tmp) / "model.tar.gz").read_bytes()


def dataset_bytes(folder: str | Path) -> bytes:
    """The ``.tar.gz`` bytes of a labelled MSD-layout dataset folder."""
    with tempfile.TemporaryDirectory() as tmp:
        return pack_dataset(folder, Path(tmp) / "dataset.tar.gz").read_bytes()
