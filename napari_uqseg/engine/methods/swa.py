"""SWA (Izmailov et al. 2018) as the checkpoint-ensemble paper's baseline: average the weights, not the outputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel, update_bn

from napari_uqseg.core.progress import Progress
from napari_uqseg.engine.methods.base import TrainingData, UQMethod, register
from napari_uqseg.engine.methods.checkpoint_ensemble import CHECKPOINT_DIR, saved_checkpoints
from napari_uqseg.engine.schedules import CyclicalOptions
from napari_uqseg.engine.statistics import single_sample_statistics
from napari_uqseg.engine.training import TrainConfig, fit_network, segmentation_loss
from napari_uqseg.engine.unet import UNet


@dataclass
class SWAOptions(CyclicalOptions):
    """The checkpoint ensemble's cyclical recipe; the weights averaged are exactly the checkpoints the
    single-modal ensemble keeps (``checkpoints_per_cycle`` of the last cycle), as in the paper.

    Attributes
    ----------
    bn_batches : int
        Training batches used to re-estimate batch-norm statistics of the averaged weights (the paper's
        "one more epoch of forward passes"); unused with instance norm, which keeps no running statistics.
    from_model : str or None
        Folder of a trained ``checkpoint_ensemble``: average its last cycle's saved checkpoints instead of
        training the same trajectory a second time (the paper's SWA baseline shares the SGD run).
    """

    bn_batches: int = 50
    from_model: str | None = None


def last_cycle_checkpoints(model_dir: Path):
    """Yield the float32 state dicts of a checkpoint-ensemble folder's last cycle, one at a time."""
    for name in saved_checkpoints(model_dir, "single_modal"):
        state = torch.load(model_dir / CHECKPOINT_DIR / name, map_location="cpu", weights_only=True)
        yield {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


@register
class SWA(UQMethod):
    name = "swa"
    summary = "stochastic weight averaging of the last cycle's checkpoints (baseline, 1 pass)"
    maps = ("entropy",)
    Options = SWAOptions

    def build(self) -> None:
        self.nets["net"] = UNet(self.net_config)
        self.averaged_count = 0

    def fit(self, data: TrainingData, cfg: TrainConfig, progress: Progress, work_dir: Path | None) -> dict:
        o = self.options
        if o.from_model:
            net = self.nets["net"]
            averaged = AveragedModel(net)
            for state in last_cycle_checkpoints(Path(o.from_model)):
                net.load_state_dict(state)
                averaged.update_parameters(net)
            history = {"averaged_from": o.from_model}
            return self._finish(net, averaged, history, data, o.train_config(cfg), progress)
        cfg, warm = o.warm_start(self, data, o.train_config(cfg), progress, work_dir)
        schedule = o.schedule(cfg)
        wanted = set(schedule.checkpoint_steps(o.checkpoints_per_cycle, [o.cycles - 1]))
        net, loss = self.nets["net"], segmentation_loss()
        averaged = AveragedModel(net)  # tracked: resumed runs continue the same running average

        def on_step(it: int) -> None:
            if it in wanted:
                averaged.update_parameters(net)

        history = fit_network(
            net,
            lambda x, y, _: loss(net(x), y),
            data.sampler(cfg),
            cfg,
            progress,
            work_dir=work_dir,
            lr_at=schedule,
            on_step=on_step,
            tracked={"swa": averaged},
        )
        return {"warm_start": warm, **self._finish(net, averaged, history, data, cfg, progress)}

    def _finish(
        self, net, averaged: AveragedModel, history: dict, data: TrainingData, cfg: TrainConfig, progress
    ) -> dict:
        """Load the running average into the network (re-estimating batch-norm statistics if any)."""
        o = self.options
        self.averaged_count = int(averaged.n_averaged)
        if self.averaged_count == 0:  # stopped by the time budget before the constant phase: keep the last weights
            averaged.update_parameters(net)
            self.averaged_count = 1
        if self.net_config.norm == "batch":
            progress(0, 1, "re-estimating batch-norm statistics of the averaged weights")
            sampler = data.sampler(cfg, seed_offset=777)
            batches = [sampler.sample(cfg.batch_size)[0] for _ in range(o.bn_batches)]
            update_bn(batches, averaged, device=self.device)
        net.load_state_dict(averaged.module.state_dict())
        net.eval()
        return {"net": history, "averaged_checkpoints": self.averaged_count}

    def window_statistics(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        net = self.nets["net"]
        net.eval()
        return single_sample_statistics(self.probabilities(net(x)))

    def n_samples(self) -> int:
        return 1

    def extra_state(self) -> dict:
        return {"averaged_checkpoints": self.averaged_count}

    def load_extra_state(self, state: dict) -> None:
        self.averaged_count = int(state.get("averaged_checkpoints", 0))
