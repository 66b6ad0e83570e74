"""Mixed-precision training against float32: seconds per optimisation step of the U-Net every plain-network
method trains (deterministic, deep-ensemble members, partial-Bayes' base, the DUDES student).

Both precisions step the same network from the same weights on the same batch, timed alternately pair by pair
after a warm-up of each, so the ratio holds on a loaded machine.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
import torch

from napari_uqseg.bench.paired import paired_ratio
from napari_uqseg.engine import training
from napari_uqseg.engine.precision import resolve_precision
from napari_uqseg.engine.unet import UNet, UNetConfig


class _OneBatch:
    """A sampler that always returns the same batch ``x`` ``(B, 1, *patch)``, ``y`` ``(B, 1, *patch)``."""

    def __init__(self, batch: int, patch: tuple[int, ...], classes: int) -> None:
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(batch, 1, *patch, generator=generator)
        self.y = torch.randint(0, classes, (batch, 1, *patch), generator=generator)

    def sample(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x, self.y


def train_step_precision(
    channels: tuple[int, ...] = (16, 32, 64, 128),
    patch: tuple[int, ...] = (40, 56, 40),
    batch: int = 4,
    repeats: int = 5,
) -> dict[str, Any]:
    """Seconds per training step (Adam, Dice + CE, gradient clipping: ``engine.training``) in float32 and in
    bfloat16 mixed precision on the CPU.

    Returns
    -------
    dict
        ``patch``, ``batch``, ``bfloat16`` (what ``auto`` resolves to here: ``"bfloat16"`` or ``"float32"``),
        median ``float32_s`` and ``bfloat16_s`` per step, ``speedup`` (median over pairs of float32 s /
        bfloat16 s).
    """
    config = UNetConfig(channels=channels, num_classes=3)
    sampler = _OneBatch(batch, patch, config.num_classes)
    torch.manual_seed(0)
    start = UNet(config)
    loss = training.segmentation_loss()
    runs = {}
    for precision in ("float32", "bfloat16"):
        net = copy.deepcopy(start)
        cfg = training.TrainConfig(patch_size=patch, batch_size=batch, precision=precision)
        optimizer = training.make_optimizer(net.parameters(), cfg)
        runs[precision] = (net, cfg, optimizer)

    def step(precision: str) -> float:
        net, cfg, optimizer = runs[precision]
        began = time.perf_counter()
        training.optimisation_step(net, lambda x, y, _: loss(net(x), y), sampler, optimizer, cfg, cfg.lr, 0)
        return time.perf_counter() - began

    for precision in runs:
        step(precision)
    pairs = [(step("float32"), step("bfloat16")) for _ in range(repeats)]
    return {
        "patch": list(patch),
        "batch": batch,
        "bfloat16": resolve_precision("auto", "cpu"),
        "float32_s": float(np.median([p[0] for p in pairs])),
        "bfloat16_s": float(np.median([p[1] for p in pairs])),
        "speedup": paired_ratio([p[0] for p in pairs], [p[1] for p in pairs]),
    }
