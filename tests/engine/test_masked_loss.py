"""The fine-tune loss leaves out voxels nobody reviewed; a correction without a reviewed mask trains on all."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.losses import DiceCELoss

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.volume import Volume
from napari_uqseg.engine.data import IGNORE_LABEL, Case, PatchSampler
from napari_uqseg.engine.finetune import (
    CorrectedCase,
    FinetuneOptions,
    _loss_masked,
    confident_voxels,
    ignore_outside,
)
from napari_uqseg.engine.inference import predict_volume
from napari_uqseg.engine.make_model import build_method
from napari_uqseg.engine.masked_loss import masked_dice_ce
from napari_uqseg.engine.methods.base import UQMethod
from napari_uqseg.engine.training import segmentation_loss


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 3, 6, 7, 5, generator=g)
    y = torch.randint(0, 3, (2, 1, 6, 7, 5), generator=g)
    return logits, y


def test_without_ignored_voxels_the_loss_is_monai_dice_ce():
    logits, y = _batch()
    plain = DiceCELoss(to_onehot_y=True, softmax=True)(logits, y)
    assert float(segmentation_loss()(logits, y)) == pytest.approx(float(plain), abs=1e-6)
    # the masked formula itself, with every voxel valid, is the same loss
    everything = torch.ones_like(y, dtype=torch.bool)
    assert float(masked_dice_ce(logits, y, everything)) == pytest.approx(float(plain), abs=1e-5)


def test_unreviewed_voxels_add_nothing_to_the_loss_or_its_gradient():
    logits, y = _batch(1)
    reviewed = torch.zeros_like(y, dtype=torch.bool)
    reviewed[:, :, 1:4, 2:6, 1:4] = True
    masked_y = torch.where(reviewed, y, torch.full_like(y, IGNORE_LABEL))
    logits.requires_grad_(True)
    loss = segmentation_loss()(logits, masked_y)
    loss.backward()
    outside = ~reviewed.expand_as(logits)
    assert torch.all(logits.grad[outside] == 0)  # exactly no gradient where nobody reviewed
    assert torch.count_nonzero(logits.grad[~outside]) > 0.9 * int((~outside).sum())
    # whatever the model predicts there, the loss is the same
    changed = logits.detach().clone()
    changed[outside] = torch.randn(int(outside.sum())) * 10
    assert float(segmentation_loss()(changed, masked_y)) == pytest.approx(float(loss.detach()), abs=1e-6)
    # and it is not the unmasked loss: the unreviewed voxels would have counted
    assert float(segmentation_loss()(logits.detach(), y)) != pytest.approx(float(loss.detach()), abs=1e-3)


def test_a_batch_with_nothing_reviewed_in_one_patch_still_trains_the_other():
    logits, y = _batch(2)
    y[0] = IGNORE_LABEL  # a patch wholly outside the reviewed voxels
    logits.requires_grad_(True)
    segmentation_loss()(logits, y).backward()
    assert torch.all(logits.grad[0] == 0) and torch.count_nonzero(logits.grad[1]) > 0
    assert torch.isfinite(logits.grad).all()


def _corrected(reviewed: np.ndarray | None) -> tuple[Case, CorrectedCase]:
    label = np.zeros((6, 6, 6), np.uint8)
    label[2:5, 2:5, 2:5] = 1
    image = np.random.default_rng(0).normal(size=label.shape).astype(np.float32)
    mask = None if reviewed is None else Volume(reviewed, np.eye(4))
    corrected = CorrectedCase("c1", Volume(image, np.eye(4)), Volume(label, np.eye(4)), mask)
    return Case("c1", image, label, np.eye(4)), corrected


@pytest.fixture(scope="module")
def untrained() -> UQMethod:
    """A tiny untrained two-class net: its probabilities vary over the volume, which is all these tests need."""
    method, _ = build_method("deterministic", {"net": {"channels": [4, 8]}, "train": {"patch_size": [8, 8, 8]}}, 2)
    return method


def test_reviewed_mask_marks_the_rest_ignored_and_no_mask_keeps_every_voxel():
    reviewed = np.zeros((6, 6, 6), bool)
    reviewed[:3] = True
    case, corrected = _corrected(reviewed)
    (fitted,), masked = _loss_masked([case], [corrected], "reviewed", {})
    assert masked == ["c1"]
    assert np.array_equal(fitted.label[:3], case.label[:3]) and (fitted.label[3:] == IGNORE_LABEL).all()
    (same,), none = _loss_masked([case], [corrected], "all", {})  # no mask
    assert none == [] and same is case
    case, whole = _corrected(None)  # a correction without a mask: the whole case was reviewed
    (same,), none = _loss_masked([case], [whole], "confident", {})
    assert none == [] and same is case and not (same.label == IGNORE_LABEL).any()
    with pytest.raises(InputError, match="reviewed mask shape"):
        ignore_outside(case, reviewed[:5])
    with pytest.raises(InputError, match="loss_mask"):
        FinetuneOptions.from_dict({"loss_mask": "some"})
    assert FinetuneOptions().loss_mask == "confident"  # measured best on the hippocampus loop (docs/loop.md)
    for cut in (0.0, 1.5):
        with pytest.raises(InputError, match="pseudo_label_confidence"):
            FinetuneOptions.from_dict({"pseudo_label_confidence": cut})
    with pytest.raises(InputError, match="seed"):
        FinetuneOptions.from_dict({"seed": "1"})


def test_confident_mask_keeps_reviewed_voxels_and_the_model_confident_ones(untrained):
    reviewed = np.zeros((6, 6, 6), bool)
    reviewed[:2] = True
    case, corrected = _corrected(reviewed)
    prediction = predict_volume(untrained, corrected.image, output_dtype="float32")
    top = prediction.probabilities.array.max(axis=0)
    cut = float(np.median(top[2:]))  # half of the unreviewed voxels are "confident"
    confident = {"c1": confident_voxels(prediction, cut)}
    (fitted,), masked = _loss_masked([case], [corrected], "confident", confident)
    kept = reviewed | (top >= cut)
    assert masked == ["c1"] and 0 < (~kept).sum() < (~reviewed).sum()
    assert np.array_equal(fitted.label[kept], case.label[kept]) and (fitted.label[~kept] == IGNORE_LABEL).all()
    confident = {"c1": confident_voxels(prediction, 1.0)}  # a softmax never reaches 1
    (fitted,), _ = _loss_masked([case], [corrected], "confident", confident)
    assert np.array_equal(fitted.label == IGNORE_LABEL, ~reviewed)


def test_patches_are_not_centred_on_unreviewed_voxels():
    label = np.full((12, 12, 12), IGNORE_LABEL, np.uint8)
    label[1, 1, 1] = 1  # the one reviewed foreground voxel
    sampler = PatchSampler([Case("c", np.zeros(label.shape, np.float32), label, np.eye(4))], (4, 4, 4), 1.0)
    for _ in range(5):
        _, y = sampler.sample(1)
        assert (y == 1).any()  # every foreground-centred patch holds the reviewed foreground voxel
