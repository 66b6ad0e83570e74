"""npe2 reader (NIfTI files, DICOM series folders), label writer (NIfTI) and offline sample data.

Every layer keeps its affine as napari ``scale``/``translate`` (see :mod:`napari_uqseg.napari_ui.layers`).
DICOM series are turned into NIfTI voxel order (column, row, slice) with a RAS affine, so a model trained on
NIfTI files sees the same orientation whichever format the scan came in.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_uqseg.core.dicom_series import is_dicom_file, is_dicom_source, read_dicom
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.nifti_io import NIFTI_SUFFIXES, load_image, load_label, save_volume
from napari_uqseg.core.volume import Volume
from napari_uqseg.napari_ui.layers import layer_affine, layer_kwargs

LayerData = tuple[Any, dict[str, Any], str]
#: an integer file with at most this many distinct values is opened as a label layer
MAX_LABEL_VALUES = 64


def _name(path: Path) -> str:
    name = path.name
    for suffix in NIFTI_SUFFIXES[::-1]:  # ".nii.gz" before ".nii"
        name = name.removesuffix(suffix)
    return name


def _is_dicom_dir(path: Path) -> bool:
    return path.is_dir() and is_dicom_source(path)


def get_reader(path: str | Sequence[str]) -> Callable[[Any], list[LayerData]] | None:
    """npe2 reader hook: a reader for NIfTI files (one or many) and DICOM series folders, else ``None``."""
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    if not paths:
        return None
    if all(str(p).lower().endswith(NIFTI_SUFFIXES) for p in paths):
        return read_paths
    if all(_is_dicom_dir(Path(p)) or (Path(p).is_file() and is_dicom_file(Path(p))) for p in paths):
        return read_paths
    return None


def read_paths(path: str | Sequence[str]) -> list[LayerData]:
    """Read every path; see :func:`read_nifti` and :func:`read_dicom_series`."""
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    layers: list[LayerData] = []
    for p in map(Path, paths):
        if str(p).lower().endswith(NIFTI_SUFFIXES):
            layers.append(read_nifti(p))
        else:
            layers.append(read_dicom_series(p if p.is_dir() else p.parent))
    return layers


def read_nifti(path: str | Path) -> LayerData:
    """One NIfTI file as an image layer, or a labels layer when it holds few integer values.

    Raises
    ------
    InputError
        Unreadable, not 2-D/3-D, NaN voxels (see :func:`napari_uqseg.core.nifti_io.load_image`).
    """
    import nibabel as nib

    path = Path(path)
    try:
        header = nib.load(str(path)).header
        integer = np.dtype(header.get_data_dtype()).kind in "iub" and header.get_slope_inter()[0] in (None, 1.0)
        spatial = 2 if len(header.get_data_shape()) == 2 else 3
    except (OSError, ValueError, EOFError, nib.filebasedimages.ImageFileError):  # load_image says what is wrong
        integer, spatial = False, 3
    if integer:
        try:
            labels = load_label(path)
            if np.unique(labels.array).size <= MAX_LABEL_VALUES:
                return labels.array, {**layer_kwargs(labels), "name": _name(path)}, "labels"
        except InputError:
            pass  # e.g. an all-zero map: fall back to an image
    volume = load_image(path, spatial_dims=spatial)
    return volume.array, {**layer_kwargs(volume), "name": _name(path)}, "image"


def dicom_series_volume(folder: str | Path) -> Volume:
    """The one DICOM series in ``folder`` as a float32 volume in NIfTI voxel order with a RAS affine.

    The reader is shared with the server and ``uqseg predict`` (:mod:`napari_uqseg.core.dicom_series`).

    Raises
    ------
    InputError
        No DICOM slices, several series, inconsistent geometry, missing slices, undecodable pixel data.
    """
    return read_dicom(folder).volume


def read_dicom_series(folder: str | Path) -> LayerData:
    """A DICOM series folder as an image layer (see :func:`dicom_series_volume`)."""
    volume = dicom_series_volume(folder)
    return volume.array, {**layer_kwargs(volume), "name": Path(folder).name}, "image"


def write_labels(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """npe2 single-layer writer: a labels layer to ``.nii``/``.nii.gz`` with its affine.

    The affine comes from the layer's ``scale``/``translate``/``rotate``/``shear``/``affine`` as passed in
    ``attributes``, so a mask drawn over an image is saved on that image's grid.

    Raises
    ------
    InputError
        Wrong extension, not 2-D/3-D, negative or non-integer labels.
    """
    from napari.layers import Labels

    if not path.lower().endswith(NIFTI_SUFFIXES):
        raise InputError(path, "labels are written as NIfTI: use a .nii or .nii.gz file name")
    array = np.asarray(data)
    if array.dtype.kind not in "iub" or (array.size and array.min() < 0):
        raise InputError(path, f"labels must be non-negative integers (got {array.dtype}, min {array.min(initial=0)})")
    known = ("scale", "translate", "rotate", "shear", "affine", "metadata")  # metadata: display_to_ras
    layer = Labels(array, **{k: attributes[k] for k in known if k in attributes})
    dtype = np.uint8 if array.max(initial=0) < 256 else np.int32
    return [str(save_volume(Volume(array.astype(dtype), layer_affine(layer)), path))]


def sample_volumes(shape: tuple[int, int, int] = (32, 32, 32), seed: int = 1) -> tuple[Volume, Volume]:
    """The synthetic sample scan and its reference label (generated, so it works offline)."""
    from napari_uqseg.core.sample_data import synthetic_case

    return synthetic_case(shape, seed)


def sample_synthetic() -> list[LayerData]:
    """npe2 sample data: a synthetic scan (noisy ellipsoid, 3 classes) plus its reference label, hidden."""
    image, label = sample_volumes()
    return [
        (image.array, {**layer_kwargs(image), "name": "synthetic scan"}, "image"),
        (label.array, {**layer_kwargs(label), "name": "synthetic reference", "visible": False}, "labels"),
    ]


def sample_brain() -> list[LayerData]:
    """npe2 sample data: the MNI152 T1 template bundled with nilearn (2 mm, the starter model's spacing) and its
    grey/white-matter label.

    Raises
    ------
    InputError
        nilearn is not installed (the synthetic sample needs nothing).
    """
    try:
        from napari_uqseg.core.sample_data import mni_brain

        image, label = mni_brain()
    except ImportError as exc:
        raise InputError("nilearn", "the brain sample needs nilearn: pip install 'napari-uqseg[all]'") from exc
    return [
        (image.array, {**layer_kwargs(image), "name": "MNI152 brain"}, "image"),
        (label.array, {**layer_kwargs(label), "name": "MNI152 tissue", "visible": False}, "labels"),
    ]
