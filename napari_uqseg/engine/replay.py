"""Replay for fine-tuning: every batch mixes patches of the corrected cases with patches of earlier cases.

Fine-tuning on a handful of corrections alone pulls the model towards them and it forgets what it knew
(measured in docs/loop.md). :class:`ReplayPatchSampler` draws a fixed number of each batch's patches from
a second set of cases (the original training cases), so every optimisation step sees both.
"""

from __future__ import annotations

import math

import torch

from napari_uqseg.core.errors import InputError
from napari_uqseg.engine.augment import PatchAugmenter
from napari_uqseg.engine.data import Case, PatchSampler


def replay_count(batch_size: int, replay_fraction: float) -> int:
    """Patches per batch taken from the replay cases: ``round(B * f)`` kept in ``[1, B - 1]`` for ``0 < f < 1``.

    With ``B == 1`` the single patch comes from the corrections (replay needs ``B >= 2``); ``f == 0`` gives 0.
    """
    if not 0.0 <= replay_fraction < 1.0:
        raise InputError("replay_fraction", f"must be in [0, 1), got {replay_fraction}")
    if replay_fraction == 0.0 or batch_size < 2:
        return 0
    return min(batch_size - 1, max(1, math.floor(batch_size * replay_fraction + 0.5)))


class ReplayPatchSampler:
    """A ``PatchSampler`` over the corrections plus one over replay cases; each batch holds both.

    ``sample(B)`` returns ``x`` ``(B, 1, *patch)`` and ``y`` ``(B, 1, *patch)``: the first
    ``B - replay_count(B, f)`` patches from the corrections, the rest from the replay cases.
    """

    def __init__(
        self,
        cases: list[Case],
        replay: list[Case],
        patch_size: tuple[int, ...],
        replay_fraction: float,
        foreground_fraction: float = 0.33,
        seed: int = 0,
        augment: PatchAugmenter | None = None,
    ) -> None:
        if not replay:
            raise InputError("replay", "a replay sampler needs replay cases")
        replay_count(2, replay_fraction)  # validates the fraction
        self.own = PatchSampler(cases, patch_size, foreground_fraction, seed, augment)
        self.replay = PatchSampler(replay, patch_size, foreground_fraction, seed + 7919, augment)
        self.replay_fraction = replay_fraction

    @property
    def cases(self) -> list[Case]:
        return self.own.cases

    def sample(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        k = replay_count(batch_size, self.replay_fraction)
        x, y = self.own.sample(batch_size - k)
        if k == 0:
            return x, y
        rx, ry = self.replay.sample(k)
        return torch.cat([x, rx]), torch.cat([y, ry])

    def state(self) -> dict:
        """Both RNG states, so a resumed fine-tune draws the same patches."""
        return {"own": self.own.state(), "replay": self.replay.state()}

    def set_state(self, state: dict) -> None:
        self.own.set_state(state["own"])
        self.replay.set_state(state["replay"])
