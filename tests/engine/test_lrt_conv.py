"""LRT convolution: closed-form KL, the sampled output's moments, MAC counting."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal, kl_divergence

from napari_uqseg.engine.layers.lrt_conv import LRTConv, conv_macs, inverse_softplus


def test_kl_matches_torch_distributions():
    torch.manual_seed(0)
    layer = LRTConv(3, 3, 5, 3, prior_sigma=0.1, sigma_init=0.02)
    with torch.no_grad():
        layer.rho.add_(torch.randn_like(layer.rho))  # sigmas spread around the init
    expected = kl_divergence(Normal(layer.mu, layer.sigma), Normal(0.0, 0.1)).sum()
    assert float(layer.kl()) == pytest.approx(float(expected), rel=1e-5)
    assert float(layer.kl()) > 0


def test_kl_is_zero_at_the_prior():
    layer = LRTConv(2, 2, 2, 3, prior_sigma=0.1, sigma_init=0.1)
    with torch.no_grad():
        layer.mu.zero_()
    assert float(layer.kl()) == pytest.approx(0.0, abs=1e-4)
    assert F.softplus(torch.tensor(inverse_softplus(0.1))).item() == pytest.approx(0.1)


@pytest.mark.parametrize(("dims", "transposed"), [(2, False), (3, False), (2, True), (3, True)])
def test_sampled_output_has_the_lrt_mean_and_variance(dims, transposed):
    torch.manual_seed(1)
    kernel, stride = (2, 2) if transposed else (3, 1)
    layer = LRTConv(
        dims, 2, 3, kernel, stride=stride, padding=0 if transposed else None, transposed=transposed, sigma_init=0.3
    )
    x = torch.randn((1, 2) + (6,) * dims)
    conv = {(2, False): F.conv2d, (3, False): F.conv3d, (2, True): F.conv_transpose2d, (3, True): F.conv_transpose3d}[
        (dims, transposed)
    ]
    pad = 0 if transposed else 1
    mean = conv(x, layer.mu.detach(), None, stride=stride, padding=pad)
    var = conv(x * x, layer.sigma.detach() ** 2, None, stride=stride, padding=pad)
    with torch.no_grad():
        draws = torch.stack([layer(x) for _ in range(4000)])
        layer.sample = False
        assert torch.equal(layer(x), mean)
    assert draws.shape[1:] == mean.shape
    assert torch.allclose(draws.mean(0), mean, atol=4 * float(var.max().sqrt()) / 4000**0.5)
    assert torch.allclose(draws.var(0), var, rtol=0.15, atol=1e-4)


def test_gradients_reach_mu_and_rho():
    layer = LRTConv(3, 1, 2, 3, bias=True)
    layer(torch.randn(2, 1, 4, 4, 4)).square().sum().backward()
    assert layer.mu.grad.abs().sum() > 0 and layer.rho.grad.abs().sum() > 0 and layer.bias.grad is not None


def test_conv_macs_counts_plain_transposed_and_lrt_convolutions():
    net = nn.Sequential(nn.Conv3d(2, 4, 3, padding=1), nn.ConvTranspose3d(4, 3, 2, stride=2))
    counts = conv_macs(net, torch.zeros(1, 2, 4, 4, 4))
    assert counts[net[0]] == 64 * 4 * (2 * 27)  # outputs x fan-in
    assert counts[net[1]] == (64 * 4) * (3 * 8)  # inputs x (out_channels x kernel)
    lrt = LRTConv(3, 2, 4, 3)
    assert conv_macs(lrt, torch.zeros(1, 2, 4, 4, 4))[lrt] == 2 * counts[net[0]]  # mean + variance convolutions
