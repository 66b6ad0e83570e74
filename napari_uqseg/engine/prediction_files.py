"""Predicting image files into output folders: mask, probabilities, every map and ``review.json``, as a set.

The back end of ``uqseg predict`` (NIfTI; DICOM series add their objects in ``engine.dicom_predict``), the
starter-model check and triage; every output is staged and moved into place only when all were written.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from napari_uqseg.core.nifti_io import load_image, save_volume
from napari_uqseg.core.predict_options import PredictOptions
from napari_uqseg.core.progress import Progress, no_progress
from napari_uqseg.core.records import Prediction
from napari_uqseg.core.volume import Volume
from napari_uqseg.engine.device import resolve_device
from napari_uqseg.engine.inference import predict_volume
from napari_uqseg.engine.model_folder import load_model
from napari_uqseg.engine.tta import with_tta


def predict_file(
    model_dir: str | Path,
    image_path: str | Path,
    out_dir: str | Path,
    device: str = "auto",
    progress: Progress = no_progress,
    options: PredictOptions | None = None,
) -> dict[str, Path]:
    """Predict one NIfTI file; write mask, probabilities, each map and ``review.json`` into ``out_dir``.

    ``options`` (default :class:`PredictOptions`) sets the TTA mode, the sliding window and the review map.
    ``review.json`` also carries the structure volumes (with calibrated intervals and conformal mask
    thresholds if the model has them).

    All files are written into a temporary folder first and moved into place only after every one
    succeeded, so a failed prediction leaves no partial output.
    """
    options = options or PredictOptions()
    image = load_image(image_path)  # validate before loading the model
    method = with_tta(load_model(model_dir, str(resolve_device(device))), options.tta)
    prediction = predict_volume(
        method, image, options.overlap, options.sw_batch_size, progress=progress, precision=options.precision
    )
    return write_prediction(prediction, out_dir, options)


def write_prediction(
    prediction: Prediction, out_dir: str | Path, options: PredictOptions | None = None
) -> dict[str, Path]:
    """Write a prediction's NIfTI files and ``review.json`` (ranked under ``options``) atomically as a set.

    Raises
    ------
    InputError
        The review map asked for is not one of the prediction's maps (nothing is written).
    """
    ranking = (options or PredictOptions()).review_ranking(prediction)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        names = {"mask": "mask.nii.gz", "probabilities": "probabilities.nii.gz"}
        save_volume(prediction.mask, staging / names["mask"])
        # NIfTI stores vector images as (I, J, K, C); ours are (C, I, J, K)
        probs = Volume(np.moveaxis(prediction.probabilities.array, 0, -1), prediction.affine)
        save_volume(probs, staging / names["probabilities"])
        for name, volume in prediction.maps.items():
            names[name] = f"{name}.nii.gz"
            save_volume(volume, staging / names[name])
        uncertainty = {k: prediction.info[k] for k in ("volumes", "conformal_masks", "tta") if k in prediction.info}
        (staging / "review.json").write_text(json.dumps({**ranking.to_dict(), **uncertainty}, indent=1))
        names["review"] = "review.json"
        out_dir.mkdir(exist_ok=True)
        written = {}
        for key, filename in names.items():
            (staging / filename).replace(out_dir / filename)
            written[key] = out_dir / filename
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)
