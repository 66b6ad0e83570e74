"""DUDES (Landgraf et al., PFG 2024): a single U-Net student distils an ensemble teacher's uncertainty.

The teacher's per-voxel target is the standard deviation over its samples of the probability of the
predicted class; the student is the same U-Net plus a 1x1-conv + sigmoid uncertainty head on the last
decoder features, trained with segmentation loss + RMSLE to the target. Inference is one forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.progress import Progress
from napari_uqseg.engine.data import known_foreground
from napari_uqseg.engine.methods.base import TrainingData, UQMethod, register
from napari_uqseg.engine.methods.deep_ensemble import DeepEnsemble
from napari_uqseg.engine.statistics import single_sample_statistics
from napari_uqseg.engine.training import TrainConfig, fit_network, segmentation_loss
from napari_uqseg.engine.unet import UNet

ROI_MODES = ("foreground_bbox", "dilated_foreground", "all")


@dataclass
class DudesOptions:
    """DUDES options (evidence for the defaults: docs/methods.md, "DUDES options").

    Attributes
    ----------
    teacher : str or None
        Folder of a trained model with several samples; ``None`` trains a deep ensemble of
        ``teacher_members`` inside this fit, with the same training config.
    teacher_members : int
        Members of that ensemble (paper: 10).
    ddof : int
        Delta degrees of freedom of the teacher's std (1: unbiased, as the official code).
    uncertainty_weight : float
        Weight of the RMSLE term against the segmentation loss (paper: 1).
    roi : str
        Voxels the RMSLE is measured on, from the ground-truth foreground united with the teacher's
        predicted foreground: ``"foreground_bbox"`` its bounding box per patch grown by ``roi_margin``,
        ``"dilated_foreground"`` the foreground dilated by ``roi_margin``, ``"all"`` every voxel (paper).
    roi_margin : int
        Growth of the ROI, voxels.
    background_weight : float
        Weight of the voxels outside the ROI (0 drops them).
    head_bias : float
        Initial bias of the uncertainty head's logit (``sigmoid(-4) = 0.018``).
    seed : int
        Seed of the student's initialisation (teacher member ``k`` uses ``seed + 1000 (k + 1)``).
    """

    teacher: str | None = None
    teacher_members: int = 10
    ddof: int = 1
    uncertainty_weight: float = 10.0
    roi: str = "foreground_bbox"
    roi_margin: int = 2
    background_weight: float = 0.01
    head_bias: float = -4.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.roi not in ROI_MODES:
            raise InputError("dudes roi", f"must be one of {ROI_MODES}, got {self.roi!r}")
        if self.teacher is None and self.teacher_members < 2:
            raise InputError("dudes teacher_members", "a teacher ensemble needs >= 2 members for a std")
        if self.ddof not in (0, 1):
            raise InputError("dudes ddof", f"must be 0 or 1, got {self.ddof}")


def teacher_class_std(stats: dict[str, torch.Tensor], n_samples: int, ddof: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher target: std over samples of the predicted class's probability, and the predicted class.

    Same definition as ``core.uncertainty.uncertainty_maps``' ``class_std``, in torch for training.

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        ``(B, 1, *S)`` std and ``(B, 1, *S)`` int64 argmax of the mean probability.
    """
    predicted = stats["mean_prob"].argmax(dim=1, keepdim=True)
    m1 = stats["mean_prob"].gather(1, predicted)
    m2 = stats["mean_sq_prob"].gather(1, predicted)
    var = (m2 - m1 * m1).clamp_min(0.0) * (n_samples / (n_samples - ddof))
    return var.sqrt(), predicted


def roi_weights(
    label: torch.Tensor, predicted: torch.Tensor, margin: int, background: float, mode: str = "foreground_bbox"
) -> torch.Tensor:
    """``(B, 1, *S)`` weights: 1 inside the ROI (see ``DudesOptions.roi``) of ``label > 0 or predicted > 0``,
    ``background`` elsewhere (unreviewed voxels, ``IGNORE_LABEL``, are not label foreground)."""
    fg = (known_foreground(label) | (predicted > 0)).float()
    if mode == "foreground_bbox":
        roi = torch.zeros_like(fg)
        for b in range(fg.shape[0]):
            found = torch.nonzero(fg[b, 0])
            if found.numel():
                lo, hi = (found.min(0).values - margin).clamp_min(0), found.max(0).values + margin + 1
                roi[(b, 0, *(slice(int(a), int(z)) for a, z in zip(lo, hi, strict=True)))] = 1.0
        fg = roi
    elif margin > 0:
        pool = F.max_pool3d if fg.ndim == 5 else F.max_pool2d
        fg = pool(fg, kernel_size=2 * margin + 1, stride=1, padding=margin)  # max-pool = binary dilation
    return fg + (1.0 - fg) * background


def rmsle(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Root mean squared log error ``sqrt(mean w (log1p(pred) - log1p(target))^2)`` (weighted mean)."""
    err = (torch.log1p(pred.float()) - torch.log1p(target.float())) ** 2
    if weight is None:
        return err.mean().sqrt()
    return ((err * weight).sum() / weight.sum().clamp_min(1e-12)).clamp_min(1e-12).sqrt()


@register
class Dudes(UQMethod):
    name = "dudes"
    summary = "DUDES student: one U-Net with a distilled ensemble-std head (1 pass)"
    maps = ("entropy", "class_std")
    Options = DudesOptions

    def build(self) -> None:
        with torch.random.fork_rng():
            torch.manual_seed(self.options.seed)
            self.nets["net"] = UNet(self.net_config)
            conv = nn.Conv3d if self.net_config.spatial_dims == 3 else nn.Conv2d
            self.nets["uncertainty_head"] = conv(self.net_config.channels[0], 1, kernel_size=1)
            nn.init.constant_(self.nets["uncertainty_head"].bias, self.options.head_bias)
        self.teacher_info: dict[str, Any] = {}

    def student(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward pass: segmentation logits ``(B, C, *S)`` and uncertainty ``(B, 1, *S)`` in (0, 1)."""
        net = self.nets["net"]
        features = net.features(x)
        return net.head(features), torch.sigmoid(self.nets["uncertainty_head"](features))

    def _teacher(self, data: TrainingData, cfg: TrainConfig, progress: Progress, work_dir: Path | None) -> UQMethod:
        o = self.options
        if o.teacher is not None:
            from napari_uqseg.engine.model_folder import load_model  # the store imports the method registry

            teacher = load_model(o.teacher, str(self.device))
            if teacher.n_samples() <= o.ddof:
                raise InputError(o.teacher, f"teacher '{teacher.name}' has {teacher.n_samples()} sample(s): no std")
            if teacher.net_config.num_classes != self.net_config.num_classes:
                raise InputError(o.teacher, "teacher and dataset have different numbers of classes")
            self.teacher_info = {"teacher": str(o.teacher), "teacher_method": teacher.name}
        else:
            teacher = DeepEnsemble(self.net_config, {"members": o.teacher_members, "seed": o.seed + 1000})
            teacher.to(self.device)
            teacher_dir = Path(work_dir) / "teacher" if work_dir else None
            teacher.fit(data, cfg, progress, teacher_dir)
            self.teacher_info = {
                "teacher": f"deep_ensemble({o.teacher_members}) trained in this fit",
                "teacher_method": "deep_ensemble",
            }
        self.teacher_info["teacher_samples"] = teacher.n_samples()
        teacher.eval()
        return teacher

    def fit(self, data: TrainingData, cfg: TrainConfig, progress: Progress, work_dir: Path | None) -> dict:
        o = self.options
        teacher = self._teacher(data, cfg, progress, work_dir)
        n = teacher.n_samples()
        seg_loss = segmentation_loss()

        def step_loss(x: torch.Tensor, y: torch.Tensor, _: int) -> torch.Tensor:
            with torch.no_grad():  # the teacher runs online on the same patches (eval mode, its own sampling)
                target, predicted = teacher_class_std(teacher.window_statistics(x), n, o.ddof)
            logits, u = self.student(x)
            weight = None if o.roi == "all" else roi_weights(y, predicted, o.roi_margin, o.background_weight, o.roi)
            return seg_loss(logits, y) + o.uncertainty_weight * rmsle(u, target, weight)

        history = fit_network(
            self.nets,
            step_loss,
            data.sampler(cfg, seed_offset=5000),
            cfg,
            progress,
            tag="student",
            work_dir=work_dir,
            validate=self.validator(data),
        )
        return {"student": history, **self.teacher_info}

    def window_statistics(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.nets.eval()
        logits, u = self.student(x)
        return {**single_sample_statistics(self.probabilities(logits)), "class_std": u}

    def n_samples(self) -> int:
        return 1

    def extra_state(self) -> dict[str, Any]:
        return {**self.teacher_info, "ddof": self.options.ddof}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.teacher_info = {k: v for k, v in state.items() if k.startswith("teacher")}
