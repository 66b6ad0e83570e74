"""Downloading a prediction's outputs, whole or as the region of interest pasted back to full size (numpy only).

The region of interest of a prediction is the box of its foreground (the summary's ``foreground_box``) and of
every review region, grown by a margin: what the viewer shows and sends the reviewer to. Outputs are fetched
cropped to it (``?box=``) and pasted into full-size arrays whose voxels outside the box hold the background
value (mask 0, maps 0, probabilities 1 for the background class and 0 for the others), so the viewer's layers
have the image's shape and affine either way. What the paste loses outside the box is reported per output in
``prediction.info["roi"]["outside_error"]``.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from napari_uqseg.client.backend import PredictionResult
from napari_uqseg.client.errors import BackendError
from napari_uqseg.client.payloads import decode_output, prediction_from_volumes
from napari_uqseg.core.output_box import (
    BOX_HEADER,
    OUTSIDE_HEADER,
    Box,
    box_text,
    fill_value,
    grow_box,
    is_whole,
    parse_box,
    paste,
    union_box,
)
from napari_uqseg.core.volume import Volume

#: voxels added on every side of the foreground and review boxes (what the napari plugin and Slicer ask for):
#: the uncertain rim of a structure lies within a few voxels of its boundary
ROI_MARGIN = 8

#: ``get(name, params)``: the answer to ``GET /v1/predictions/{id}/outputs/{name}`` with query ``params``
OutputGetter = Callable[[str, dict[str, str]], Any]


def region_of_interest(summary: dict[str, Any], margin: int | None) -> Box | None:
    """The box to fetch: foreground and review-region boxes grown by ``margin`` voxels, clipped to the image.

    ``None`` (fetch whole outputs) when ``margin`` is ``None``, when the server does not report a foreground box
    (a server before region-of-interest transfer), when there is neither foreground nor a review region, or
    when the box covers the whole image.
    """
    if margin is None or "foreground_box" not in summary:
        return None
    regions = (summary.get("review") or {}).get("regions") or []
    box = union_box([summary["foreground_box"], *(region["bbox"] for region in regions)])
    if box is None:
        return None
    box = grow_box(box, int(margin), summary["shape"])
    return None if is_whole(box, summary["shape"]) else box


def download_prediction(
    get: OutputGetter, summary: dict[str, Any], margin: int | None = None, box: str | None = None
) -> PredictionResult:
    """Fetch and decode every output of ``summary`` in parallel threads; the result has full-size arrays.

    Parameters
    ----------
    get : callable
        ``get(name, params)`` -> response with ``content`` (bytes) and ``headers``.
    summary : dict
        The prediction's JSON summary (``POST /v1/predictions``).
    margin : int or None
        Region-of-interest margin in voxels (:func:`region_of_interest`); ``None``: whole outputs.
    box : str or None
        A box the viewer gives (``i0:i1,j0:j1,k0:k1``, voxels, stop exclusive), instead of the region of interest.

    Raises
    ------
    InputError
        A malformed ``box`` or one outside the image.
    BackendError
        The server answered another box than the one asked.
    """
    box = parse_box(box, summary["shape"]) if box is not None else region_of_interest(summary, margin)
    names = list(summary["outputs"])
    with ThreadPoolExecutor(max_workers=max(1, min(4, len(names)))) as pool:  # gzip inflation releases the GIL
        fetched = dict(zip(names, pool.map(lambda name: _fetch(get, name, box, summary), names), strict=True))
    result = prediction_from_volumes(summary, {name: volume for name, (volume, _) in fetched.items()})
    if box is not None:
        lost = {name: error for name, (_, error) in fetched.items()}
        result.prediction.info["roi"] = {"box": [list(b) for b in box], "margin": margin, "outside_error": lost}
    return result


def _fetch(get: OutputGetter, name: str, box: Box | None, summary: dict[str, Any]) -> tuple[Volume, float]:
    """One output, decoded (and pasted to full size when cropped), and the largest value lost outside the box."""
    params = {"dtype": "uint8"} if box is None else {"dtype": "uint8", "box": box_text(box)}
    response = get(name, params)
    volume = decode_output(name, response.content)
    served = response.headers.get(BOX_HEADER)
    if box is None or served is None:  # whole outputs, or a server that does not crop
        return volume, 0.0
    if served != box_text(box):
        raise BackendError(f"output {name}: asked for box {box_text(box)}, the server answered {served}")
    channels = volume.array.shape[3] if volume.array.ndim == 4 else 1
    full = paste(volume.array, box, summary["shape"], fill_value(name, channels))
    return Volume(full, np.asarray(summary["affine"], dtype=np.float64)), float(response.headers[OUTSIDE_HEADER])
