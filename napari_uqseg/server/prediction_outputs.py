"""The files of a prediction: NIfTI bytes per output, as the server stores and serves them."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial

import numpy as np

from napari_uqseg.core.nifti_io import nifti_bytes
from napari_uqseg.core.records import Prediction
from napari_uqseg.core.volume import Volume
from napari_uqseg.core.wire import LEVELS, map_scale

#: name suffix of the float32 copy of an output (kept when a prediction asks for ``float32``)
FLOAT_SUFFIX = "_f32"


def encode_outputs(prediction: Prediction, float32: bool) -> dict[str, bytes]:
    """NIfTI bytes per output: mask uint8, probabilities ``(I, J, K, C)`` and maps as uint8 x ``scl_slope``.

    The outputs are compressed in parallel threads (zlib releases the GIL); the uint8 ones with run-length
    deflate (``core.nifti_io.gzip_rle``), the float32 copies with ``compresslevel=1``.
    """
    affine = prediction.affine
    probs = Volume(np.moveaxis(prediction.probabilities.array, 0, -1), affine)  # NIfTI keeps channels last
    jobs = {
        "mask": partial(nifti_bytes, prediction.mask, dtype=np.uint8, rle=True),
        "probabilities": partial(nifti_bytes, probs, scale=1 / LEVELS, rle=True),
    }
    floats = {"probabilities": probs}
    for name, volume in prediction.maps.items():
        jobs[name] = partial(nifti_bytes, volume, scale=map_scale(volume.array), rle=True)
        floats[name] = volume
    if float32:
        for name, volume in floats.items():
            jobs[name + FLOAT_SUFFIX] = partial(nifti_bytes, volume, dtype=np.float32)
    with ThreadPoolExecutor(max_workers=min(4, len(jobs))) as pool:
        encoded = {name: pool.submit(job) for name, job in jobs.items()}
        return {name: future.result() for name, future in encoded.items()}


def encode_in_background(prediction: Prediction, float32: bool) -> Future[dict[str, bytes]]:
    """:func:`encode_outputs` started in its own thread, so it runs while the review ranking is computed."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode-outputs")
    try:
        return pool.submit(encode_outputs, prediction, float32)
    finally:
        pool.shutdown(wait=False)  # the thread ends with its one job
