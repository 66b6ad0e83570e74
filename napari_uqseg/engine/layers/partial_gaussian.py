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
    ``w = weight + scatter(index, softplus(rho) * eps)``; gradients are dense.

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

    def weight_sample(self) -> torch.Tensor:
        """One weight draw (the mean weight when ``sample`` is off or nothing is Bayesian)."""
        weight = self.conv.weight
        if not self.sample or self.index.numel() == 0:
            return weight
        noise = self.sigma * torch.randn_like(self.rho)
        return weight + torch.zeros(weight.numel(), device=weight.device, dtype=weight.dtype).index_put(
            (self.index,), noise
        ).view_as(weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.sample or self.index.numel() == 0:
            return self.conv(x)
        return functional_call(self.conv, {"weight": self.weight_sample()}, (x,))

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
