"""Multi-headed variational U-Net, VI-MH (Fuchs, Gonzalez, Mukhopadhyay, MIDL 2022).

A deterministic U-Net base (encoder and the first decoder stages) is shared by ``H`` heads; each head
replaces the last ``split`` decoder stages and the output convolution with mean-field Gaussian
convolutions sampled by the local reparameterisation trick. Inference runs the base once per window
and each head ``S`` times.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from monai.networks.layers.utils import get_norm_layer
from torch import nn

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.progress import Progress
from napari_uqseg.engine.layers.lrt_conv import LRTConv, conv_macs
from napari_uqseg.engine.methods.base import TrainingData, UQMethod, register
from napari_uqseg.engine.statistics import SampleStatistics, sample_chunks, tile_samples
from napari_uqseg.engine.training import TrainConfig, fit_network, segmentation_loss
from napari_uqseg.engine.unet import UNet, UNetConfig


@dataclass
class VIMultiHeadOptions:
    """VI-MH options (official values and the reasons for ours: docs/methods.md, "VI-MH options").

    Attributes
    ----------
    heads : int
        ``H`` variational heads (official: 4).
    split : int
        Decoder stages, counted from the output, that each head owns; 1 = the last stage plus the output
        convolution (official ``BDec2``).
    samples : int
        ``S`` weight samples per head at inference, so ``H * S`` samples (official: 9).
    train_samples : int
        Samples per head and training step (official: 3).
    lam : float
        ``lambda`` in [0, 1]: weight of the loss of the mean head prediction against the mean per-head loss.
    temperature : float
        ``T`` scaling the KL term (a cold posterior for ``T < 1``).
    kl_normaliser : str
        ``"train_voxels"``: KL divided by the number of training voxels (an ELBO per voxel); ``"none"``: the
        raw sum (official).
    prior_sigma : float
        Prior ``N(0, prior_sigma^2)`` on head weights.
    sigma_init : float
        Initial posterior std.
    seed : int
        Head ``h`` is initialised with seed ``seed + 1000 h``.
    batch_samples : int
        Samples of one head drawn at once at inference, as one tiled batch (activation memory grows with it);
        0: all ``S`` on a GPU, one at a time on the CPU.
    validation_samples : int
        Samples per head in the plateau rule's validation Dice (``H * validation_samples`` in all).
    """

    heads: int = 4
    split: int = 1
    samples: int = 9
    train_samples: int = 3
    lam: float = 0.5
    temperature: float = 0.1
    kl_normaliser: str = "train_voxels"
    prior_sigma: float = 0.1
    sigma_init: float = 0.01
    seed: int = 0
    batch_samples: int = 0
    validation_samples: int = 1

    def __post_init__(self) -> None:
        if min(self.heads, self.samples, self.train_samples, self.split, self.validation_samples) < 1:
            raise InputError(
                "vi_multihead options", "heads, samples, train_samples, split and validation_samples must be >= 1"
            )
        if self.batch_samples < 0:
            raise InputError("vi_multihead batch_samples", f"must be >= 0, got {self.batch_samples}")
        if not 0.0 <= self.lam <= 1.0:
            raise InputError("vi_multihead lam", f"must be in [0, 1], got {self.lam}")
        if self.kl_normaliser not in ("train_voxels", "none"):
            raise InputError(
                "vi_multihead kl_normaliser", f"must be 'train_voxels' or 'none', got {self.kl_normaliser!r}"
            )


class BayesUpStage(nn.Module):
    """One U-Net decoder stage with variational convolutions: up-conv, concat skip, (conv-norm-lrelu) x 2."""

    def __init__(self, config: UNetConfig, in_ch: int, out_ch: int, prior_sigma: float, sigma_init: float) -> None:
        super().__init__()
        dims = config.spatial_dims
        kw = {"prior_sigma": prior_sigma, "sigma_init": sigma_init}
        self.up = LRTConv(dims, in_ch, out_ch, 2, stride=2, padding=0, transposed=True, **kw)
        self.conv1 = LRTConv(dims, 2 * out_ch, out_ch, 3, **kw)
        self.conv2 = LRTConv(dims, out_ch, out_ch, 3, **kw)
        self.norm1 = get_norm_layer(name=config.norm, spatial_dims=dims, channels=out_ch)
        self.norm2 = get_norm_layer(name=config.norm, spatial_dims=dims, channels=out_ch)
        self.act = nn.LeakyReLU(0.01)

    def forward(self, h: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.up(h), skip], dim=1)
        h = self.act(self.norm1(self.conv1(h)))
        return self.act(self.norm2(self.conv2(h)))


class VIHead(nn.Module):
    """The last ``split`` decoder stages and a variational 1x1 output convolution (logits, no norm:
    the official code's batch norm on logits is dropped)."""

    def __init__(self, config: UNetConfig, split: int, prior_sigma: float, sigma_init: float) -> None:
        super().__init__()
        ch = config.channels
        n_dec = len(ch) - 1
        # decoder stage j maps ch[n_dec - j] -> ch[n_dec - j - 1], as UNet.decoders
        self.stages = nn.ModuleList(
            BayesUpStage(config, ch[n_dec - j], ch[n_dec - j - 1], prior_sigma, sigma_init)
            for j in range(n_dec - split, n_dec)
        )
        self.out = LRTConv(
            config.spatial_dims, ch[0], config.num_classes, 1, prior_sigma=prior_sigma, sigma_init=sigma_init, bias=True
        )

    def forward(self, h: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        """``h``: base output; ``skips``: only the skips of this head's stages, deepest first."""
        for stage, skip in zip(self.stages, skips, strict=True):
            h = stage(h, skip)
        return self.out(h)

    def kl(self) -> torch.Tensor:
        return sum(m.kl() for m in self.modules() if isinstance(m, LRTConv))


def probability_loss(loss: nn.Module, prob: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Dice + CE of probabilities: ``softmax(log p) == p``, so the logits loss on ``log p`` is exact."""
    return loss(torch.log(prob.clamp_min(1e-8)), y)


@register
class VIMultiHead(UQMethod):
    name = "vi_multihead"
    summary = "VI-MH: shared U-Net base + H variational heads, S samples each (1 base + H*S head passes)"
    Options = VIMultiHeadOptions

    def build(self) -> None:
        o = self.options
        n_dec = len(self.net_config.channels) - 1
        if o.split > n_dec:
            raise InputError("vi_multihead split", f"the U-Net has {n_dec} decoder stages, got split={o.split}")
        with torch.random.fork_rng():
            torch.manual_seed(o.seed)
            base = UNet(self.net_config)
        # the base keeps the encoder and the first n_dec - split decoder stages; the heads own the rest
        base.decoders = base.decoders[: n_dec - o.split]
        base.decoder_layers = base.decoder_layers[: n_dec - o.split]
        base.head = nn.Identity()
        self.nets["base"] = base
        for h in range(o.heads):
            with torch.random.fork_rng():
                torch.manual_seed(o.seed + 1000 * (h + 1))
                self.nets[f"head_{h}"] = VIHead(self.net_config, o.split, o.prior_sigma, o.sigma_init)
        self._shares: tuple[float, float] | None = None

    def heads(self) -> list[VIHead]:
        return [self.nets[f"head_{h}"] for h in range(self.options.heads)]

    def base_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Base output and the skips the heads need (deepest first)."""
        base = self.nets["base"]
        h, skips = base.encode(x)
        h = base.decode(h, skips)
        return h, list(reversed(skips))[len(base.decoders) :]

    def kl(self) -> torch.Tensor:
        """KL of all heads' weights to the prior (nats)."""
        return sum(head.kl() for head in self.heads())

    def fit(self, data: TrainingData, cfg: TrainConfig, progress: Progress, work_dir: Path | None) -> dict:
        o = self.options
        loss = segmentation_loss()
        n_voxels = sum(int(np.prod(c.label.shape)) for c in data.train)
        kl_scale = o.temperature / (n_voxels if o.kl_normaliser == "train_voxels" else 1.0)
        s = o.train_samples

        def step_loss(x: torch.Tensor, y: torch.Tensor, _: int) -> torch.Tensor:
            h, skips = self.base_features(x)
            # the S samples of a head run as one batch: LRT noise is drawn per output element
            h, skips, ys = tile_samples(h, s), [tile_samples(k, s) for k in skips], tile_samples(y, s)
            logits = [head(h, skips) for head in self.heads()]
            head_term = sum(loss(z, ys) for z in logits) / len(logits)
            mean_prob = sum(torch.softmax(z.float(), dim=1) for z in logits) / len(logits)
            combined = probability_loss(loss, mean_prob, ys)
            return o.lam * combined + (1 - o.lam) * head_term + kl_scale * self.kl()

        for module in self.nets.modules():
            if isinstance(module, LRTConv):
                module.sample = True
        # why not all H * S samples: the pooled Dice hardly moves with S, and 36 samples per check cost a
        # quarter of the training time (docs/methods.md, "VI-MH options")
        validate = self.validator(data, lambda x: self.pooled_statistics(x, o.validation_samples)["mean_prob"])
        sampler = data.sampler(cfg)
        history = fit_network(self.nets, step_loss, sampler, cfg, progress, work_dir=work_dir, validate=validate)
        return {"net": history, "kl_scale": kl_scale}

    def window_statistics(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.pooled_statistics(x, self.options.samples)

    def pooled_statistics(self, x: torch.Tensor, samples: int) -> dict[str, torch.Tensor]:
        """Statistics of ``x`` ``(B, 1, *S)`` over ``samples`` weight samples of every head (``H * samples``)."""
        self.nets.eval()
        h, skips = self.base_features(x)  # once per window
        stats = SampleStatistics()
        chunk = self.options.batch_samples
        if chunk == 0:
            chunk = samples if self.device.type == "cuda" else 1
        for head in self.heads():
            for k in sample_chunks(samples, chunk):  # memory grows with the chunk, not with S
                stats.add_tiled(self.probabilities(head(tile_samples(h, k), [tile_samples(s, k) for s in skips])), k)
        return stats.result()

    def n_samples(self) -> int:
        return self.options.heads * self.options.samples

    def cost_shares(self) -> tuple[float, float]:
        """Convolution MACs of the base and of one head sample, each over a plain U-Net's forward pass
        (LRT convolutions count twice: mean and variance), measured once on a small input."""
        if self._shares is None:
            cfg = self.net_config
            x = torch.zeros((1, cfg.in_channels) + (2 * cfg.divisor,) * cfg.spatial_dims)
            with torch.no_grad():
                full = sum(conv_macs(UNet(cfg), x).values())  # a reference U-Net, on the CPU
                x = x.to(next(self.nets.parameters()).device)
                h, skips = self.base_features(x)
                base = sum(conv_macs(self.nets["base"], x).values())
                head = sum(conv_macs(self.heads()[0], h, skips).values())
            self._shares = (base / full, head / full)
        return self._shares

    def forward_passes(self) -> float:
        """``base_share + H * S * head_share`` (see ``cost_shares``); the base runs once per window."""
        base, head = self.cost_shares()
        return base + self.n_samples() * head

    def extra_state(self) -> dict:
        base, head = self.cost_shares()
        return {"base_share": base, "head_share": head}
