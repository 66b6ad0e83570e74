"""MC-Dropout samples with dropout only: normalisation layers stay in eval mode."""

import torch
from torch import nn

from napari_uqseg.engine.methods.base import method_class
from napari_uqseg.engine.unet import UNetConfig


def test_only_dropout_is_stochastic_at_inference():
    method = method_class("mc_dropout")(UNetConfig(channels=(4, 8, 16), norm="batch"), {"samples": 3, "rate": 0.5})
    method.patch_size = (16, 16, 16)
    method.eval()
    with torch.no_grad():
        stats = method.window_statistics(torch.randn(1, 1, 16, 16, 16))
    modules = list(method.nets.modules())
    dropouts = [m for m in modules if isinstance(m, nn.modules.dropout._DropoutNd)]
    norms = [m for m in modules if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert dropouts and norms
    assert all(m.training for m in dropouts)
    assert not any(m.training for m in norms), "batch-norm must use running statistics"
    assert stats["expected_entropy"].shape == (1, 1, 16, 16, 16)
    variance = stats["mean_sq_prob"] - stats["mean_prob"] ** 2
    assert float(variance.max()) > 1e-6, "samples differ, so dropout was active"


def test_batch_norm_running_stats_unchanged_by_sampling():
    method = method_class("mc_dropout")(UNetConfig(channels=(4, 8), norm="batch"), {"samples": 2})
    norm = next(m for m in method.nets.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))
    before = norm.running_mean.clone()
    method.window_statistics(torch.randn(2, 1, 8, 8, 8) * 5 + 3)
    assert torch.equal(norm.running_mean, before)
