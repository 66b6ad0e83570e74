"""The plateau rule every method trains under: validation Dice every ``n`` steps; after ``patience`` checks
without a gain the learning rate drops (from the best weights) until no drop is left, then training stops."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from napari_uqseg.core.metrics import dice_per_class
from napari_uqseg.engine.data import Case
from napari_uqseg.engine.inference import blend_windows

STOP_RULES = ("plateau", "fixed")


@dataclass
class PlateauRule:
    """Early stopping on a validation score that should rise (mean foreground Dice), with learning-rate drops.

    ``record(step, score)`` keeps the curve and says whether the score is a new best (by more than
    ``min_delta``); ``exhausted`` is true once ``patience`` checks in a row brought no new best. While
    ``lr_drops`` remain, ``drop(step)`` multiplies ``lr_scale`` by ``lr_drop_factor`` and restarts the count
    (the caller reloads the best weights); once none remain, ``finished`` is true.
    """

    patience: int
    min_delta: float = 0.0
    lr_drops: int = 0
    lr_drop_factor: float = 0.2
    curve: list[dict] = field(default_factory=list)
    best_score: float = -np.inf
    best_step: int = 0
    since_best: int = 0
    drop_steps: list[int] = field(default_factory=list)

    def record(self, step: int, score: float) -> bool:
        self.curve.append({"step": int(step), "val_dice": float(score), "lr_scale": self.lr_scale})
        if score > self.best_score + self.min_delta:
            self.best_score, self.best_step, self.since_best = float(score), int(step), 0
            return True
        self.since_best += 1
        return False

    @property
    def lr_scale(self) -> float:
        """Factor on the schedule's learning rate: ``lr_drop_factor ** drops so far``."""
        return self.lr_drop_factor ** len(self.drop_steps)

    @property
    def exhausted(self) -> bool:
        return self.since_best >= self.patience

    @property
    def finished(self) -> bool:
        """Exhausted with no learning-rate drop left: training stops."""
        return self.exhausted and len(self.drop_steps) >= self.lr_drops

    def drop(self, step: int) -> None:
        """Lower the learning rate at ``step`` and give the new rate ``patience`` checks."""
        self.drop_steps.append(int(step))
        self.since_best = 0

    def state(self) -> dict:
        return {
            "curve": self.curve,
            "best_score": self.best_score,
            "best_step": self.best_step,
            "since": self.since_best,
            "drop_steps": self.drop_steps,
        }

    def set_state(self, state: dict) -> None:
        self.curve = list(state["curve"])
        self.best_score, self.best_step, self.since_best = state["best_score"], state["best_step"], state["since"]
        self.drop_steps = list(state.get("drop_steps", []))  # runs saved before drops existed had none


def snapshot(modules: dict[str, torch.nn.Module]) -> dict[str, dict[str, torch.Tensor]]:
    """Detached copies of the modules' state dicts (the best weights so far)."""
    return {name: copy.deepcopy(m.state_dict()) for name, m in modules.items()}


Forward = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def validation_dice(
    forward: Forward, cases: Sequence[Case], patch: tuple[int, ...], num_classes: int, device: torch.device
) -> float:
    """Mean foreground Dice over ``cases`` of the argmax of ``forward``'s probabilities.

    ``forward`` maps windows ``(B, 1, *patch)`` to probabilities ``(B, C, *patch)``; volumes are covered by
    the same Gaussian-blended sliding window as inference.
    """
    scores = []
    for case in cases:
        image = torch.from_numpy(case.image)[None, None]
        probs = blend_windows(forward, image, patch, device)
        pred = probs[0].argmax(0).numpy()
        scores.append(float(np.mean(dice_per_class(pred, case.label, num_classes))))
    return float(np.mean(scores))
