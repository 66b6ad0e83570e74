"""Sliding-window prediction: every method's samples are drawn inside each window, then blended."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from monai.inferers import sliding_window_inference

from napari_uqseg.core.calibrated_uncertainty import calibration_entry, summary_from_scales
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.progress import Progress, no_progress
from napari_uqseg.core.records import Prediction
from napari_uqseg.core.volume import Volume, check_image_array
from napari_uqseg.engine.data import zscore, zscore_stats
from napari_uqseg.engine.precision import forward_precision, resolve_precision
from napari_uqseg.engine.prediction_writer import PredictionWriter, needed_statistics
from napari_uqseg.engine.slab_blend import WindowSource, blended_chunks
from napari_uqseg.engine.window_grid import window_grid

if TYPE_CHECKING:
    from napari_uqseg.engine.methods.base import UQMethod


#: the defaults chosen on a model's validation cases (``uqseg loop methods --store-choices``): attributes of a
#: method, kept in its card's ``extra`` and in each prediction's ``info``
CHOSEN_DEFAULTS = ("review_map", "case_score")


def chosen_defaults(method: Any) -> dict[str, str]:
    """The chosen defaults ``method`` (plain or TTA-wrapped) has set, by name (unset ones are left out)."""
    return {key: getattr(method, key) for key in CHOSEN_DEFAULTS if getattr(method, key, None)}


def _window_count(shape: tuple[int, ...], patch: tuple[int, ...], overlap: float) -> int:
    count = 1
    for size, roi in zip(shape, patch, strict=True):
        step = max(1, int(roi * (1 - overlap)))
        count *= 1 if size <= roi else math.ceil((size - roi) / step) + 1
    return count


def blend_windows(
    predictor,
    image: torch.Tensor,
    patch: tuple[int, ...],
    device: torch.device,
    overlap: float = 0.25,
    sw_batch_size: int = 1,
    output_device: torch.device | str = "cpu",
):
    """MONAI's Gaussian-blended sliding window over ``image`` ``(1, in_ch, *S)``.

    Volumes smaller than the patch are padded with the image's minimum (its background), as training
    patches are (``engine.data.PatchSampler``); MONAI's default zero would be mid-grey after z-scoring.
    """
    return sliding_window_inference(
        image,
        roi_size=patch,
        sw_batch_size=sw_batch_size,
        predictor=predictor,
        overlap=overlap,
        mode="gaussian",
        cval=float(image.min()),
        sw_device=device,
        device=torch.device(output_device),
    )


@torch.no_grad()
def window_statistics_over_volume(
    method: UQMethod,
    image: torch.Tensor,
    overlap: float = 0.25,
    sw_batch_size: int = 1,
    progress: Progress = no_progress,
    output_device: torch.device | str = "cpu",
) -> dict[str, torch.Tensor]:
    """Blend ``method.window_statistics`` over a whole normalised image.

    Parameters
    ----------
    image : torch.Tensor
        ``(1, in_channels, *S)`` normalised intensities.
    output_device : torch.device or str
        Where the full-size blended statistics live (CPU keeps GPU memory to one window).

    Returns
    -------
    dict
        Each statistic at full size, e.g. ``mean_prob`` ``(1, C, *S)``.
    """
    patch = tuple(method.patch_size)
    total = _window_count(tuple(image.shape[2:]), patch, overlap)
    done = [0]

    def predictor(x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = method.window_statistics(x.to(method.device))
        done[0] += x.shape[0]
        progress(min(done[0], total), total, "predicting windows")
        return out

    return blend_windows(predictor, image, patch, method.device, overlap, sw_batch_size, output_device)


def predict_volume(
    method: UQMethod,
    volume: Volume,
    overlap: float = 0.25,
    sw_batch_size: int = 1,
    progress: Progress = no_progress,
    output_dtype: str = "float16",
    probability_classes: Sequence[int] | None = None,
    precision: str = "auto",
) -> Prediction:
    """Mask, mean probabilities and uncertainty maps for one raw (un-normalised) volume.

    The windows and their blending are MONAI's Gaussian sliding window; the blended statistics are held
    for one block of windows and the overlap between rows of windows, and turned into outputs as each part
    of the volume is finished (``engine.slab_blend``, ``engine.blend_accumulator``,
    ``engine.prediction_writer``), so peak memory is the outputs plus a block and the rows' overlap.

    Parameters
    ----------
    volume : Volume
        Intensities ``(I, J, K)`` (``(I, J)`` for 2-D models) and their affine; never copied.
    output_dtype : str
        ``float16`` (default; precision in ``engine.prediction_writer``) or ``float32`` probabilities and maps.
    probability_classes : sequence of int or None
        Classes whose probabilities are kept (``None``: all); ``info["probability_classes"]`` lists them.
    precision : str
        Network arithmetic: ``auto`` (bfloat16 on CPUs with native bfloat16, else float32), ``float32``
        or ``bfloat16`` (``engine.precision``); ``info["precision"]`` says which ran.

    Returns
    -------
    Prediction
        ``mask`` uint8 ``(I, J, K)``, ``probabilities`` ``(C', I, J, K)``, maps ``(I, J, K)``; all on
        the input's affine.
    """
    dims = method.net_config.spatial_dims
    array = check_image_array(volume.array, "image", dims)
    if method.net_config.in_channels != 1:
        raise InputError("image", "multi-channel models are not supported by predict_volume yet")
    start = time.perf_counter()
    mean, std = zscore_stats(array, method.normalisation)
    cval = float(zscore(np.asarray([array.min()]), mean, std)[0])
    grid = window_grid(tuple(array.shape), tuple(method.patch_size), overlap)
    source = WindowSource(array, grid, lambda values: zscore(values, mean, std), cval)
    n = method.n_samples()
    writer = PredictionWriter(tuple(array.shape), n, method.maps, output_dtype, probability_classes)
    method.eval()
    arithmetic = resolve_precision(precision, method.device)
    with torch.no_grad(), forward_precision(arithmetic, method.device):
        for region, stats in blended_chunks(_needed(method), source, sw_batch_size, progress):
            writer.write(region, {name: value.numpy() for name, value in stats.items()})
    tta = getattr(method, "tta", "none")
    entry = calibration_entry(getattr(method, "uq_calibration", None), tta)
    summary = summary_from_scales(writer.scales(), writer.mask, volume.affine, entry)
    elapsed = time.perf_counter() - start
    info = {"samples": n, "device": str(method.device), "tta": tta, **summary}
    info.update(chosen_defaults(method))  # the model's own defaults, chosen on its validation cases
    return Prediction(
        mask=Volume(writer.mask, volume.affine),
        probabilities=Volume(writer.probabilities, volume.affine),
        maps={name: Volume(m, volume.affine) for name, m in writer.maps.items()},
        method=method.name,
        timings={"inference": elapsed},
        info={**info, "probability_classes": writer.classes, "output_dtype": output_dtype, "precision": arithmetic},
    )


def _needed(method: UQMethod) -> Callable[[torch.Tensor], dict[str, torch.Tensor]]:
    """``method.window_statistics`` on its device, keeping only the statistics a prediction blends."""
    n = method.n_samples()

    def predictor(x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = method.window_statistics(x.to(method.device))
        return {name: out[name] for name in needed_statistics(list(out), n)}

    return predictor
