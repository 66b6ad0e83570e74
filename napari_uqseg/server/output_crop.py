"""A stored prediction output cropped to a box (``GET /v1/predictions/{id}/outputs/{name}?box=``).

The crop keeps the stored values exactly (uint8 levels and ``scl_slope``, or float32) and gets the affine of its
first voxel, so it lies where it belongs in any viewer; the answer says which box it is, the full shape and what
a paste with the background value loses outside the box (``core.output_box``).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from napari_uqseg.core.errors import NotFoundError
from napari_uqseg.core.nifti_io import gzip_rle
from napari_uqseg.core.output_box import (
    BOX_HEADER,
    OUTSIDE_HEADER,
    SHAPE_HEADER,
    Box,
    box_slices,
    box_text,
    crop_affine,
    fill_value,
    outside_error,
    parse_box,
)


def _stored_image(path: Path) -> nib.Nifti1Image:
    """The server's own gzip NIfTI file (written by ``encode_outputs``)."""
    try:
        return nib.Nifti1Image.from_bytes(gzip.decompress(path.read_bytes()))
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise NotFoundError("output", f"{path.name} is unreadable ({exc.__class__.__name__}); predict again") from exc


def cropped_output(path: Path, name: str, box: str) -> tuple[bytes, dict[str, str]]:
    """gzip NIfTI bytes of the output file at ``path`` cropped to ``box`` (``i0:i1,j0:j1,k0:k1``), and headers.

    Parameters
    ----------
    path : Path
        A stored output (``(I, J, K)``, or ``(I, J, K, C)`` for probabilities).
    name : str
        The output's name (``probabilities`` fills channel 0 with 1 outside the box, the rest fill with 0).
    box : str
        Voxel ranges, stop exclusive, inside the output's ``(I, J, K)``.

    Returns
    -------
    bytes, dict
        The crop, and the headers ``X-UQSeg-Box``, ``X-UQSeg-Shape`` and ``X-UQSeg-Outside-Error`` (largest
        difference between the output and its background value outside the box).

    Raises
    ------
    InputError
        A malformed box or one outside the volume.
    """
    img = _stored_image(path)
    raw = np.asanyarray(img.dataobj.get_unscaled())
    shape = raw.shape[:3]
    region: Box = parse_box(box, shape)
    slope, inter = float(img.dataobj.slope), float(img.dataobj.inter)  # nibabel keeps them off the loaded header
    fill = (fill_value(name, raw.shape[3] if raw.ndim == 4 else 1) - inter) / slope  # in stored units
    crop = nib.Nifti1Image(np.ascontiguousarray(raw[box_slices(region)]), crop_affine(img.affine, region), img.header)
    if (slope, inter) != (1.0, 0.0):
        crop.header.set_slope_inter(slope, inter)
    headers = {
        BOX_HEADER: box_text(region),
        SHAPE_HEADER: ",".join(str(n) for n in shape),
        OUTSIDE_HEADER: repr(outside_error(raw, region, fill) * abs(slope)),
    }
    return gzip_rle(crop.to_bytes()), headers
