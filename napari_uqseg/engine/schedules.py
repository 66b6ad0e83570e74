"""Cyclical learning-rate schedule of the nnU-Net checkpoint-ensemble paper and its checkpoint positions.

Zhao et al. (MICCAI 2022) split the training budget into ``R`` cycles. In each cycle the learning rate
restarts, decays polynomially for the first fraction ``gamma`` of the cycle and is then held constant,
so SGD keeps sampling around the cycle's optimum; checkpoints are collected in that constant tail.
The schedule is a pure function of the iteration number so a resumed run reproduces it exactly.
``CyclicalOptions`` is the recipe built on it, shared by ``checkpoint_ensemble`` and ``swa``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.progress import Progress
from napari_uqseg.engine.training import TrainConfig, fit_network, segmentation_loss

if TYPE_CHECKING:
    from napari_uqseg.engine.methods.base import TrainingData, UQMethod


@dataclass(frozen=True)
class CyclicalSchedule:
    """Learning rate per optimisation step.

    Attributes
    ----------
    iterations : int
        Total steps of all cycles.
    cycles : int
        ``R``; cycle ``k`` covers steps ``[k * iterations // R, (k + 1) * iterations // R)``.
    lr : float
        Poly-decay start value: ``lr * (1 - t / L) ** power`` at in-cycle step ``t`` of a cycle of ``L`` steps.
    gamma : float
        Fraction of each cycle with decaying learning rate, in ``(0, 1)``; the rest is constant.
    power : float
        Poly exponent (nnU-Net: 0.9).
    constant_lr : float or None
        Learning rate of the constant tail; ``None`` continues the decay's value at ``gamma``,
        ``lr * (1 - gamma) ** power``, so the schedule has no jump.
    restart_lr : float or None
        Learning rate of the first ``restart_steps`` steps of every cycle (the paper's high restart
        rate for one epoch); ``None`` restarts at ``lr``.
    restart_steps : int
        Steps at ``restart_lr`` at the start of each cycle (0 when ``restart_lr`` is ``None``).
    """

    iterations: int
    cycles: int = 3
    lr: float = 1e-2
    gamma: float = 0.75
    power: float = 0.9
    constant_lr: float | None = None
    restart_lr: float | None = None
    restart_steps: int = 1

    def __post_init__(self) -> None:
        if self.cycles < 1 or self.iterations < self.cycles:
            raise InputError(
                "cycles", f"need 1 <= cycles <= iterations, got {self.cycles} cycles, {self.iterations} steps"
            )
        if not 0.0 < self.gamma < 1.0:
            raise InputError("gamma", f"decay fraction must be in (0, 1), got {self.gamma}")

    def cycle_bounds(self, cycle: int) -> tuple[int, int]:
        """First step and end (exclusive) of ``cycle`` (0-based)."""
        return cycle * self.iterations // self.cycles, (cycle + 1) * self.iterations // self.cycles

    def cycle_of(self, it: int) -> int:
        """Cycle containing step ``it`` (0-based)."""
        return min(self.cycles - 1, next(k for k in range(self.cycles) if it < self.cycle_bounds(k)[1]))

    def constant_start(self, cycle: int) -> int:
        """First step of ``cycle``'s constant tail."""
        start, end = self.cycle_bounds(cycle)
        return start + math.ceil(self.gamma * (end - start))

    def __call__(self, it: int) -> float:
        """Learning rate of step ``it`` (0-based)."""
        cycle = self.cycle_of(it)
        start, end = self.cycle_bounds(cycle)
        t, length = it - start, end - start
        if self.restart_lr is not None and t < self.restart_steps:
            return self.restart_lr
        if it < self.constant_start(cycle):
            return self.lr * (1.0 - t / length) ** self.power
        return self.constant_lr if self.constant_lr is not None else self.lr * (1.0 - self.gamma) ** self.power

    def checkpoint_steps(self, per_cycle: int, cycles: list[int] | None = None) -> list[int]:
        """Step counts after which to save a checkpoint: ``per_cycle`` per cycle, spread evenly over its
        constant tail and ending at the cycle's last step (counts are 1-based: ``n`` = after ``n`` steps).

        Raises
        ------
        InputError
            A constant tail shorter than ``per_cycle`` steps.
        """
        steps = []
        for cycle in range(self.cycles) if cycles is None else cycles:
            first, end = self.constant_start(cycle), self.cycle_bounds(cycle)[1]
            tail = end - first
            if tail < per_cycle:
                raise InputError(
                    "checkpoints_per_cycle",
                    f"cycle {cycle} has a constant phase of {tail} steps, fewer than {per_cycle} checkpoints; "
                    "raise train.iterations or lower cycles/gamma",
                )
            # spacing tail / per_cycle: the last checkpoint is the cycle's final weights
            steps += sorted(end - (j * tail) // per_cycle for j in range(per_cycle))
        return steps


@dataclass
class CyclicalOptions:
    """The cyclical SGD recipe shared by ``checkpoint_ensemble`` and ``swa`` (defaults: docs/methods.md,
    "Cyclical recipe").

    Attributes
    ----------
    cycles : int
        ``R`` training cycles splitting ``train.iterations`` (paper: 3).
    gamma : float
        Fraction of each cycle with poly-decaying LR before the constant tail, in (0, 1).
    constant_lr : float or None
        LR of the constant tail; ``None``: the decay's value at ``gamma`` (continuous schedule).
    restart_lr : float or None
        LR of the first ``restart_fraction`` of each cycle; ``None``: restart at ``train.lr``.
    restart_fraction : float
        Share of each cycle at ``restart_lr`` (at least one step).
    checkpoints_per_cycle : int
        Checkpoints saved evenly in each constant tail, the last at the cycle's end.
    force_sgd : bool
        Train with SGD whatever ``train.optimizer`` says.
    sgd_lr : float
        Peak LR when SGD replaces the configured Adam.
    cycle_iterations : int
        Steps per cycle under the plateau rule: the network first trains to its plateau from random weights
        (warm start, poly LR, best weights kept), then runs ``cycles`` cycles of this length. Under
        ``stop_rule="fixed"`` the cycles split ``train.iterations`` and there is no warm start.
    """

    cycles: int = 3
    gamma: float = 0.75
    constant_lr: float | None = None
    restart_lr: float | None = None
    restart_fraction: float = 0.001
    checkpoints_per_cycle: int = 4
    force_sgd: bool = True
    sgd_lr: float = 1e-2
    cycle_iterations: int = 600

    def schedule(self, cfg: TrainConfig) -> CyclicalSchedule:
        """The LR schedule over ``cfg.iterations`` steps starting at ``cfg.lr``."""
        steps = max(1, round(self.restart_fraction * cfg.iterations / self.cycles))
        return CyclicalSchedule(
            cfg.iterations, self.cycles, cfg.lr, self.gamma, cfg.poly_power, self.constant_lr, self.restart_lr, steps
        )

    def train_config(self, cfg: TrainConfig) -> TrainConfig:
        """SGD when forced; an Adam-sized LR (< 5e-3) is raised to ``sgd_lr``, nnU-Net's SGD LR."""
        if not self.force_sgd or cfg.optimizer == "sgd":
            return cfg
        return TrainConfig.from_dict({**cfg.to_dict(), "optimizer": "sgd", "lr": max(cfg.lr, self.sgd_lr)})

    def warm_start(
        self, method: UQMethod, data: TrainingData, cfg: TrainConfig, progress: Progress, work_dir: Path | None
    ) -> tuple[TrainConfig, dict]:
        """Under the plateau rule train ``method.nets["net"]`` to its plateau before the cycles.

        Returns the configuration of the cycles (``cycles * cycle_iterations`` steps under the plateau rule,
        ``cfg`` unchanged under ``"fixed"``) and the warm start's history (empty without one).
        """
        if cfg.stop_rule != "plateau" or not data.val:
            return cfg, {}
        net, loss = method.nets["net"], segmentation_loss()
        history = fit_network(
            net,
            lambda x, y, _: loss(net(x), y),
            data.sampler(cfg, seed_offset=3000),
            cfg,
            progress,
            tag="warm_start",
            work_dir=work_dir,
            validate=method.net_validator(data, net),
        )
        cycles = {"iterations": self.cycles * self.cycle_iterations, "stop_rule": "fixed"}
        return TrainConfig.from_dict({**cfg.to_dict(), **cycles}), history
