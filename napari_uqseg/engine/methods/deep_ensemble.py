"""Deep ensemble (Lakshminarayanan et al. 2017): M independently initialised and shuffled U-Nets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from napari_uqseg.core.progress import Progress
from napari_uqseg.engine.methods.base import TrainingData, UQMethod, register
from napari_uqseg.engine.statistics import SampleStatistics
from napari_uqseg.engine.training import TrainConfig, fit_network, segmentation_loss
from napari_uqseg.engine.unet import UNet


@dataclass
class DeepEnsembleOptions:
    """``members``: M networks, each with its own initialisation seed and patch order."""

    members: int = 5
    seed: int = 0


@register
class DeepEnsemble(UQMethod):
    name = "deep_ensemble"
    summary = "deep ensemble of M independently trained U-Nets (M passes)"
    Options = DeepEnsembleOptions

    def build(self) -> None:
        for k in range(self.options.members):
            with torch.random.fork_rng():
                torch.manual_seed(self.options.seed + 1000 * k)
                self.nets[f"member_{k}"] = UNet(self.net_config)

    def members(self) -> list[torch.nn.Module]:
        return [self.nets[f"member_{k}"] for k in range(self.options.members)]

    def fit(self, data: TrainingData, cfg: TrainConfig, progress: Progress, work_dir: Path | None) -> dict:
        loss = segmentation_loss()
        histories = {}
        for k, net in enumerate(self.members()):
            histories[f"member_{k}"] = fit_network(
                net,
                lambda x, y, _, net=net: loss(net(x), y),
                data.sampler(cfg, seed_offset=1000 * k),
                cfg,
                progress,
                tag=f"member_{k}",
                work_dir=work_dir,
            )
        return histories

    def window_statistics(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        stats = SampleStatistics()
        for net in self.members():
            stats.add(torch.softmax(net(x), dim=1))
        return stats.result()

    def n_samples(self) -> int:
        return self.options.members
