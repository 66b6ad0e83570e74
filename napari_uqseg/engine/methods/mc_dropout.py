"""MC-Dropout (Gal & Ghahramani 2016): dropout kept on at inference, normalisation in eval mode."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from napari_uqseg.core.progress import Progress
from napari_uqseg.engine.methods.base import TrainingData, UQMethod, register
from napari_uqseg.engine.statistics import SampleStatistics
from napari_uqseg.engine.training import TrainConfig, fit_network, segmentation_loss
from napari_uqseg.engine.unet import UNet


@dataclass
class MCDropoutOptions:
    """``rate``: dropout probability after the bottleneck and decoder stages; ``samples``: T passes."""

    rate: float = 0.2
    samples: int = 10


def enable_dropout_only(net: nn.Module) -> None:
    """Put the network in eval mode, then only its dropout modules back in training mode."""
    net.eval()
    for module in net.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.train()


@register
class MCDropout(UQMethod):
    name = "mc_dropout"
    summary = "MC-Dropout: T stochastic passes with dropout on (T passes)"
    Options = MCDropoutOptions

    def build(self) -> None:
        self.nets["net"] = UNet(replace(self.net_config, dropout=self.options.rate))

    def fit(self, data: TrainingData, cfg: TrainConfig, progress: Progress, work_dir: Path | None) -> dict:
        net, loss = self.nets["net"], segmentation_loss()
        return {"net": fit_network(net, lambda x, y, _: loss(net(x), y), data.sampler(cfg), cfg, progress, work_dir=work_dir)}

    def window_statistics(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        net = self.nets["net"]
        enable_dropout_only(net)
        stats = SampleStatistics()
        for _ in range(self.options.samples):
            stats.add(torch.softmax(net(x), dim=1))
        return stats.result()

    def n_samples(self) -> int:
        return self.options.samples
