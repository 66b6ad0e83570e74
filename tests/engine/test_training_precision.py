"""Mixed-precision training (``TrainConfig.precision``): bfloat16 convolutions, float32 weights and losses."""

import pytest
import torch
from torch import nn

from napari_uqseg.core.errors import InputError
from napari_uqseg.engine.augment import PatchAugmenter
from napari_uqseg.engine.data import PatchSampler, load_cases
from napari_uqseg.engine.precision import forward_precision
from napari_uqseg.engine.training import TrainConfig, fit_network, segmentation_loss
from napari_uqseg.engine.unet import UNet, UNetConfig


def _net() -> UNet:
    torch.manual_seed(0)
    return UNet(UNetConfig(channels=(4, 8), num_classes=3))


def _conv_dtypes(net: nn.Module, log: list) -> None:
    for m in net.modules():
        if isinstance(m, nn.Conv3d):
            m.register_forward_hook(lambda mod, args, out: log.append((mod.training, out.dtype)))


def test_bfloat16_training_and_validation_convolve_in_bfloat16_and_keep_float32_weights_and_augmentations(
    synthetic_dataset,
):
    cases = load_cases(synthetic_dataset, ["synth_001", "synth_002"])
    net, loss, log, checks = _net(), segmentation_loss(), [], []
    _conv_dtypes(net, log)
    cfg = TrainConfig(patch_size=(16, 16, 16), batch_size=2, iterations=10, val_every=5, precision="bfloat16")

    def validate() -> float:
        checks.append(net(torch.from_numpy(cases[0].image[None, None, :16, :16, :16])).dtype)
        return 0.5

    history = fit_network(
        net,
        lambda x, y, _: loss(net(x), y),
        PatchSampler(cases, (16, 16, 16), augment=PatchAugmenter.from_recipe("nnunet", 3)),
        cfg,
        validate=validate,
    )
    assert history["iterations"] == 10 and len(history["losses"]) == 1 and history["losses"][0] > 0
    assert {dtype for training, dtype in log if training} == {torch.bfloat16}
    assert checks == [torch.bfloat16, torch.bfloat16]  # the plateau checks run at the training precision
    assert all(p.dtype == torch.float32 for p in net.parameters())
    assert net(torch.zeros(1, 1, 16, 16, 16)).dtype == torch.float32  # outside training: float32 again


def test_bfloat16_loss_is_float32_and_its_gradient_points_where_the_float32_one_does(synthetic_dataset):
    cases = load_cases(synthetic_dataset, ["synth_001", "synth_002"])
    x, y = PatchSampler(cases, (16, 16, 16), seed=3).sample(2)
    grads = {}
    for precision in ("float32", "bfloat16"):
        net = _net()
        with forward_precision(precision, "cpu"):
            value = segmentation_loss()(net(x), y)
        assert value.dtype == torch.float32
        value.backward()
        grads[precision] = torch.cat([p.grad.flatten() for p in net.parameters()])
    cosine = torch.nn.functional.cosine_similarity(grads["float32"], grads["bfloat16"], dim=0)
    assert cosine > 0.99
    assert not torch.equal(grads["float32"], grads["bfloat16"])  # bfloat16 did run


def test_an_unknown_training_precision_is_named():
    with pytest.raises(InputError, match="precision"):
        TrainConfig(precision="half")
