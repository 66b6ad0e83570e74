"""Partially Bayesian convolutions: a chosen subset of a layer's weights is Gaussian, the rest point estimates."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from napari_uqseg.engine.layers.lrt_conv import gaussian_kl

#: the layer types ``wrap_convolutions`` replaces (plain and transposed, 2-D and 3-D)
CONV_TYPES = (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)


class PartialGaussian(nn.Module):
    """Wrap a convolution so that the flat weight entries ``index`` are ``N(weight, softplus(rho)^2)``.

    The wrapped layer keeps its ``weight`` Parameter, which is the mean of the Bayesian entries and
    the point estimate of the others. ``index`` (persistent buffer, int64, sorted flat positions) and
    ``rho`` (one entry per Bayesian weight) define the posterior; both are empty until
    ``set_bayesian``. A forward pass draws one weight sample for the whole batch,
    ``w = weight + scatter(index, softplus(rho) * eps)``; gradients are dense. Setting ``noise`` to
    ``S`` draws runs ``S`` weight samples over an ``S``-times tiled batch in one grouped convolution.

    Parameters
    ----------
    conv : nn.Module
        ``nn.Conv2d/3d`` or ``nn.ConvTranspose2d/3d``.
    """

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        if not isinstance(conv, CONV_TYPES):
            raise TypeError(f"PartialGaussian wraps convolutions, got {type(conv).__name__}")
        self.conv = conv
        self.register_buffer("index", torch.zeros(0, dtype=torch.long))
        self.rho = nn.Parameter(torch.zeros(0))
        self.sample = True
        self.noise: torch.Tensor | None = None  # (S, k) draws for the next forwards; None: one fresh draw each

    @property
    def bayesian_count(self) -> int:
        return int(self.index.numel())

    @property
    def sigma(self) -> torch.Tensor:
        return F.softplus(self.rho)

    def set_bayesian(self, index: torch.Tensor, rho: torch.Tensor) -> None:
        """Make the flat weight entries ``index`` Gaussian with initial ``rho`` (same length)."""
        index = index.to(torch.long).flatten()
        if index.numel() != rho.numel():
            raise ValueError("index and rho need the same length")
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= self.conv.weight.numel()):
            raise ValueError("index out of the weight's range")
        device = self.conv.weight.device
        self.index = torch.sort(index).values.to(device)
        order = torch.argsort(index)
        self.rho = nn.Parameter(rho.flatten()[order].to(device=device, dtype=self.conv.weight.dtype))

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        # the Bayesian set is chosen after construction: take its size from the saved state
        index, rho = state_dict.get(prefix + "index"), state_dict.get(prefix + "rho")
        if index is not None and rho is not None and index.shape != self.index.shape:
            self.set_bayesian(index, rho.detach())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def weight_samples(self, eps: torch.Tensor) -> torch.Tensor:
        """Weights ``(S, *weight.shape)`` for standard-normal draws ``eps`` ``(S, k)`` of the Bayesian entries."""
        weight = self.conv.weight
        flat = weight.reshape(1, -1).repeat(eps.shape[0], 1)
        flat[:, self.index] += self.sigma * eps
        return flat.view(eps.shape[0], *weight.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, C_in, *S)``; with ``noise`` of ``S > 1`` draws set, ``x`` is ``(S * B, C_in, *S)``
        sample-major and sample ``s`` of the batch goes through weight draw ``s``."""
        if not self.sample or self.index.numel() == 0:
            return self.conv(x)
        eps = self.noise if self.noise is not None else torch.randn((1, self.bayesian_count), device=x.device)
        weights = self.weight_samples(eps.to(self.rho.dtype))
        if weights.shape[0] == 1:
            return functional_call(self.conv, {"weight": weights[0]}, (x,))
        return self._grouped(x, weights)

    def _grouped(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """All ``S`` weight draws in one grouped convolution (the batch is sample-major)."""
        conv, samples = self.conv, weights.shape[0]
        if conv.padding_mode != "zeros":
            raise ValueError("batched weight samples need zero padding")
        batch = x.shape[0] // samples
        spatial = x.shape[2:]
        # (S*B, C, *S) -> (B, S*C, *S): a view when B == 1, the sliding window's usual case
        xs = x.view(samples, batch, -1, *spatial).transpose(0, 1).reshape(batch, -1, *spatial)
        w = weights.reshape(-1, *weights.shape[2:])
        bias = None if conv.bias is None else conv.bias.repeat(samples)
        groups = samples * conv.groups
        dims = len(spatial)
        if isinstance(conv, nn.ConvTranspose2d | nn.ConvTranspose3d):
            op = F.conv_transpose3d if dims == 3 else F.conv_transpose2d
            out = op(xs, w, bias, conv.stride, conv.padding, conv.output_padding, groups, conv.dilation)
        else:
            op = F.conv3d if dims == 3 else F.conv2d
            out = op(xs, w, bias, conv.stride, conv.padding, conv.dilation, groups)
        return out.view(batch, samples, -1, *out.shape[2:]).transpose(0, 1).reshape(x.shape[0], -1, *out.shape[2:])

    def kl(self, prior_sigma: float) -> torch.Tensor:
        """Per-entry ``KL(q || N(0, prior_sigma^2))`` of the Bayesian weights, ``(k,)`` nats."""
        mu = self.conv.weight.flatten()[self.index]
        return gaussian_kl(mu, self.sigma, prior_sigma)

    def extra_repr(self) -> str:
        return f"bayesian={self.bayesian_count}/{self.conv.weight.numel()}"


def wrap_convolutions(module: nn.Module) -> list[PartialGaussian]:
    """Replace every convolution inside ``module`` (MONAI blocks included) by a ``PartialGaussian``
    wrapper in place; returns the wrappers in module order."""
    for parent in list(module.modules()):
        if isinstance(parent, PartialGaussian):
            continue
        for name, child in list(parent.named_children()):
            if isinstance(child, CONV_TYPES):
                setattr(parent, name, PartialGaussian(child))
    return list(partial_layers(module))


def partial_layers(module: nn.Module) -> Iterator[PartialGaussian]:
    """The ``PartialGaussian`` layers of ``module`` in module order."""
    return (m for m in module.modules() if isinstance(m, PartialGaussian))
