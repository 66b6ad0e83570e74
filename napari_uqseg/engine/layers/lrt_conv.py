"""Mean-field Gaussian convolutions with the local reparameterisation trick (Kingma et al. 2015), and a
multiply-accumulate counter used to express partial networks as a share of a full forward pass."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from napari_uqseg.core.errors import InputError

_CONV = {(2, False): F.conv2d, (3, False): F.conv3d, (2, True): F.conv_transpose2d, (3, True): F.conv_transpose3d}


def inverse_softplus(sigma: float) -> float:
    """``rho`` with ``softplus(rho) == sigma``."""
    return sigma + math.log(-math.expm1(-sigma))


def gaussian_kl(mu: torch.Tensor, sigma: torch.Tensor, prior_sigma: float) -> torch.Tensor:
    """Closed-form ``KL(N(mu, sigma^2) || N(0, prior_sigma^2))`` per entry (nats), same shape as ``mu``."""
    return torch.log(prior_sigma / sigma) + (sigma**2 + mu**2) / (2 * prior_sigma**2) - 0.5


class LRTConv(nn.Module):
    """2-D/3-D (transposed) convolution with weights ``w ~ N(mu, softplus(rho)^2)``, factorised.

    With ``sample=True`` the output is drawn with the local reparameterisation trick: per output
    element ``a = conv(x, mu) + sqrt(conv(x^2, sigma^2)) * eps``, ``eps ~ N(0, 1)``, which is exact for
    a factorised Gaussian and has lower-variance gradients than sampling weights. ``sample=False``
    returns the mean output ``conv(x, mu)``. The bias, if any, is a point estimate.

    Parameters
    ----------
    spatial_dims : int
        2 or 3.
    in_channels, out_channels, kernel_size : int
        Convolution shape (cubic kernels).
    stride, padding : int
        As ``nn.ConvNd`` (``padding`` defaults to ``kernel_size // 2``, "same" for odd kernels).
    transposed : bool
        A transposed convolution (up-sampling), weight ``(in, out, *k)``.
    prior_sigma : float
        Prior ``N(0, prior_sigma^2)`` of every weight (VI-MH: 0.1).
    sigma_init : float
        Initial posterior standard deviation of every weight.
    bias : bool
        Add a deterministic bias.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int | None = None,
        transposed: bool = False,
        prior_sigma: float = 0.1,
        sigma_init: float = 0.01,
        bias: bool = False,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise InputError("spatial_dims", f"must be 2 or 3, got {spatial_dims}")
        if prior_sigma <= 0 or sigma_init <= 0:
            raise InputError("prior_sigma/sigma_init", "standard deviations must be > 0")
        self.conv = _CONV[(spatial_dims, transposed)]
        self.transposed = transposed
        self.stride = stride
        self.padding = kernel_size // 2 if padding is None else padding
        self.prior_sigma = float(prior_sigma)
        self.sample = True
        shape = (in_channels, out_channels) if transposed else (out_channels, in_channels)
        shape += (kernel_size,) * spatial_dims
        self.mu = nn.Parameter(torch.empty(shape))
        # the official code starts mu at 0, leaving symmetry to the noise; a He init starts from a working conv
        nn.init.kaiming_uniform_(self.mu, a=math.sqrt(5))
        self.rho = nn.Parameter(torch.full(shape, inverse_softplus(sigma_init)))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    @property
    def sigma(self) -> torch.Tensor:
        return F.softplus(self.rho)

    def _apply_conv(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return self.conv(x, weight, bias, stride=self.stride, padding=self.padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = self._apply_conv(x, self.mu, self.bias)
        if not self.sample:
            return mean
        var = self._apply_conv(x * x, self.sigma**2, None)
        # clamp: sqrt has an infinite gradient at 0 (e.g. zero-padded borders)
        return mean + torch.sqrt(var.clamp_min(1e-16)) * torch.randn_like(mean)

    def kl(self) -> torch.Tensor:
        """``KL(q || prior)`` summed over all weights (nats, scalar)."""
        return gaussian_kl(self.mu, self.sigma, self.prior_sigma).sum()

    def extra_repr(self) -> str:
        return f"mu={tuple(self.mu.shape)}, transposed={self.transposed}, prior_sigma={self.prior_sigma}"


def conv_macs(module: nn.Module, *inputs: torch.Tensor) -> dict[nn.Module, float]:
    """Multiply-accumulates of every convolution in ``module`` for one forward pass on ``inputs``.

    Only convolutions are counted (they dominate a U-Net); an ``LRTConv`` in sampling mode counts
    twice (mean and variance convolutions). Returns ``{conv module: MACs}``; sum the entries of a
    sub-network to get its share. MACs scale with voxels, so a small input gives the same ratios.
    """
    counts: dict[nn.Module, float] = {}

    def hook(mod: nn.Module, args: tuple, out: torch.Tensor) -> None:
        weight = mod.mu if isinstance(mod, LRTConv) else mod.weight
        factor = 2 if isinstance(mod, LRTConv) and mod.sample else 1
        # weight[0] holds one output's (or, transposed, one input's) fan: in/groups (out/groups) x kernel
        elements = args[0].numel() if mod.transposed else out.numel()
        counts[mod] = counts.get(mod, 0.0) + factor * elements * weight[0].numel()

    handles = [
        m.register_forward_hook(hook) for m in module.modules() if isinstance(m, LRTConv | nn.modules.conv._ConvNd)
    ]
    try:
        with torch.no_grad():
            module(*inputs)
    finally:
        for h in handles:
            h.remove()
    return counts
