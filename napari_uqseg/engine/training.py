"""Training configuration and one resumable training loop that every method's ``fit`` drives."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.options import look_up_option, options_from_dict
from napari_uqseg.core.predict_options import PRECISIONS
from napari_uqseg.core.progress import Progress, no_progress
from napari_uqseg.engine.augment import RECIPES
from napari_uqseg.engine.checkpoint import atomic_torch_save
from napari_uqseg.engine.data import PatchSampler
from napari_uqseg.engine.masked_loss import MaskedDiceCELoss
from napari_uqseg.engine.plateau import STOP_RULES, PlateauRule, snapshot
from napari_uqseg.engine.precision import forward_precision


@dataclass
class TrainConfig:
    """Recipe shared by all methods (nnU-Net's patch pipeline, scaled to a CPU budget).

    Attributes
    ----------
    patch_size : tuple of int
        Training and sliding-window patch, multiple of the U-Net divisor.
    batch_size : int
        Patches per step.
    iterations : int
        Optimisation steps per network: the maximum under the plateau rule, the budget under ``"fixed"``.
    stop_rule : str
        ``"plateau"``: every ``val_every`` steps score the network on the validation cases (mean foreground
        Dice); after ``patience`` checks without a gain above ``min_delta`` reload the best weights and
        multiply the learning rate by ``lr_drop_factor``, up to ``lr_drops`` times, then stop with the best weights;
        ``"fixed"``: run ``iterations`` steps (equal-compute comparisons). Without validation cases the
        plateau rule cannot check and runs ``iterations`` steps.
    val_every, patience : int
        Steps between validation checks; checks without a new best before stopping.
    min_delta : float
        Smallest Dice gain that counts as a new best.
    lr_drops, lr_drop_factor : int, float
        Learning-rate drops at the plateau before stopping, and the factor of each (0 drops: stop at the first
        plateau).
    augment : str
        Patch augmentation recipe of ``engine.augment.RECIPES`` (``"nnunet"`` or ``"none"``).
    time_budget_s : float or None
        Stop a network's training after this many seconds (``None``: run all iterations).
    optimizer : str
        ``"adam"`` (default; why: docs/methods.md, "Training options") or ``"sgd"`` (Nesterov, nnU-Net's recipe).
    lr, momentum, weight_decay, poly_power : float
        Learning rate ``lr * (1 - it / iterations) ** poly_power`` unless a method schedules its own.
    foreground_fraction : float
        Share of patches centred on a labelled voxel.
    val_fraction : float
        Share of scan groups held out for validation (temperature fitting, teacher checks).
    group_pairs : bool
        Keep ids ``2k-1, 2k`` (the two hemispheres of one hippocampus scan) on the same side of the split.
    normalisation : str
        ``"zscore"`` or ``"zscore_nonzero"``, per volume.
    checkpoint_every : int
        Steps between resumable checkpoints.
    threads : int
        ``torch.set_num_threads`` (0 keeps torch's default).
    precision : str
        Arithmetic of the training and validation forwards (``engine.precision``): ``float32`` (default,
        bit-reproducible) or ``bfloat16`` mixed precision (weights, optimiser and losses stay float32);
        ``auto`` chooses bfloat16 on CPUs with native bfloat16. Why and its effect: docs/methods.md,
        "Training precision".
    """

    patch_size: tuple[int, ...] = (40, 56, 40)
    batch_size: int = 4
    iterations: int = 300
    time_budget_s: float | None = None
    stop_rule: str = "plateau"
    val_every: int = 100
    patience: int = 5
    min_delta: float = 0.001
    lr_drops: int = 2
    lr_drop_factor: float = 0.2
    augment: str = "nnunet"
    optimizer: str = "adam"
    lr: float = 2e-3
    momentum: float = 0.99
    weight_decay: float = 3e-5
    poly_power: float = 0.9
    foreground_fraction: float = 0.33
    val_fraction: float = 0.2
    group_pairs: bool = True
    normalisation: str = "zscore"
    seed: int = 0
    checkpoint_every: int = 50
    threads: int = 0
    precision: str = "float32"

    def __post_init__(self) -> None:
        self.patch_size = tuple(int(p) for p in self.patch_size)
        if self.optimizer not in ("sgd", "adam"):
            raise InputError("train.optimizer", f"must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.iterations < 1 or self.batch_size < 1:
            raise InputError("train", "iterations and batch_size must be >= 1")
        if self.stop_rule not in STOP_RULES:
            raise InputError("train.stop_rule", f"must be one of {STOP_RULES}, got {self.stop_rule!r}")
        if self.val_every < 1 or self.patience < 1:
            raise InputError("train", "val_every and patience must be >= 1")
        if self.lr_drops < 0 or not 0.0 < self.lr_drop_factor < 1.0:
            raise InputError("train", "lr_drops must be >= 0 and lr_drop_factor in (0, 1)")
        look_up_option("train.augment", self.augment, sorted(RECIPES), "augmentation recipe")
        look_up_option("train.precision", self.precision, PRECISIONS, "precision")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        return options_from_dict(cls, d, "train")


def segmentation_loss() -> nn.Module:
    """Dice + cross-entropy on logits ``(B, C, *S)`` and labels ``(B, 1, *S)`` (nnU-Net's loss); voxels
    labelled ``engine.data.IGNORE_LABEL`` (not reviewed in a partial correction) are left out."""
    return MaskedDiceCELoss()


def make_optimizer(params, cfg: TrainConfig, lr: float | None = None) -> torch.optim.Optimizer:
    lr = cfg.lr if lr is None else lr
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay)


def poly_lr(cfg: TrainConfig, iterations: int | None = None) -> Callable[[int], float]:
    total = iterations or cfg.iterations
    return lambda it: cfg.lr * (1 - it / total) ** cfg.poly_power


StepLoss = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


def fit_network(
    module: nn.Module,
    step_loss: StepLoss,
    sampler: PatchSampler,
    cfg: TrainConfig,
    progress: Progress = no_progress,
    *,
    tag: str = "net",
    work_dir: Path | None = None,
    iterations: int | None = None,
    lr_at: Callable[[int], float] | None = None,
    on_step: Callable[[int], None] | None = None,
    tracked: dict[str, nn.Module] | None = None,
    params=None,
    validate: Callable[[], float] | None = None,
) -> dict:
    """Optimise ``module`` with ``step_loss(x, y, iteration)``; resumable, time-budgeted, stopped at the plateau.

    With ``work_dir``, the module, optimiser, sampler RNG, ``tracked`` modules and history are saved
    atomically every ``cfg.checkpoint_every`` steps to ``work_dir/<tag>.resume.pt`` and a finished run
    leaves ``<tag>.done.pt``; calling again resumes from the last checkpoint or returns at once.
    With ``validate`` (a validation score, higher is better) and ``cfg.stop_rule == "plateau"`` the run
    drops the learning rate from the best weights each time ``cfg.patience`` checks bring no new best, stops
    when no drop is left, and ends with the best weights.

    Returns
    -------
    dict
        ``iterations`` done, ``seconds`` spent, ``losses`` (mean per 10 steps), ``stopped_by`` (``"iterations"``,
        ``"plateau"`` or ``"time_budget"``) and, under the plateau rule, ``validation`` (the curve:
        ``step``, ``val_dice``), ``best_step`` and ``best_val_dice``.
    """
    iterations = iterations or cfg.iterations
    lr_at = lr_at or poly_lr(cfg, iterations)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    optimizer = make_optimizer(params if params is not None else module.parameters(), cfg, lr_at(0))
    plateau = (
        PlateauRule(cfg.patience, cfg.min_delta, cfg.lr_drops, cfg.lr_drop_factor)
        if validate and cfg.stop_rule == "plateau"
        else None
    )
    run = _TrainingRun(module, tracked or {}, optimizer, sampler, plateau)
    resume = work_dir / f"{tag}.resume.pt" if work_dir else None
    done = work_dir / f"{tag}.done.pt" if work_dir else None
    if done is not None and done.exists():
        run.restore(torch.load(done, weights_only=True))
        return run.history
    if resume is not None and resume.exists():
        run.restore(torch.load(resume, weights_only=True))
    module.train()
    _train_steps(run, step_loss, cfg, iterations, lr_at, progress, tag, on_step, validate, resume)
    run.load_best()
    if done is not None:
        atomic_torch_save(run.finished_state(), done)
        resume.unlink(missing_ok=True)
    module.eval()
    return run.history


class _TrainingRun:
    """What one ``fit_network`` call trains and checkpoints: the module, ``tracked`` modules, the optimiser, the
    sampler's RNG, the plateau rule, the history and the best weights so far."""

    def __init__(self, module: nn.Module, tracked: dict[str, nn.Module], optimizer, sampler, plateau) -> None:
        self.module = module
        self.tracked = tracked
        self.optimizer = optimizer
        self.sampler = sampler
        self.plateau = plateau
        self.modules = {"module": module, **tracked}
        self.history: dict = {"iterations": 0, "seconds": 0.0, "losses": [], "stopped_by": "iterations"}
        self.best: dict = {}

    def state(self) -> dict:
        """Everything a resumed run needs (``<tag>.resume.pt``)."""
        return {
            "module": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "tracked": {k: m.state_dict() for k, m in self.tracked.items()},
            "sampler": self.sampler.state(),
            "torch_rng": torch.get_rng_state(),
            "history": self.history,
            "plateau": self.plateau.state() if self.plateau else None,
            "best": self.best,
        }

    def finished_state(self) -> dict:
        """The weights and history of a finished run (``<tag>.done.pt``)."""
        return {
            "module": self.module.state_dict(),
            "tracked": {k: m.state_dict() for k, m in self.tracked.items()},
            "history": self.history,
        }

    def restore(self, saved: dict) -> None:
        """Load a ``state()`` or a ``finished_state()`` (which has no optimiser, sampler or plateau to restore)."""
        self.module.load_state_dict(saved["module"])
        for k, m in self.tracked.items():
            m.load_state_dict(saved["tracked"][k])
        self.history.update(saved["history"])
        if "optimizer" in saved:
            self.optimizer.load_state_dict(saved["optimizer"])
            self.sampler.set_state(saved["sampler"])
            torch.set_rng_state(saved["torch_rng"])
            if self.plateau is not None and saved.get("plateau"):
                self.plateau.set_state(saved["plateau"])
                self.best.update(saved.get("best") or {})

    def load_best(self) -> None:
        """End with the best validated weights, if the plateau rule kept any."""
        if self.best:
            for name, m in self.modules.items():
                m.load_state_dict(self.best[name])


def _train_steps(
    run: _TrainingRun,
    step_loss: StepLoss,
    cfg: TrainConfig,
    iterations: int,
    lr_at: Callable[[int], float],
    progress: Progress,
    tag: str,
    on_step: Callable[[int], None] | None,
    validate: Callable[[], float] | None,
    resume: Path | None,
) -> None:
    """Step from ``run.history["iterations"]`` to ``iterations``: record losses, validate every ``cfg.val_every``,
    checkpoint every ``cfg.checkpoint_every``, stop early at the plateau or past the time budget."""
    history, plateau = run.history, run.plateau
    started = time.perf_counter() - history["seconds"]
    window: list[float] = []
    it = history["iterations"]
    device = next(run.module.parameters()).device
    while it < iterations:
        lr = lr_at(it) * (plateau.lr_scale if plateau is not None else 1.0)
        value = optimisation_step(run.module, step_loss, run.sampler, run.optimizer, cfg, lr, it)
        it += 1
        window.append(value)
        if on_step is not None:
            on_step(it)
        if len(window) == 10:
            history["losses"].append(sum(window) / 10)
            window = []
        history["iterations"] = it
        history["seconds"] = time.perf_counter() - started
        progress(it, iterations, f"{tag}: step {it}/{iterations} loss {value:.3f}")
        if plateau is not None and it % cfg.val_every == 0:
            with forward_precision(cfg.precision, device):
                _check_plateau(plateau, validate, run.modules, run.best, history)
            progress(it, iterations, f"{tag}: step {it} validation Dice {plateau.curve[-1]['val_dice']:.4f}")
        if plateau is not None and plateau.exhausted and not plateau.finished:
            run.load_best()  # the lower rate continues from the best weights
            plateau.drop(it)
            history["lr_drop_steps"] = plateau.drop_steps
        if resume is not None and it % cfg.checkpoint_every == 0:
            atomic_torch_save(run.state(), resume)
        if plateau is not None and plateau.finished:
            history["stopped_by"] = "plateau"
            break
        if cfg.time_budget_s is not None and history["seconds"] > cfg.time_budget_s:
            history["stopped_by"] = "time_budget"
            break


def optimisation_step(
    module, step_loss: StepLoss, sampler: PatchSampler, optimizer, cfg: TrainConfig, lr: float, it: int
) -> float:
    """One optimisation step at learning rate ``lr``, the loss at ``cfg.precision``; returns the loss."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    x, y = sampler.sample(cfg.batch_size)  # augmentations stay float32: autocast would cast their affine maps
    device = next(module.parameters()).device
    with forward_precision(cfg.precision, device):
        loss = step_loss(x.to(device), y.to(device), it)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(module.parameters(), 12.0)  # nnU-Net clips at 12 too
    optimizer.step()
    return float(loss.detach())


def _check_plateau(plateau: PlateauRule, validate, modules: dict, best: dict, history: dict) -> None:
    """Score the validation cases, remember the best weights and write the curve into ``history``."""
    module = modules["module"]
    module.eval()
    score = validate()
    module.train()
    if plateau.record(history["iterations"], score):
        best.clear()
        best.update(snapshot(modules))
    history.update(validation=plateau.curve, best_step=plateau.best_step, best_val_dice=plateau.best_score)
