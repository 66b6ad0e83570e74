"""Masksembles U-Net: one mask per training sample, every mask at inference in one tiled batch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from napari_uqseg.core.progress import Progress
from napari_uqseg.engine.layers.masksembles import MasksemblesLayer
from napari_uqseg.engine.methods.base import TrainingData, UQMethod, register
from napari_uqseg.engine.statistics import SampleStatistics, tile_samples
from napari_uqseg.engine.training import TrainConfig, fit_network, segmentation_loss
from napari_uqseg.engine.unet import UNet


@dataclass
class MasksemblesOptions:
    """``n_masks`` (N) and ``scale`` (S) as in the paper's examples (N=4, S=2); layers go where dropout
    would (bottleneck and decoder stages, the author's advice); ``encoder`` adds them to the encoder too.
    ``mask_head_input`` also masks the last decoder stage, the input of the 1x1 output convolution: off,
    because on a narrow last stage (16 channels) the network learned one channel per class there, and each
    sub-network whose mask dropped that channel never predicted the class (docs/results_fixed_budget.md).
    ``batched``: all masks in one tiled forward (activation memory N times one pass); ``False`` is the
    sequential reference, one mask per forward."""

    n_masks: int = 4
    scale: float = 2.0
    seed: int = 0
    encoder: bool = False
    mask_head_input: bool = False
    batched: bool = True


@register
class Masksembles(UQMethod):
    name = "masksembles"
    summary = "Masksembles: N fixed structured channel masks (N passes, batched)"
    Options = MasksemblesOptions

    def build(self) -> None:
        o = self.options
        net = UNet(self.net_config)
        counter = iter(range(1000))
        net.set_stage_layers(
            lambda ch: MasksemblesLayer(ch, o.n_masks, o.scale, o.seed + next(counter)), encoder=o.encoder
        )
        if not o.mask_head_input:
            net.decoder_layers[-1] = nn.Identity()
        self.nets["net"] = net

    def fit(self, data: TrainingData, cfg: TrainConfig, progress: Progress, work_dir: Path | None) -> dict:
        n = self.options.n_masks
        # chunk j of every batch goes through mask j: the batch size is rounded up to a multiple of N
        batch = -(-cfg.batch_size // n) * n
        cfg = TrainConfig.from_dict({**cfg.to_dict(), "batch_size": batch})
        net, loss = self.nets["net"], segmentation_loss()
        return {
            "net": fit_network(
                net,
                lambda x, y, _: loss(net(x), y),
                data.sampler(cfg),
                cfg,
                progress,
                work_dir=work_dir,
                validate=self.validator(data),
            )
        }

    def window_statistics(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        n, net = self.options.n_masks, self.nets["net"]
        stats = SampleStatistics()
        if not self.options.batched:
            layers = [m for m in net.modules() if isinstance(m, MasksemblesLayer)]
            try:
                for j in range(n):
                    for layer in layers:
                        layer.only = j
                    stats.add(self.probabilities(net(x)))
            finally:
                for layer in layers:
                    layer.only = None
            return stats.result()
        tiled = tile_samples(x, n)  # chunk j = all windows under mask j
        stats.add_tiled(self.probabilities(net(tiled)), n)
        return stats.result()

    def n_samples(self) -> int:
        return self.options.n_masks
