"""Dice + cross-entropy that leaves out voxels without a known class (label ``IGNORE_LABEL``).

A partial correction says which voxels a person reviewed; the rest of its label is the model's own
prediction, errors included. Fine-tuning marks those voxels ``IGNORE_LABEL`` (``engine.finetune``) and this
loss gives them no weight: they add nothing to the loss and get no gradient. Batches without ignored voxels
(training, replayed cases, whole-case corrections) get exactly MONAI's ``DiceCELoss``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss
from torch import nn

from napari_uqseg.engine.data import IGNORE_LABEL

#: MONAI ``DiceLoss`` defaults, so the masked Dice equals ``DiceCELoss`` when nothing is ignored
SMOOTH = 1e-5


def masked_dice_ce(logits: torch.Tensor, y: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Soft Dice (per sample and class, then averaged) + mean cross-entropy over the ``valid`` voxels only.

    Parameters
    ----------
    logits : Tensor
        ``(B, C, *S)`` class scores.
    y : Tensor
        ``(B, 1, *S)`` integer labels in ``[0, C)`` wherever ``valid``.
    valid : Tensor
        ``(B, 1, *S)`` bool, the voxels that count.

    Returns
    -------
    Tensor
        Scalar loss; with every voxel valid it equals ``DiceCELoss(to_onehot_y=True, softmax=True)``.
    """
    target = torch.where(valid, y, torch.zeros_like(y)).long()
    weight = valid.to(logits.dtype)
    probs = torch.softmax(logits, dim=1) * weight
    onehot = F.one_hot(target[:, 0], logits.shape[1]).movedim(-1, 1).to(logits.dtype) * weight
    dims = tuple(range(2, logits.ndim))
    intersection = (probs * onehot).sum(dims)
    denominator = probs.sum(dims) + onehot.sum(dims)
    dice = (1.0 - (2.0 * intersection + SMOOTH) / (denominator + SMOOTH)).mean()
    voxel_ce = F.cross_entropy(logits, target[:, 0], reduction="none")
    count = weight[:, 0].sum()
    ce = (voxel_ce * weight[:, 0]).sum() / count.clamp_min(1.0)
    return dice + ce


class MaskedDiceCELoss(nn.Module):
    """``loss(logits (B, C, *S), y (B, 1, *S))``: Dice + CE, voxels labelled ``IGNORE_LABEL`` left out."""

    def __init__(self) -> None:
        super().__init__()
        self.plain = DiceCELoss(to_onehot_y=True, softmax=True)

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = logits.float()  # bfloat16 logits of mixed-precision training: softmax and sums in float32
        valid = y != IGNORE_LABEL
        if bool(valid.all()):
            return self.plain(logits, y)
        return masked_dice_ce(logits, y, valid)
