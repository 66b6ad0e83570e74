"""A network's initial weights follow ``train.seed``, whatever the process drew from torch's RNG before."""

from __future__ import annotations

import torch

from napari_uqseg.engine.make_model import build_method

CONFIG = {"net": {"channels": [4, 8, 16]}, "train": {"patch_size": [16, 16, 16]}}


def _weights(config):
    method, _ = build_method("deterministic", config, num_classes=3)
    return [t.clone() for t in method.nets.state_dict().values()]


def test_initial_weights_follow_the_seed_not_the_global_rng():
    first = _weights(CONFIG)
    torch.rand(100)  # another test (or request) drew from the global RNG in between
    state = torch.random.get_rng_state()
    assert all(torch.equal(a, b) for a, b in zip(first, _weights(CONFIG), strict=True))
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's RNG is left as it was
    other = _weights({**CONFIG, "train": {**CONFIG["train"], "seed": 1}})
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))
