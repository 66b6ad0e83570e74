"""Sliding-window prediction: every method's samples are drawn inside each window, then blended."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import numpy as np
import torch
from monai.inferers import sliding_window_inference

from napari_uqseg.core.calibrated_uncertainty import calibration_entry, prediction_uncertainty_summary
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.progress import Progress, no_progress
from napari_uqseg.core.records import Prediction
from napari_uqseg.core.uncertainty import uncertainty_maps
from napari_uqseg.core.volume import Volume, check_image_array
from napari_uqseg.engine.data import normalise

if TYPE_CHECKING:
    from napari_uqseg.engine.methods.base import UQMethod


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
) -> Prediction:
    """Mask, mean probabilities and uncertainty maps for one raw (un-normalised) volume.

    Parameters
    ----------
    volume : Volume
        Intensities ``(I, J, K)`` (``(I, J)`` for 2-D models) and their affine.

    Returns
    -------
    Prediction
        ``mask`` uint8 ``(I, J, K)``, ``probabilities`` ``(C, I, J, K)``, maps ``(I, J, K)``; all on
        the input's affine.
    """
    dims = method.net_config.spatial_dims
    array = check_image_array(volume.array, "image", dims)
    if method.net_config.in_channels != 1:
        raise InputError("image", "multi-channel models are not supported by predict_volume yet")
    start = time.perf_counter()
    x = torch.from_numpy(normalise(array, method.normalisation))[None, None]
    method.eval()
    stats = window_statistics_over_volume(method, x, overlap, sw_batch_size, progress)
    mean_prob = stats["mean_prob"][0].numpy()
    maps = uncertainty_maps(
        mean_prob,
        stats["mean_sq_prob"][0].numpy() if "mean_sq_prob" in stats else None,
        stats["expected_entropy"][0, 0].numpy() if "expected_entropy" in stats else None,
        method.n_samples(),
    )
    for name, value in stats.items():  # method-specific maps, e.g. the DUDES distilled std
        if name not in ("mean_prob", "mean_sq_prob", "expected_entropy"):
            maps[name] = value[0, 0].numpy().astype(np.float32)
    maps = {name: maps[name] for name in method.maps if name in maps}
    mask = np.argmax(mean_prob, axis=0).astype(np.uint8)
    tta = getattr(method, "tta", "none")
    summary = prediction_uncertainty_summary(
        mean_prob,
        stats["mean_sq_prob"][0].numpy() if "mean_sq_prob" in stats else None,
        method.n_samples(),
        mask,
        volume.affine,
        calibration_entry(getattr(method, "uq_calibration", None), tta),
    )
    elapsed = time.perf_counter() - start
    return Prediction(
        mask=Volume(mask, volume.affine),
        probabilities=Volume(mean_prob.astype(np.float32), volume.affine),
        maps={name: Volume(m, volume.affine) for name, m in maps.items()},
        method=method.name,
        timings={"inference": elapsed},
        info={"samples": method.n_samples(), "device": str(method.device), "tta": tta, **summary},
    )
