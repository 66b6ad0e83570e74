"""``uqseg predict`` on a DICOM series: the NIfTI outputs plus a DICOM SEG and one Parametric Map per map."""

from __future__ import annotations

from pathlib import Path

import napari_uqseg
from napari_uqseg.core.dicom_objects import Provenance, dicom_bytes, parametric_map_object, segmentation_object
from napari_uqseg.core.dicom_series import read_dicom
from napari_uqseg.core.nifti_io import atomic_write_bytes
from napari_uqseg.core.predict_options import PredictOptions
from napari_uqseg.core.progress import Progress, no_progress
from napari_uqseg.engine.device import resolve_device
from napari_uqseg.engine.inference import predict_volume
from napari_uqseg.engine.model_folder import load_model, read_card
from napari_uqseg.engine.tta import with_tta


def predict_dicom(
    model_dir: str | Path,
    series_path: str | Path,
    out_dir: str | Path,
    device: str = "auto",
    progress: Progress = no_progress,
    options: PredictOptions | None = None,
) -> dict[str, Path]:
    """Predict a DICOM series (folder or zip); write what ``predict_file`` writes plus ``mask.seg.dcm`` and
    ``<map>.pm.dcm``, all referencing the source series (``options`` as for ``predict_file``). Returns output
    name -> path.

    Raises
    ------
    InputError
        The series cannot be read (see :func:`napari_uqseg.core.dicom_series.series_from_datasets`).
    """
    from napari_uqseg.engine.prediction_files import write_prediction

    series = read_dicom(series_path)  # validate before loading the model
    model_dir = Path(model_dir)
    card = read_card(model_dir)
    options = options or PredictOptions()
    method = with_tta(load_model(model_dir, str(resolve_device(device))), options.tta)
    prediction = predict_volume(
        method, series.volume, options.overlap, options.sw_batch_size, progress=progress, precision=options.precision
    )
    written = write_prediction(prediction, out_dir, options)
    provenance = Provenance(model_dir.name, "local", card.method, napari_uqseg.__version__)
    objects = {"mask.seg.dcm": segmentation_object(series, prediction.mask, dict(card.labels), provenance)}
    for number, (name, volume) in enumerate(sorted(prediction.maps.items())):
        objects[f"{name}.pm.dcm"] = parametric_map_object(series, volume, name, provenance, 902 + number)
    for filename, ds in objects.items():
        path = Path(out_dir) / filename
        atomic_write_bytes(path, dicom_bytes(ds))
        written[filename.removesuffix(".dcm").replace(".", "_")] = path
    return written
