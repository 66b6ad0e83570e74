"""Checkpoint ensembles of one SGD run (Zhao et al., MICCAI 2022): cyclical LR, constant-LR checkpoints."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.progress import Progress
from napari_uqseg.engine.checkpoint import atomic_torch_save
from napari_uqseg.engine.methods.base import TrainingData, UQMethod, register
from napari_uqseg.engine.schedules import CyclicalOptions
from napari_uqseg.engine.statistics import SampleStatistics
from napari_uqseg.engine.training import TrainConfig, fit_network, segmentation_loss
from napari_uqseg.engine.unet import UNet

CHECKPOINT_DIR = "checkpoints"
VARIANTS = ("single_modal", "multi_modal")


@dataclass
class CheckpointEnsembleOptions(CyclicalOptions):
    """Cyclical options plus ``variant`` and the checkpoint cache.

    Attributes
    ----------
    variant : str
        ``"multi_modal"`` (paper's proposal: the checkpoints of every cycle) or ``"single_modal"``
        (only the last cycle's checkpoints; training is identical).
    cache_mb : float
        Checkpoints are streamed from disk one at a time; when all of them together are at most this
        size they are read once and kept in memory (fp16) instead of re-read for every window.
    from_model : str or None
        Folder of a trained ``checkpoint_ensemble``: keep the checkpoints of the cycles this ``variant``
        collects (e.g. ``single_modal`` from a multi-modal run) instead of training the same trajectory
        again, as the paper builds both variants from one run.
    """

    variant: str = "multi_modal"
    cache_mb: float = 1024.0
    from_model: str | None = None

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise InputError("checkpoint_ensemble variant", f"must be one of {VARIANTS}, got {self.variant!r}")
        if self.checkpoints_per_cycle < 1:
            raise InputError("checkpoint_ensemble checkpoints_per_cycle", "must be >= 1")


def collected_cycles(options: CyclicalOptions, variant: str) -> list[int]:
    """Cycles whose checkpoints are kept: the last one (single-modal) or all (multi-modal)."""
    return [options.cycles - 1] if variant == "single_modal" else list(range(options.cycles))


def saved_checkpoints(model_dir: Path, variant: str) -> list[str]:
    """File names of the checkpoints a trained checkpoint-ensemble folder holds for ``variant``'s cycles."""
    from napari_uqseg.engine.model_folder import (
        read_card,  # store imports the method registry: a top-level import cycles
    )

    card = read_card(model_dir)
    if card.method != "checkpoint_ensemble":
        raise InputError("from_model", f"{model_dir} is a {card.method} model, not a checkpoint_ensemble")
    cycles = collected_cycles(CyclicalOptions(cycles=int(card.options.get("cycles", 3))), variant)
    files = [f for f in card.extra.get("checkpoints", []) if any(f"_c{c}_" in f for c in cycles)]
    if not files:
        raise InputError("from_model", f"{model_dir} has no checkpoints of cycle(s) {cycles}")
    return files


def half_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """CPU fp16 copy of a state dict (floating tensors only; halves the disk use of every checkpoint)."""
    return {
        k: v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()
        for k, v in module.state_dict().items()
    }


@register
class CheckpointEnsemble(UQMethod):
    name = "checkpoint_ensemble"
    summary = "checkpoint ensemble of one cyclical-SGD run, single- or multi-modal (K passes)"
    Options = CheckpointEnsembleOptions

    def build(self) -> None:
        self.nets["net"] = UNet(self.net_config)
        self.checkpoint_files: list[str] = []
        self.checkpoint_dir: Path | None = None
        self._cache: dict[str, dict[str, torch.Tensor]] | None = None

    def fit(self, data: TrainingData, cfg: TrainConfig, progress: Progress, work_dir: Path | None) -> dict:
        o = self.options
        if o.from_model:
            source = Path(o.from_model)
            files = saved_checkpoints(source, o.variant)
            self.load_weights(source)  # its final weights; checkpoints are read from (and saved from) its folder
            self.checkpoint_files = files
            return {"selected_from": str(source), "checkpoints": files}
        cfg, warm = o.warm_start(self, data, o.train_config(cfg), progress, work_dir)
        schedule = o.schedule(cfg)
        wanted = schedule.checkpoint_steps(o.checkpoints_per_cycle, collected_cycles(o, o.variant))
        net, loss = self.nets["net"], segmentation_loss()
        if work_dir is None:  # no folder to stream from: keep the (fp16) checkpoints in memory
            self._cache = {}
        else:
            self.checkpoint_dir = Path(work_dir) / CHECKPOINT_DIR
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        saved: list[str] = []

        def on_step(it: int) -> None:
            if it not in wanted:
                return
            name = f"checkpoint_c{schedule.cycle_of(it - 1)}_s{it:07d}.pt"
            if self._cache is not None:
                self._cache[name] = half_state(net)
            else:
                atomic_torch_save(half_state(net), self.checkpoint_dir / name)
            saved.append(name)

        history = fit_network(
            net,
            lambda x, y, _: loss(net(x), y),
            data.sampler(cfg),
            cfg,
            progress,
            work_dir=work_dir,
            lr_at=schedule,
            on_step=on_step,
        )
        if self.checkpoint_dir is not None:  # a resumed run saved the earlier checkpoints in a previous process
            saved = sorted(p.name for p in self.checkpoint_dir.glob("checkpoint_*.pt"))
        if not saved:  # stopped by the time budget before the first checkpoint: fall back to the last weights
            name = f"checkpoint_final_s{history['iterations']:07d}.pt"
            if self._cache is not None:
                self._cache[name] = half_state(net)
            else:
                atomic_torch_save(half_state(net), self.checkpoint_dir / name)
            saved = [name]
        self.checkpoint_files = saved
        return {"warm_start": warm, "net": history, "checkpoints": saved, "checkpoint_steps": wanted}

    # -- persistence --------------------------------------------------------------------------
    def save_weights(self, model_dir: Path) -> None:
        super().save_weights(model_dir)  # the final weights: the paper's "vanilla" single model
        target = model_dir / CHECKPOINT_DIR
        target.mkdir(parents=True, exist_ok=True)
        for name in self.checkpoint_files:
            if self._cache is not None and name in self._cache:
                atomic_torch_save(self._cache[name], target / name)
            else:
                shutil.copy2(self._source_dir() / name, target / name)

    def load_weights(self, model_dir: Path) -> None:
        super().load_weights(model_dir)
        self.checkpoint_dir = model_dir / CHECKPOINT_DIR
        self._cache = None

    def extra_state(self) -> dict[str, Any]:
        return {"checkpoints": list(self.checkpoint_files), "checkpoint_dtype": "float16"}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.checkpoint_files = list(state.get("checkpoints", []))
        missing = [n for n in self.checkpoint_files if not (self._source_dir() / n).is_file()]
        if missing or not self.checkpoint_files:
            raise InputError(str(self.checkpoint_dir), f"checkpoint files missing: {missing or 'none listed'}")

    def _source_dir(self) -> Path:
        if self.checkpoint_dir is None:
            raise InputError(self.name, "no checkpoint folder: train or load the model first")
        return self.checkpoint_dir

    def _checkpoints(self):
        """Yield each checkpoint's state dict, from memory when the set is small enough, else from disk."""
        if self._cache is None and self.checkpoint_files:
            total = sum((self._source_dir() / n).stat().st_size for n in self.checkpoint_files)
            if total <= self.options.cache_mb * 2**20:
                self._cache = {n: self._read(n) for n in self.checkpoint_files}
        for name in self.checkpoint_files:
            yield self._cache[name] if self._cache is not None else self._read(name)

    def _read(self, name: str) -> dict[str, torch.Tensor]:
        return torch.load(self._source_dir() / name, map_location="cpu", weights_only=True)

    # -- inference ----------------------------------------------------------------------------
    def window_statistics(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        net = self.nets["net"]
        net.eval()
        stats = SampleStatistics()
        for state in self._checkpoints():
            net.load_state_dict(state)  # copy_ casts fp16 -> fp32 onto the net's device
            stats.add(self.probabilities(net(x)))
        return stats.result()

    def n_samples(self) -> int:
        if self.checkpoint_files:
            return len(self.checkpoint_files)
        return self.options.checkpoints_per_cycle * len(collected_cycles(self.options, self.options.variant))
