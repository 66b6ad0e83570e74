"""Sparse partial Bayesian U-Net (Abboud, Lombaert, Kadoury, MICCAI 2024): gradient saliency picks the
1 % of weights that become Gaussian; everything else stays a point estimate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.progress import Progress
from napari_uqseg.engine.checkpoint import atomic_torch_save
from napari_uqseg.engine.data import PatchSampler
from napari_uqseg.engine.layers.lrt_conv import conv_macs
from napari_uqseg.engine.layers.partial_gaussian import PartialGaussian, partial_layers, wrap_convolutions
from napari_uqseg.engine.methods.base import TrainingData, UQMethod, register
from napari_uqseg.engine.statistics import SampleStatistics, tile_samples
from napari_uqseg.engine.training import TrainConfig, fit_network, segmentation_loss
from napari_uqseg.engine.unet import UNet

SALIENCY_MODES = ("square_of_sum", "sum_of_squares")
KL_REDUCTIONS = ("mean", "elbo")


@dataclass
class PartialBayesOptions:
    """Partial-Bayes options.

    Attributes
    ----------
    r_bayes : float
        Share of the ranked parameters (all convolution weights; biases and norm parameters stay
        deterministic, as the official code excludes norm layers) made Bayesian (paper: 1 %).
    saliency : str
        ``"square_of_sum"``: ``(sum_b dL_b/dw)^2`` over the saliency batches (official code);
        ``"sum_of_squares"``: ``sum_b (dL_b/dw)^2`` (a diagonal Fisher, where opposite-sign gradients
        do not cancel).
    saliency_batches : int
        Batches of the saliency pass; 0: one patch per training case (the official one pass over the
        training set).
    deterministic_fraction : float
        Share of ``train.iterations`` for deterministic pre-training; the rest fine-tunes the partial BNN.
    samples : int
        ``S`` weight samples per training step and per prediction (paper: 5).
    beta_start, beta_end : float
        KL weight annealed linearly over the fine-tuning steps (paper and ISIC config: 0.2 -> 0.01).
    kl_reduction : str
        ``"mean"``: per-layer mean KL over its Bayesian entries, summed over layers (official);
        ``"elbo"``: KL summed over all Bayesian entries divided by the training voxels (per-voxel ELBO).
    prior_sigma : float
        Prior ``N(0, prior_sigma^2)`` (official: 1.0).
    rho_init_mean, rho_init_std : float
        ``rho ~ N(mean, std)``, ``sigma = softplus(rho)`` (official: N(-3, 1), median sigma 0.049).
    seed : int
        Seed of the ``rho`` initialisation.
    batched : bool
        Inference runs the ``S`` samples after the shared prefix as one ``S``-times tiled batch, each
        Bayesian layer drawing its ``S`` weights into one grouped convolution (activation memory ``S``
        times one sample's); ``False``: one sample at a time. Both consume the same random numbers.
    from_model : str or None
        Folder of a trained model whose U-Net ``from_net`` is step 1 (the deterministic model): its weights
        become the means and only the saliency and Bayesian phases train. ``None``: pre-train here.
    from_net : str
        Network of ``from_model`` to start from: ``"net"`` (deterministic) or ``"member_<k>"`` (deep ensemble).
    """

    r_bayes: float = 0.01
    saliency: str = "square_of_sum"
    saliency_batches: int = 0
    deterministic_fraction: float = 0.75
    samples: int = 5
    beta_start: float = 0.2
    beta_end: float = 0.01
    kl_reduction: str = "mean"
    prior_sigma: float = 1.0
    rho_init_mean: float = -3.0
    rho_init_std: float = 1.0
    seed: int = 0
    batched: bool = True
    from_model: str | None = None
    from_net: str = "net"

    def __post_init__(self) -> None:
        if self.saliency not in SALIENCY_MODES:
            raise InputError("partial_bayes saliency", f"must be one of {SALIENCY_MODES}, got {self.saliency!r}")
        if self.kl_reduction not in KL_REDUCTIONS:
            raise InputError("partial_bayes kl_reduction", f"must be one of {KL_REDUCTIONS}, got {self.kl_reduction!r}")
        if not 0.0 < self.r_bayes <= 1.0 or not 0.0 < self.deterministic_fraction < 1.0 or self.samples < 1:
            raise InputError(
                "partial_bayes options", "need 0 < r_bayes <= 1, 0 < deterministic_fraction < 1, samples >= 1"
            )


# -- saliency and selection -------------------------------------------------------------------
def gradient_saliency(
    net: nn.Module, layers: list[PartialGaussian], sampler: PatchSampler, batches: int, batch_size: int, mode: str
) -> list[torch.Tensor]:
    """Saliency of every weight of ``layers`` (same shapes as the weights), from ``batches`` training batches."""
    loss = segmentation_loss()
    weights = [layer.conv.weight for layer in layers]
    acc = [torch.zeros_like(w) for w in weights]
    device = weights[0].device
    net.train()
    for _ in range(batches):
        x, y = sampler.sample(batch_size)
        grads = torch.autograd.grad(loss(net(x.to(device)), y.to(device)), weights)
        for a, g in zip(acc, grads, strict=True):
            a += g if mode == "square_of_sum" else g * g
    return [a * a for a in acc] if mode == "square_of_sum" else acc


def select_top_k(saliencies: list[torch.Tensor], k: int) -> list[torch.Tensor]:
    """Flat indices, per layer, of the global top ``k`` entries: exactly ``k`` in total; ties go to the
    earlier entry (layer order, then flat position), so the choice is deterministic."""
    flat = torch.cat([s.detach().flatten().double().cpu() for s in saliencies])
    chosen = torch.sort(flat, descending=True, stable=True).indices[:k]
    out, start = [], 0
    for s in saliencies:
        end = start + s.numel()
        out.append(torch.sort(chosen[(chosen >= start) & (chosen < end)] - start).values)
        start = end
    return out


# -- stage walk (the U-Net's own order) --------------------------------------------------------
@register
class PartialBayes(UQMethod):
    name = "partial_bayes"
    summary = "sparse partial BNN: top-1% salient weights Gaussian, S samples after a shared prefix (<= S passes)"
    Options = PartialBayesOptions

    def build(self) -> None:
        net = UNet(self.net_config)
        wrap_convolutions(net)
        self.nets["net"] = net

    def layers(self) -> list[PartialGaussian]:
        return list(partial_layers(self.nets["net"]))

    def bayesian_parameters(self) -> int:
        return sum(layer.bayesian_count for layer in self.layers())

    def ranked_parameters(self) -> int:
        return sum(layer.conv.weight.numel() for layer in self.layers())

    def first_bayesian_stage(self) -> int:
        """Index (``UNet.stages`` order) of the first stage with a Bayesian weight; the stage count if none."""
        stages = self.nets["net"].stages()
        for k, stage in enumerate(stages):
            if any(layer.bayesian_count for layer in partial_layers(stage)):
                return k
        return len(stages)

    # -- training -----------------------------------------------------------------------------
    def fit(self, data: TrainingData, cfg: TrainConfig, progress: Progress, work_dir: Path | None) -> dict:
        o = self.options
        if cfg.iterations < 2:
            raise InputError(
                "train.iterations", "partial_bayes needs >= 2 iterations (deterministic + Bayesian phases)"
            )
        net, loss = self.nets["net"], segmentation_loss()
        n_det = min(cfg.iterations - 1, max(1, round(o.deterministic_fraction * cfg.iterations)))
        n_bayes = cfg.iterations - n_det
        if o.from_model:
            history = {"deterministic": self._start_from(o.from_model, o.from_net, data, cfg)}
        else:
            history = {
                "deterministic": fit_network(
                    net,
                    lambda x, y, _: loss(net(x), y),
                    data.sampler(cfg),
                    cfg,
                    progress,
                    tag="deterministic",
                    work_dir=work_dir,
                    iterations=n_det,
                    validate=self.net_validator(data, net),
                )
            }
        selection = self._select(data, cfg, progress, work_dir)
        n_voxels = sum(int(np.prod(c.label.shape)) for c in data.train)

        def step_loss(x: torch.Tensor, y: torch.Tensor, it: int) -> torch.Tensor:
            beta = o.beta_start + (o.beta_end - o.beta_start) * it / max(1, n_bayes - 1)
            data_term = sum(loss(z, y) for z in self.sample_logits(x, o.samples)) / o.samples
            return data_term + beta * self.kl(n_voxels)

        history["bayesian"] = fit_network(
            net,
            step_loss,
            data.sampler(cfg, seed_offset=1),
            cfg,
            progress,
            tag="bayesian",
            work_dir=work_dir,
            iterations=n_bayes,
            validate=self.validator(data),
        )
        return {**history, **selection}

    def _start_from(self, folder: str, net_key: str, data: TrainingData, cfg: TrainConfig) -> dict:
        """Step 1 from a trained model: copy its plain U-Net ``net_key`` into this network; returns its source."""
        from napari_uqseg.engine.model_folder import trained_unet  # the store imports the method registry

        start, source = trained_unet(folder, net_key, self.net_config, cfg.normalisation, data.val)
        wrap_convolutions(start)  # a private copy: wrapping it in place is harmless
        self.nets["net"].load_state_dict(start.state_dict())
        return source

    def _select(self, data: TrainingData, cfg: TrainConfig, progress: Progress, work_dir: Path | None) -> dict:
        """Saliency, global top-k and ``rho`` initialisation; saved in ``work_dir`` so a resumed run reuses it."""
        o = self.options
        layers = self.layers()
        path = Path(work_dir) / "partial_bayes.selection.pt" if work_dir else None
        if path is not None and path.exists():
            chosen = torch.load(path, weights_only=True)["index"]
        else:
            batches = o.saliency_batches or -(-len(data.train) // cfg.batch_size)
            progress(0, 1, f"gradient saliency over {batches} batches")
            sampler = data.sampler(cfg, seed_offset=2)
            saliency = gradient_saliency(self.nets["net"], layers, sampler, batches, cfg.batch_size, o.saliency)
            k = max(1, int(o.r_bayes * self.ranked_parameters()))
            chosen = select_top_k(saliency, k)
            if path is not None:
                atomic_torch_save({"index": chosen}, path)
        generator = torch.Generator().manual_seed(o.seed)
        for layer, index in zip(layers, chosen, strict=True):
            rho = o.rho_init_mean + o.rho_init_std * torch.randn(index.numel(), generator=generator)
            layer.set_bayesian(index, rho)
        return {"bayesian_parameters": self.bayesian_parameters(), "ranked_parameters": self.ranked_parameters()}

    def kl(self, n_voxels: int) -> torch.Tensor:
        """KL of the Bayesian weights to the prior, reduced as ``kl_reduction`` says."""
        terms = [layer.kl(self.options.prior_sigma) for layer in self.layers() if layer.bayesian_count]
        if not terms:
            return torch.zeros((), device=self.device)
        if self.options.kl_reduction == "mean":
            return sum(t.mean() for t in terms)
        return sum(t.sum() for t in terms) / n_voxels

    # -- sampling -----------------------------------------------------------------------------
    def sample_logits(self, x: torch.Tensor, samples: int):
        """Yield ``samples`` logits ``(B, C, *S)``; the stages before the first Bayesian weight run once."""
        net = self.nets["net"]
        n_stages = len(net.stages())
        first = self.first_bayesian_stage()
        h, skips = net.run_stages(x, [], 0, first)
        if first == n_stages:  # nothing Bayesian: every sample is the same
            for _ in range(samples):
                yield h
            return
        for _ in range(samples):
            yield net.run_stages(h, skips, first, n_stages)[0]

    def window_statistics(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.nets.eval()  # weight noise is independent of train/eval mode: norm layers use eval behaviour
        net, samples = self.nets["net"], self.options.samples
        n_stages, first = len(net.stages()), self.first_bayesian_stage()
        h, skips = net.run_stages(x, [], 0, first)
        stats = SampleStatistics()
        if first == n_stages:  # nothing Bayesian: every sample is the same
            for _ in range(samples):
                stats.add(self.probabilities(h))
            return stats.result()
        layers = [layer for layer in self.layers() if layer.bayesian_count]
        # every draw up front, layer by layer, so both paths consume the same random numbers
        noise = [torch.randn(samples, layer.bayesian_count, device=x.device) for layer in layers]
        try:
            if self.options.batched and not torch.is_grad_enabled():
                for layer, eps in zip(layers, noise, strict=True):
                    layer.noise = eps
                tiled = [tile_samples(t, samples) for t in (h, *skips)]
                logits = net.run_stages(tiled[0], tiled[1:], first, n_stages)[0]
                stats.add_tiled(self.probabilities(logits), samples)
                return stats.result()
            for k in range(samples):
                for layer, eps in zip(layers, noise, strict=True):
                    layer.noise = eps[k : k + 1]
                stats.add(self.probabilities(net.run_stages(h, skips, first, n_stages)[0]))
            return stats.result()
        finally:
            for layer in layers:
                layer.noise = None

    def n_samples(self) -> int:
        return self.options.samples

    def prefix_share(self) -> float:
        """Convolution MACs of the stages before the first Bayesian weight over the whole network's."""
        net, cfg = self.nets["net"], self.net_config
        x = torch.zeros((1, cfg.in_channels) + (2 * cfg.divisor,) * cfg.spatial_dims, device=self.device)
        counts = conv_macs(net, x)
        stages = net.stages()
        per_stage = [sum(counts.get(m, 0.0) for m in stage.modules()) for stage in stages]
        return sum(per_stage[: self.first_bayesian_stage()]) / sum(per_stage)

    def forward_passes(self) -> float:
        """``prefix_share + S * (1 - prefix_share)``; an untrained model (nothing Bayesian yet) reports S."""
        if self.bayesian_parameters() == 0:
            return float(self.options.samples)
        share = self.prefix_share()
        return share + self.options.samples * (1.0 - share)

    def extra_state(self) -> dict[str, Any]:
        k, total = self.bayesian_parameters(), self.ranked_parameters()
        stages = self.nets["net"].stages()
        first = self.first_bayesian_stage()
        return {
            "bayesian_parameters": k,
            "ranked_parameters": total,
            "bayesian_share": k / total,
            "first_bayesian_stage": _stage_name(first, len(self.nets["net"].encoders), len(stages)),
            "forward_passes": self.forward_passes(),
        }


def _stage_name(k: int, n_enc: int, n_stages: int) -> str:
    if k >= n_stages:
        return "none"
    if k < n_enc:
        return f"encoder_{k}"
    return f"decoder_{k - n_enc}" if k < n_stages - 1 else "head"
