"""One DICOM series (a folder of files or a zip of them) as a ``Volume`` in NIfTI voxel order with a RAS affine.

Shared by the napari reader, ``uqseg predict`` and the server (zip uploads and series fetched from a PACS).
Single-frame slices and multi-frame enhanced CT/MR instances are both read; anything that is not one
uniformly spaced stack of slices is refused with an ``InputError`` that names the problem. Messages never
quote patient names or IDs (they name series, counts and positions only).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from napari_uqseg.core.dicom_geometry import SliceGeometry, stack_geometry
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.volume import Volume, check_image_array

_DICOM_MAGIC_OFFSET = 128
#: Secondary Capture storage classes (screenshots, scanned films): 2-D pictures, not volumes
SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"
#: a zip with more members than this is refused before anything is decompressed
MAX_ZIP_MEMBERS = 20000


@dataclass(frozen=True)
class DicomSeries:
    """A series read into a volume, with the source instances needed to write objects that reference it.

    Attributes
    ----------
    volume : Volume
        float32 ``(I, J, K)`` = (column, row, slice), rescale slope/intercept applied; RAS affine.
    sources : tuple of pydicom.Dataset
        Single-frame series: one instance per slice, sorted like the volume's slices. Multi-frame: the one
        instance, frames in their stored order.
    frame_order : np.ndarray
        ``(K,)`` int: slice ``k`` of the volume is source frame ``frame_order[k]`` (single-frame: ``arange``).
    """

    volume: Volume
    sources: tuple[Any, ...]
    frame_order: np.ndarray

    @property
    def multiframe(self) -> bool:
        return len(self.sources) == 1 and self.volume.shape[2] > 1

    @property
    def study_uid(self) -> str:
        return str(self.sources[0].StudyInstanceUID)

    @property
    def series_uid(self) -> str:
        return str(self.sources[0].SeriesInstanceUID)

    def to_source_frames(self, array: np.ndarray) -> np.ndarray:
        """``(I, J, K)`` on the volume's grid -> ``(frames, rows, columns)`` in the sources' frame order."""
        if tuple(array.shape) != self.volume.shape:
            raise InputError("array", f"shape {array.shape} is not the series grid {self.volume.shape}")
        stack = np.asarray(array).transpose(2, 1, 0)
        out = np.empty_like(stack)
        out[self.frame_order] = stack
        return out


def is_dicom_file(path: Path) -> bool:
    """True when ``path`` is a file with the DICOM preamble (``DICM`` at byte 128)."""
    try:
        with Path(path).open("rb") as fh:
            fh.seek(_DICOM_MAGIC_OFFSET)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def is_dicom_source(path: str | Path) -> bool:
    """True for a folder holding DICOM files or a ``.zip`` file (what :func:`read_dicom` accepts)."""
    path = Path(path)
    if path.is_file():
        return path.suffix.lower() == ".zip" or is_dicom_file(path)
    return path.is_dir() and any(is_dicom_file(p) for p in sorted(path.iterdir())[:50] if p.is_file())


def _parse(raw: bytes | Path, name: str) -> Any | None:
    """A dataset, or ``None`` for something that is not DICOM at all (notes, DICOMDIR-less junk)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        if isinstance(raw, Path):
            return pydicom.dcmread(raw)
        return pydicom.dcmread(io.BytesIO(raw))
    except InvalidDicomError:
        return None
    except Exception as exc:  # pydicom raises many types for damaged files
        raise InputError(name, f"damaged DICOM file ({exc.__class__.__name__})") from exc


def _require_pydicom(source: str) -> None:
    try:
        import pydicom  # noqa: F401
    except ImportError as exc:
        raise InputError(source, "reading DICOM needs pydicom: pip install 'napari-uqseg[dicom]'") from exc


def read_dicom_folder(folder: str | Path) -> DicomSeries:
    """Read the one image series in ``folder`` (non-DICOM files are skipped; sub-folders are not read).

    Raises
    ------
    InputError
        No DICOM images, several series, damaged files, or any problem of :func:`series_from_datasets`.
    """
    folder = Path(folder)
    _require_pydicom(str(folder))
    if not folder.is_dir():
        raise InputError(str(folder), "not a folder of DICOM files")
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_dicom_file(p))
    datasets = [ds for p in files if (ds := _parse(p, p.name)) is not None]
    return series_from_datasets(datasets, str(folder))


def read_dicom_zip(data: bytes | BinaryIO, source: str = "zip", max_bytes: int = 4 << 30) -> DicomSeries:
    """Read the one image series inside zip bytes or an open zip file (members that are not DICOM are skipped).

    Parameters
    ----------
    data : bytes or binary file
        The archive; a file (e.g. an upload streamed to disk) is read member by member, never whole.
    max_bytes : int
        Largest total uncompressed size accepted (checked before decompressing).

    Raises
    ------
    InputError
        Not a zip, too large, damaged members, or any problem of :func:`series_from_datasets`.
    """
    _require_pydicom(source)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data)
        members = [m for m in archive.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise InputError(source, f"not a readable zip archive ({exc.__class__.__name__})") from exc
    if len(members) > MAX_ZIP_MEMBERS:
        raise InputError(source, f"{len(members)} files in the zip; at most {MAX_ZIP_MEMBERS} are read")
    total = sum(m.file_size for m in members)
    if total > max_bytes:
        raise InputError(source, f"zip unpacks to {total} bytes, more than the limit of {max_bytes}")
    datasets = []
    for number, member in enumerate(members, 1):
        try:
            raw = archive.read(member)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise InputError(source, f"zip member #{number} cannot be unpacked ({exc.__class__.__name__})") from exc
        ds = _parse(raw, f"{source} member #{number}")
        if ds is not None:
            datasets.append(ds)
    return series_from_datasets(datasets, source)


def read_dicom(path: str | Path) -> DicomSeries:
    """A DICOM series from a folder, a ``.zip`` file, or one (multi-frame) DICOM file."""
    path = Path(path)
    if path.is_dir():
        return read_dicom_folder(path)
    if not path.is_file():
        raise InputError(str(path), "does not exist")
    if path.suffix.lower() == ".zip":
        return read_dicom_zip(path.read_bytes(), str(path))
    _require_pydicom(str(path))
    ds = _parse(path, str(path))
    return series_from_datasets([ds] if ds is not None else [], str(path))


def series_from_datasets(datasets: list[Any], source: str = "series") -> DicomSeries:
    """Stack the image instances of one series into a volume.

    Instances without pixel data (reports, DICOMDIR) are ignored. Single-frame slices are sorted by their
    position along the slice normal; multi-frame instances use their per-frame positions.

    Raises
    ------
    InputError
        No images; several series or several multi-frame instances; secondary captures; colour images;
        missing or inconsistent geometry; duplicate or missing slices; non-uniform spacing; pixel data
        that cannot be decoded here (compressed transfer syntaxes without a decoder).
    """
    images = [ds for ds in datasets if "PixelData" in ds or "FloatPixelData" in ds or "DoubleFloatPixelData" in ds]
    if not images:
        raise InputError(source, "no DICOM image instances found")
    series = {str(ds.get("SeriesInstanceUID", "")) for ds in images}
    if len(series) > 1:
        raise InputError(source, f"holds {len(series)} different series; give one series at a time")
    for ds in images:
        sop_class = str(ds.get("SOPClassUID", ""))
        if sop_class.startswith(SECONDARY_CAPTURE_PREFIX):
            raise InputError(source, "secondary capture images are 2-D pictures without patient geometry")
        if int(ds.get("SamplesPerPixel", 1)) != 1:
            raise InputError(source, f"colour images ({ds.SamplesPerPixel} samples per pixel) are not volumes")
    frames = [int(ds.get("NumberOfFrames", 1) or 1) for ds in images]
    if max(frames) > 1 or "PerFrameFunctionalGroupsSequence" in images[0]:
        if len(images) > 1:
            raise InputError(source, f"{len(images)} multi-frame instances in one series; give one at a time")
        return _multiframe_series(images[0], source)
    return _single_frame_series(images, source)


def _pixels(ds: Any, source: str) -> np.ndarray:
    """Decoded stored values (no rescale); InputError for damaged data or a transfer syntax not decodable here."""
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID", None) if meta is not None else None
    try:
        return np.asarray(ds.pixel_array)
    except Exception as exc:  # missing decoder plugins raise RuntimeError, damaged data ValueError and others
        name = getattr(syntax, "name", str(syntax))
        if syntax is not None and getattr(syntax, "is_compressed", False):
            problem = (
                f"compressed pixel data ({name}) cannot be decoded here ({exc.__class__.__name__}); send it "
                "uncompressed, or install a decoder (pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg)"
            )
        else:
            problem = f"pixel data is damaged or does not match Rows/Columns/BitsAllocated ({exc.__class__.__name__})"
        raise InputError(source, problem) from exc


def _geometry(item: Any, source: str, what: str) -> SliceGeometry:
    try:
        return SliceGeometry.from_tags(
            item.get("ImageOrientationPatient"), item.get("ImagePositionPatient"), item.get("PixelSpacing")
        )
    except InputError as exc:
        raise InputError(source, f"{what}: {exc.source} {exc.problem}") from exc


def _single_frame_series(images: list[Any], source: str) -> DicomSeries:
    sizes = {(int(ds.Rows), int(ds.Columns)) for ds in images}
    if len(sizes) > 1:
        raise InputError(source, f"slices have different sizes {sorted(sizes)}")
    geometries = [_geometry(ds, source, f"slice {i + 1} of {len(images)}") for i, ds in enumerate(images)]
    order, affine = stack_geometry(geometries, source)
    images = [images[i] for i in order]
    slices = []
    for ds in images:
        slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
        slices.append(_pixels(ds, source).astype(np.float32) * slope + intercept)
    stack = np.stack(slices)
    array = check_image_array(np.ascontiguousarray(stack.transpose(2, 1, 0)), source)
    return DicomSeries(Volume(array, affine), tuple(images), np.arange(len(images)))


def functional_value(ds: Any, index: int, sequence: str, attribute: str) -> Any:
    """``attribute`` of functional group ``sequence`` for frame ``index`` (per-frame first, then shared).

    Falls back to the top-level ``attribute`` (``None`` when absent everywhere).
    """
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    shared = ds.get("SharedFunctionalGroupsSequence") or []
    for group in (per_frame[index] if index < len(per_frame) else None, shared[0] if shared else None):
        items = group.get(sequence) if group is not None else None
        if items and attribute in items[0]:
            return items[0].get(attribute)
    return ds.get(attribute)


def _multiframe_series(ds: Any, source: str) -> DicomSeries:
    count = int(ds.get("NumberOfFrames", 1) or 1)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    if len(per_frame) != count:
        raise InputError(source, f"multi-frame instance has {count} frames but {len(per_frame)} per-frame groups")
    geometries, scales = [], []
    for i in range(count):
        what = f"frame {i + 1} of {count}"
        try:
            geometries.append(
                SliceGeometry.from_tags(
                    functional_value(ds, i, "PlaneOrientationSequence", "ImageOrientationPatient"),
                    functional_value(ds, i, "PlanePositionSequence", "ImagePositionPatient"),
                    functional_value(ds, i, "PixelMeasuresSequence", "PixelSpacing"),
                )
            )
        except InputError as exc:
            raise InputError(source, f"{what}: {exc.source} {exc.problem}") from exc
        slope = functional_value(ds, i, "PixelValueTransformationSequence", "RescaleSlope")
        intercept = functional_value(ds, i, "PixelValueTransformationSequence", "RescaleIntercept")
        scales.append((float(slope if slope not in (None, "") else 1), float(intercept or 0)))
    order, affine = stack_geometry(geometries, source)
    pixels = _pixels(ds, source).reshape(count, int(ds.Rows), int(ds.Columns)).astype(np.float32)
    slope = np.array([s for s, _ in scales], dtype=np.float32)[:, None, None]
    intercept = np.array([b for _, b in scales], dtype=np.float32)[:, None, None]
    stack = (pixels * slope + intercept)[order]
    array = check_image_array(np.ascontiguousarray(stack.transpose(2, 1, 0)), source)
    return DicomSeries(Volume(array, affine), (ds,), np.asarray(order))
