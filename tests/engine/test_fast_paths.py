"""Every fast path of the baseline methods equals its plain reference path within a stated tolerance.

Tolerances: paths that draw the same random numbers or none must agree to float32 round-off of a
differently ordered computation (``atol=1e-5`` on probabilities and entropies); batched MC-Dropout
draws different masks than the loop, so it is checked exactly at ``rate=0`` and in distribution at
``rate=0.3``.
"""

from __future__ import annotations

import pytest
import torch

from napari_uqseg.engine.inference import window_statistics_over_volume
from napari_uqseg.engine.methods.base import method_class
from napari_uqseg.engine.unet import UNetConfig

ATOL = 1e-5
CONFIG = UNetConfig(channels=(4, 8, 16))


def _windows(batch: int = 2, seed: int = 0) -> torch.Tensor:
    # two different windows: a fast path that mixed up windows and samples would not match
    return torch.randn(batch, 1, 16, 16, 16, generator=torch.Generator().manual_seed(seed))


def _assert_close(fast: dict[str, torch.Tensor], plain: dict[str, torch.Tensor], atol: float = ATOL) -> None:
    assert set(fast) == set(plain)
    for key in plain:
        assert fast[key].shape == plain[key].shape, key
        torch.testing.assert_close(fast[key], plain[key], atol=atol, rtol=0, msg=key)


def _stats(method, x: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    with torch.no_grad():
        return method.window_statistics(x)


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_deep_ensemble_vmapped_members_equal_the_loop(norm):
    config = UNetConfig(channels=(4, 8, 16), norm=norm)
    batched = method_class("deep_ensemble")(config, {"members": 3, "batched": True})
    plain = method_class("deep_ensemble")(config, {"members": 3, "batched": False})
    plain.nets.load_state_dict(batched.nets.state_dict())
    batched.eval()
    plain.eval()
    x = _windows(batch=1)
    fast = _stats(batched, x)
    _assert_close(fast, _stats(plain, x))
    assert float((fast["mean_sq_prob"] - fast["mean_prob"] ** 2).max()) > 1e-6, "members differ"
    # the stacked forward keeps windows apart for a batch too (the GPU runs every batch stacked)
    forward, params, buffers = batched.stacked_forward()
    x = _windows()
    with torch.no_grad():
        stacked = forward(params, buffers, x)
        looped = torch.stack([net(x) for net in plain.members()])
    torch.testing.assert_close(stacked, looped, atol=ATOL, rtol=0)


def test_deep_ensemble_loops_over_a_cpu_batch():
    method = method_class("deep_ensemble")(CONFIG, {"members": 2, "batched": True})
    method.eval()
    _stats(method, _windows(batch=2))
    assert method._stack_key is None  # never stacked
    _stats(method, _windows(batch=1))
    assert method._stack_key is not None


def test_deep_ensemble_stack_follows_weight_updates():
    method = method_class("deep_ensemble")(CONFIG, {"members": 2})
    method.eval()
    x = _windows(batch=1)
    before = _stats(method, x)
    with torch.no_grad():  # an in-place update, as an optimiser step or load_state_dict does
        method.members()[1].head.conv.conv.weight.mul_(3.0)
    after = _stats(method, x)
    method.options.batched = False
    _assert_close(after, _stats(method, x))
    assert not torch.allclose(after["mean_prob"], before["mean_prob"])


def test_deep_ensemble_uses_the_loop_when_gradients_are_needed():
    method = method_class("deep_ensemble")(CONFIG, {"members": 2, "batched": True})
    out = method.window_statistics(_windows())  # grad enabled: a distillation student needs the members' graph
    out["mean_prob"].sum().backward()
    assert method.members()[0].head.conv.conv.weight.grad is not None


def test_masksembles_tiled_batch_equals_one_mask_at_a_time():
    batched = method_class("masksembles")(CONFIG, {"n_masks": 4, "batched": True})
    plain = method_class("masksembles")(CONFIG, {"n_masks": 4, "batched": False})
    plain.nets.load_state_dict(batched.nets.state_dict())
    batched.eval()
    plain.eval()
    x = _windows(batch=3)
    fast = _stats(batched, x)
    _assert_close(fast, _stats(plain, x))
    assert float((fast["mean_sq_prob"] - fast["mean_prob"] ** 2).max()) > 1e-6, "masks differ"
    # the sequential path leaves the layers in their batched mode
    tiled = _stats(batched, x)
    _assert_close(tiled, fast, atol=0)


def _mc_pair(plain_options: dict, fast_options: dict, rate: float, samples: int):
    plain = method_class("mc_dropout")(CONFIG, {"rate": rate, "samples": samples, **plain_options})
    fast = method_class("mc_dropout")(CONFIG, {"rate": rate, "samples": samples, **fast_options})
    fast.nets.load_state_dict(plain.nets.state_dict())
    return plain, fast


PLAIN = {"batch_samples": 1, "share_encoder": False}


def test_mc_dropout_shared_encoder_draws_the_same_samples_as_the_loop():
    plain, fast = _mc_pair(PLAIN, {"batch_samples": 1, "share_encoder": True}, rate=0.5, samples=5)
    x = _windows()
    out = _stats(fast, x, seed=3)
    _assert_close(out, _stats(plain, x, seed=3))
    assert float((out["mean_sq_prob"] - out["mean_prob"] ** 2).max()) > 1e-6, "dropout was active"


@pytest.mark.parametrize("share_encoder", [False, True])
def test_mc_dropout_batched_samples_equal_the_loop_without_dropout(share_encoder):
    # rate 0: every sample is the deterministic net, so any mix-up of windows and samples shows
    plain, fast = _mc_pair(PLAIN, {"batch_samples": 3, "share_encoder": share_encoder}, rate=0.0, samples=5)
    x = _windows()
    _assert_close(_stats(fast, x), _stats(plain, x))


def test_mc_dropout_batched_samples_match_the_loop_in_distribution():
    # different masks, same distribution: 200 samples each; the Monte-Carlo error of a mean probability
    # is <= 0.5 / sqrt(200) ~ 0.035 per voxel, so 0.02 on the mean over voxels is ~10 standard errors of that
    plain, fast = _mc_pair(PLAIN, {"batch_samples": 8, "share_encoder": True}, rate=0.3, samples=200)
    x = _windows(batch=1)
    a, b = _stats(plain, x, seed=1), _stats(fast, x, seed=2)
    for key in ("mean_prob", "mean_sq_prob", "expected_entropy"):
        assert float((a[key] - b[key]).abs().mean()) < 0.02, key
    variance = lambda s: s["mean_sq_prob"] - s["mean_prob"] ** 2  # noqa: E731
    assert abs(float(variance(a).mean() - variance(b).mean())) < 0.2 * float(variance(a).mean())


def test_fast_paths_through_the_sliding_window():
    # the fast paths also agree after blending windows over a volume larger than the patch
    image = torch.randn(1, 1, 24, 20, 28, generator=torch.Generator().manual_seed(5))
    for name, fast_opts, plain_opts in [
        ("deep_ensemble", {"members": 2}, {"members": 2, "batched": False}),
        ("masksembles", {"n_masks": 2}, {"n_masks": 2, "batched": False}),
    ]:
        fast = method_class(name)(CONFIG, fast_opts)
        plain = method_class(name)(CONFIG, plain_opts)
        plain.nets.load_state_dict(fast.nets.state_dict())
        for method in (fast, plain):
            method.patch_size = (16, 16, 16)
            method.eval()
        _assert_close(window_statistics_over_volume(fast, image), window_statistics_over_volume(plain, image))


def _partial_bayes_pair(config: UNetConfig, samples: int):
    fast = method_class("partial_bayes")(config, {"samples": samples, "batched": True})
    plain = method_class("partial_bayes")(config, {"samples": samples, "batched": False})
    generator = torch.Generator().manual_seed(0)
    for layer in fast.layers():  # 10 % of every layer Bayesian, prefix included: every kind of conv is batched
        n = layer.conv.weight.numel()
        index = torch.randperm(n, generator=generator)[: max(1, n // 10)]
        layer.set_bayesian(index, torch.full((index.numel(),), -1.0))
    plain.nets.load_state_dict(fast.nets.state_dict())
    fast.eval()
    plain.eval()
    return fast, plain


@pytest.mark.parametrize("dims", [2, 3])
def test_partial_bayes_grouped_samples_equal_the_loop(dims):
    # both paths draw every layer's S weight samples up front, so the same seed gives the same samples
    fast, plain = _partial_bayes_pair(UNetConfig(spatial_dims=dims, channels=(4, 8, 16)), samples=4)
    x = torch.randn(2, 1, *(16,) * dims, generator=torch.Generator().manual_seed(1))
    out = _stats(fast, x, seed=7)
    _assert_close(out, _stats(plain, x, seed=7))
    assert float((out["mean_sq_prob"] - out["mean_prob"] ** 2).max()) > 1e-6, "weight samples differ"


def test_partial_bayes_grouped_samples_through_the_sliding_window():
    fast, plain = _partial_bayes_pair(CONFIG, samples=3)
    image = torch.randn(1, 1, 24, 20, 28, generator=torch.Generator().manual_seed(5))
    results = []
    for method in (fast, plain):
        method.patch_size = (16, 16, 16)
        torch.manual_seed(11)
        results.append(window_statistics_over_volume(method, image))
    _assert_close(*results)


def _vi_pair(samples: int, chunk: int, rho: float):
    """The loop and the chunked path on the same weights, every posterior ``rho`` set to ``rho``."""
    config = UNetConfig(channels=(4, 8, 16))
    plain = method_class("vi_multihead")(config, {"heads": 2, "samples": samples, "batch_samples": 1})
    fast = method_class("vi_multihead")(config, {"heads": 2, "samples": samples, "batch_samples": chunk})
    with torch.no_grad():
        for name, p in plain.nets.named_parameters():
            if name.endswith("rho"):
                p.fill_(rho)
    fast.nets.load_state_dict(plain.nets.state_dict())
    plain.eval()
    fast.eval()
    return plain, fast


def test_vi_multihead_chunked_head_samples_equal_the_loop_without_noise():
    # sigma ~ 0: every sample is the heads' mean, so any mix-up of windows and samples shows
    plain, fast = _vi_pair(samples=5, chunk=3, rho=-30.0)
    x = _windows()
    _assert_close(_stats(fast, x), _stats(plain, x))


def test_vi_multihead_chunked_head_samples_match_the_loop_in_distribution():
    # LRT noise is drawn per output element: tiled rows are independent samples of the same distribution;
    # 2 heads x 100 samples each, the same Monte-Carlo bound as MC-Dropout's test above
    plain, fast = _vi_pair(samples=100, chunk=10, rho=-1.0)  # sigma ~ 0.31: samples clearly differ
    x = _windows(batch=1)
    a, b = _stats(plain, x, seed=1), _stats(fast, x, seed=2)
    for key in ("mean_prob", "mean_sq_prob", "expected_entropy"):
        assert float((a[key] - b[key]).abs().mean()) < 0.02, key
    variance = lambda s: s["mean_sq_prob"] - s["mean_prob"] ** 2  # noqa: E731
    assert float(variance(a).mean()) > 1e-4
    assert abs(float(variance(a).mean() - variance(b).mean())) < 0.2 * float(variance(a).mean())
