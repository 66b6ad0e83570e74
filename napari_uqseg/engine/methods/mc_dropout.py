"""MC-Dropout (Gal & Ghahramani 2016): dropout kept on at inference, normalisation in eval mode."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.progress import Progress
from napari_uqseg.engine.methods.base import TrainingData, UQMethod, register
from napari_uqseg.engine.statistics import SampleStatistics, sample_chunks, tile_samples
from napari_uqseg.engine.training import TrainConfig, fit_network, segmentation_loss
from napari_uqseg.engine.unet import UNet

#: most window voxels (windows x samples x voxels per window) in one decoder forward
BATCH_VOXELS = 1 << 21


@dataclass
class MCDropoutOptions:
    """``rate``: dropout probability after the bottleneck and decoder stages; ``samples``: T passes.

    Fast paths (``batch_samples=1, share_encoder=False`` is the plain reference loop):
    ``batch_samples``: samples drawn in one forward along the batch dimension (activation memory grows
    with it, not with ``samples``), at most :data:`BATCH_VOXELS` window voxels per forward (a 128^3
    window draws one sample at a time: batching gains nothing there and doubles the decoder's memory);
    ``share_encoder``: run the dropout-free encoder once per window and sample only the bottleneck
    dropout and the decoder (same random draws as the plain loop).
    """

    rate: float = 0.2
    samples: int = 10
    batch_samples: int = 2
    share_encoder: bool = True

    def __post_init__(self) -> None:
        if self.samples < 1 or self.batch_samples < 1:
            raise InputError(
                "mc_dropout options",
                f"samples and batch_samples must be >= 1, got {self.samples}, {self.batch_samples}",
            )


def encoder_without_dropout(net: UNet, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Bottleneck features before its dropout layer, and the skips; valid when dropout sits only
    after the bottleneck and the decoder stages (``dropout_where="decoder"``)."""
    skips = []
    for block, layer in zip(net.encoders[:-1], net.encoder_layers[:-1], strict=True):
        x = layer(block(x))
        skips.append(x)
    return net.encoders[-1](x), skips


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
        return {
            "net": fit_network(
                net,
                lambda x, y, _: loss(net(x), y),
                data.sampler(cfg),
                cfg,
                progress,
                work_dir=work_dir,
                validate=self.net_validator(data, net),  # dropout off: one pass
            )
        }

    def window_statistics(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        net, o = self.nets["net"], self.options
        enable_dropout_only(net)
        stats = SampleStatistics()
        shared = o.share_encoder and net.config.dropout_where == "decoder"
        if shared:
            h, skips = encoder_without_dropout(net, x)
        fits = max(1, BATCH_VOXELS // x[0, 0].numel() // x.shape[0])
        for k in sample_chunks(o.samples, min(o.batch_samples, fits)):
            if shared:
                h_k = net.encoder_layers[-1](tile_samples(h, k))  # the bottleneck dropout draws k masks at once
                logits = net.head(net.decode(h_k, [tile_samples(s, k) for s in skips]))
            else:
                logits = net(tile_samples(x, k))
            stats.add_tiled(self.probabilities(logits), k)
        return stats.result()

    def n_samples(self) -> int:
        return self.options.samples
