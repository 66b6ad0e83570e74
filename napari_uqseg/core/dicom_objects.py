"""Predictions as DICOM objects that reference their source series, and back onto the source grid.

The mask becomes a DICOM Segmentation (binary, one segment per foreground class) and each uncertainty map a
DICOM Parametric Map (32-bit float pixels, identity real-world value mapping), both written with highdicom.
Model, version and method are recorded in ContentDescription, SeriesDescription and (for the SEG) the
segments' AlgorithmIdentificationSequence. Reading back uses only each frame's ImagePositionPatient, so it
checks the geometry rather than trusting frame order.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_uqseg.core.dicom_geometry import LPS_TO_RAS
from napari_uqseg.core.dicom_series import DicomSeries, functional_value
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.volume import Volume

SEGMENTATION_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
PARAMETRIC_MAP_CLASS = "1.2.840.10008.5.1.4.1.1.30"
#: DICOM LO (64 characters) and SH (16) limits
_LO, _SH = 64, 16


@dataclass(frozen=True)
class Provenance:
    """What made an output: written into the DICOM objects' descriptions.

    Attributes
    ----------
    model, version, method : str
        Model name, version (``v2``) and uncertainty method (``mc_dropout``).
    software_version : str
        napari-uqseg version.
    """

    model: str
    version: str
    method: str
    software_version: str

    def description(self, what: str = "") -> str:
        text = f"uqseg {self.model} {self.version} {self.method}" + (f" {what}" if what else "")
        return text[:_LO]


def dicom_bytes(ds: Any) -> bytes:
    """A dataset as DICOM Part 10 file bytes (preamble, file meta, little-endian body)."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _common(provenance: Provenance, series_number: int) -> dict[str, Any]:
    from pydicom.uid import generate_uid

    return {
        "series_instance_uid": generate_uid(),
        "series_number": series_number,
        "sop_instance_uid": generate_uid(),
        "instance_number": 1,
        "manufacturer": "napari-uqseg",
        "manufacturer_model_name": provenance.model[:_LO],
        "software_versions": provenance.software_version,
        "device_serial_number": provenance.version,
    }


def _check_grid(series: DicomSeries, volume: Volume, what: str) -> None:
    if volume.shape[:3] != series.volume.shape or not np.allclose(volume.affine, series.volume.affine, atol=1e-3):
        raise InputError(what, f"grid {volume.shape} does not match the source series grid {series.volume.shape}")


def segmentation_object(
    series: DicomSeries, mask: Volume, labels: dict[str, str], provenance: Provenance, series_number: int = 901
) -> Any:
    """The label map ``mask`` as a binary DICOM Segmentation referencing ``series``.

    Parameters
    ----------
    mask : Volume
        uint8 ``(I, J, K)`` labels on the series grid; 0 is background.
    labels : dict of str to str
        Class index (as text) -> name, as in the model card; every foreground class becomes a segment.

    Returns
    -------
    highdicom.seg.Segmentation
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    _check_grid(series, mask, "mask")
    classes = sorted({int(k) for k in labels if int(k) > 0} | {int(v) for v in np.unique(mask.array) if v > 0})
    algorithm = hd.AlgorithmIdentificationSequence(
        name=f"napari-uqseg {provenance.model}"[:_LO],
        family=codes.cid7162.ArtificialIntelligence,
        version=provenance.version,
        parameters={"method": provenance.method},
    )
    segments = [
        hd.seg.SegmentDescription(
            segment_number=k,
            segment_label=str(labels.get(str(k), f"class {k}"))[:_LO],
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        )
        for k in classes
    ]
    frames = series.to_source_frames(np.asarray(mask.array, dtype=np.uint8))
    return hd.seg.Segmentation(
        source_images=list(series.sources),
        pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segments,
        content_description=provenance.description("mask"),
        content_label="UQSEG_MASK",
        series_description=provenance.description("mask"),
        omit_empty_frames=bool(np.any(frames)),
        **_common(provenance, series_number),
    )


def parametric_map_object(
    series: DicomSeries, values: Volume, name: str, provenance: Provenance, series_number: int = 902
) -> Any:
    """One uncertainty map as a float32 DICOM Parametric Map referencing ``series``.

    Parameters
    ----------
    values : Volume
        float ``(I, J, K)`` map on the series grid (nats for entropies, unitless otherwise).
    name : str
        Map name (``entropy``, ``mutual_information`` ...), kept in the LUT label and the description.
    """
    import highdicom as hd

    _check_grid(series, values, name)
    frames = series.to_source_frames(np.asarray(values.array, dtype=np.float32))
    low, high = float(frames.min()), float(frames.max())
    mapping = hd.pm.RealWorldValueMapping(
        lut_label=name[:_SH],
        lut_explanation=f"{name} of {provenance.method}"[:_LO],
        unit=hd.sr.CodedConcept("1", "UCUM", "no units"),
        value_range=(low, high),
        slope=1.0,
        intercept=0.0,
    )
    return hd.pm.ParametricMap(
        source_images=list(series.sources),
        pixel_array=frames,
        contains_recognizable_visual_features=False,
        real_world_value_mappings=[mapping],
        voi_lut_transformations=[
            hd.VOILUTTransformation(window_center=(low + high) / 2, window_width=max(high - low, 1e-6))
        ],
        content_description=provenance.description(name),
        content_label="UQSEG_MAP",
        series_description=provenance.description(name),
        **_common(provenance, series_number),
    )


def _frame_slices(ds: Any, series: DicomSeries, what: str) -> np.ndarray:
    """Slice index of the series grid for each frame of ``ds`` (checked to lie exactly on that grid)."""
    inverse = np.linalg.inv(series.volume.affine)
    count = int(ds.get("NumberOfFrames", 1) or 1)
    slices = np.empty(count, dtype=int)
    for i in range(count):
        position = functional_value(ds, i, "PlanePositionSequence", "ImagePositionPatient")
        if position is None:
            raise InputError(what, f"frame {i + 1} has no ImagePositionPatient")
        ras = LPS_TO_RAS @ np.array([*map(float, position), 1.0])
        voxel = (inverse @ ras)[:3]
        k = int(round(voxel[2]))
        if not np.allclose(voxel, [0, 0, k], atol=1e-2) or not 0 <= k < series.volume.shape[2]:
            raise InputError(what, f"frame {i + 1} does not lie on a slice of the source series")
        slices[i] = k
    return slices


def _rows_columns(ds: Any, series: DicomSeries, what: str) -> None:
    if (int(ds.Columns), int(ds.Rows)) != series.volume.shape[:2]:
        raise InputError(what, f"frames of {ds.Columns}x{ds.Rows} pixels do not match the source series")


def segmentation_to_volume(ds: Any, series: DicomSeries) -> Volume:
    """A binary DICOM Segmentation read back as a uint8 label map on the grid of ``series``.

    Raises
    ------
    InputError
        Not a Segmentation, or frames that do not lie on the series' slices.
    """
    if str(ds.get("SOPClassUID", "")) != SEGMENTATION_CLASS:
        raise InputError("segmentation", "not a DICOM Segmentation object")
    _rows_columns(ds, series, "segmentation")
    frames = np.asarray(ds.pixel_array).reshape(-1, int(ds.Rows), int(ds.Columns))
    labels = np.zeros(series.volume.shape[::-1], dtype=np.uint8)  # (slice, row, column)
    groups = ds.PerFrameFunctionalGroupsSequence
    for i, k in enumerate(_frame_slices(ds, series, "segmentation")):
        segment = int(groups[i].SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        labels[k][frames[i] > 0] = segment
    return Volume(np.ascontiguousarray(labels.transpose(2, 1, 0)), series.volume.affine)


def parametric_map_to_volume(ds: Any, series: DicomSeries) -> Volume:
    """A DICOM Parametric Map read back as float32 real-world values on the grid of ``series``."""
    if str(ds.get("SOPClassUID", "")) != PARAMETRIC_MAP_CLASS:
        raise InputError("parametric map", "not a DICOM Parametric Map object")
    _rows_columns(ds, series, "parametric map")
    frames = np.asarray(ds.pixel_array, dtype=np.float32).reshape(-1, int(ds.Rows), int(ds.Columns))
    mapping = functional_value(ds, 0, "RealWorldValueMappingSequence", "RealWorldValueSlope")
    intercept = functional_value(ds, 0, "RealWorldValueMappingSequence", "RealWorldValueIntercept")
    frames = frames * float(mapping if mapping is not None else 1.0) + float(intercept or 0.0)
    values = np.zeros(series.volume.shape[::-1], dtype=np.float32)
    for i, k in enumerate(_frame_slices(ds, series, "parametric map")):
        values[k] = frames[i]
    return Volume(np.ascontiguousarray(values.transpose(2, 1, 0)), series.volume.affine)
