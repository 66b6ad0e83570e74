"""Synthetic DICOM series for tests: a ``Volume`` written as CT slices (or one enhanced multi-frame CT).

The series carry a made-up patient name and ID (:data:`PATIENT_NAME`, :data:`PATIENT_ID`) so tests can check
that no log or error message ever prints them.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from napari_uqseg.core.dicom_geometry import LPS_TO_RAS
from napari_uqseg.core.dicom_objects import dicom_bytes as to_bytes
from napari_uqseg.core.volume import Volume

PATIENT_NAME = "Doe^Janeprivate"
PATIENT_ID = "PID-SECRET-4711"
SLOPE, INTERCEPT = 0.5, -100.0


def oriented_affine(kind: str, spacing=(1.1, 0.9, 1.6), origin=(12.0, -30.0, 45.0), flip_slices: bool = False):
    """A RAS affine whose DICOM slices are axial, sagittal, coronal or oblique (columns, rows, slice normal).

    With ``flip_slices`` the slice axis points against ``row x column``, as a volume stacked in the other
    direction would; the reader then returns the slices reversed.
    """
    c, s = np.cos(np.deg2rad(25)), np.sin(np.deg2rad(25))
    lps_axes = {  # columns, rows (LPS direction cosines); slice normal = columns x rows
        "axial": ([1, 0, 0], [0, 1, 0]),
        "sagittal": ([0, 1, 0], [0, 0, -1]),
        "coronal": ([1, 0, 0], [0, 0, -1]),
        "oblique": ([c, s, 0], [-s * c, c * c, -s]),
    }[kind]
    x, y = (np.asarray(v, dtype=float) / np.linalg.norm(v) for v in lps_axes)
    z = np.cross(x, y) * (-1 if flip_slices else 1)
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2], lps[:3, 3] = x * spacing[0], y * spacing[1], z * spacing[2], origin
    return LPS_TO_RAS @ lps


def quantised(volume: Volume) -> Volume:
    """``volume`` rounded to the values a CT series with :data:`SLOPE`/:data:`INTERCEPT` stores exactly."""
    stored = np.clip(np.rint((volume.array - INTERCEPT) / SLOPE), -32768, 32767)
    return Volume((stored * SLOPE + INTERCEPT).astype(np.float32), volume.affine)


def _base(series_uid: str, study_uid: str, frame_uid: str):
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = PATIENT_NAME, PATIENT_ID, "19700101", "O"
    ds.StudyInstanceUID, ds.StudyID, ds.StudyDate, ds.StudyTime = study_uid, "1", "20260101", "120000"
    ds.AccessionNumber, ds.ReferringPhysicianName, ds.StudyDescription = "A1", "", "uqseg test"
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.Modality, ds.SeriesDescription = series_uid, 3, "CT", "synthetic"
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame_uid, ""
    ds.Manufacturer, ds.ContentDate, ds.ContentTime = "uqseg-tests", "20260101", "120000"
    ds.AcquisitionDate, ds.AcquisitionTime = "20260101", "120000"
    ds.ImageType, ds.KVP, ds.PatientPosition = ["ORIGINAL", "PRIMARY", "AXIAL"], 120, "HFS"
    return ds


def series_datasets(
    volume: Volume, descending: bool = False, study_uid: str | None = None, series_uid: str | None = None
) -> list:
    """One CT slice per ``volume[:, :, k]`` (rows = J, columns = I), stored values ``(v - INTERCEPT) / SLOPE``.

    ``descending`` numbers the instances against the slice axis (InstanceNumber 1 at the last slice).
    """
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    lps = np.linalg.inv(LPS_TO_RAS) @ volume.affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    x, y = lps[:3, 0] / spacing[0], lps[:3, 1] / spacing[1]
    series_uid, study_uid, frame_uid = series_uid or generate_uid(), study_uid or generate_uid(), generate_uid()
    stored = np.rint((quantised(volume).array - INTERCEPT) / SLOPE).astype(np.int16)
    count = volume.shape[2]
    out = []
    for k in range(count):
        ds = _base(series_uid, study_uid, frame_uid)
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID, ds.SOPClassUID = CTImageStorage, CTImageStorage
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.InstanceNumber = count - k if descending else k + 1
        ds.Rows, ds.Columns = volume.shape[1], volume.shape[0]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.PixelSpacing = [round(float(spacing[1]), 6), round(float(spacing[0]), 6)]
        ds.SliceThickness = round(float(spacing[2]), 6)
        ds.ImageOrientationPatient = [round(float(v), 8) for v in (*x, *y)]
        ds.ImagePositionPatient = [round(float(v), 6) for v in (lps @ [0, 0, k, 1])[:3]]
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = SLOPE, INTERCEPT, "HU"
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()
        out.append(ds)
    return sorted(out, key=lambda d: int(d.InstanceNumber))


def multiframe_dataset(volume: Volume, descending: bool = False):
    """The slices of :func:`series_datasets` converted to one Legacy Converted Enhanced CT instance (highdicom)."""
    import highdicom as hd
    from pydicom.uid import generate_uid

    slices = series_datasets(volume, descending)
    return hd.legacy.LegacyConvertedEnhancedCTImage(
        slices, series_instance_uid=generate_uid(), series_number=4, sop_instance_uid=generate_uid(), instance_number=1
    )


def write_folder(datasets: list, folder: str | Path) -> Path:
    """Write each dataset as ``IM<n>`` in a shuffled order of file names."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for n, k in enumerate(np.random.default_rng(7).permutation(len(datasets))):
        (folder / f"IM{n:04d}").write_bytes(to_bytes(datasets[k]))
    return folder


def zip_bytes(datasets: list, extra: dict[str, bytes] | None = None) -> bytes:
    """Datasets (plus ``extra`` members) as a zip archive."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for n, ds in enumerate(datasets):
            archive.writestr(f"series/IM{n:04d}.dcm", to_bytes(ds))
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()
