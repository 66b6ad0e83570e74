"""Deterministic U-Net: softmax probabilities, calibrated by temperature scaling on validation NLL."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from napari_uqseg.core.progress import Progress
from napari_uqseg.engine.methods.base import TrainingData, UQMethod, register
from napari_uqseg.engine.statistics import single_sample_statistics
from napari_uqseg.engine.temperature import fit_method_temperature
from napari_uqseg.engine.training import TrainConfig, fit_network, segmentation_loss
from napari_uqseg.engine.unet import UNet


@dataclass
class DeterministicOptions:
    """Deterministic options.

    Attributes
    ----------
    temperature_scaling : bool
        Fit T on validation voxels after training (argmax, hence Dice, unchanged).
    from_model, from_net : str or None, str
        Take the trained plain U-Net ``from_net`` of the model folder ``from_model`` (e.g. a deep ensemble's
        ``"member_0"``, which trains as this method would) instead of training one; the temperature is still
        fitted. ``None``: train.
    """

    temperature_scaling: bool = True
    from_model: str | None = None
    from_net: str = "net"


@register
class Deterministic(UQMethod):
    name = "deterministic"
    summary = "plain U-Net softmax with temperature scaling (baseline, 1 pass)"
    maps = ("entropy",)
    Options = DeterministicOptions

    def build(self) -> None:
        self.nets["net"] = UNet(self.net_config)

    def fit(self, data: TrainingData, cfg: TrainConfig, progress: Progress, work_dir: Path | None) -> dict:
        net, o = self.nets["net"], self.options
        if o.from_model:
            from napari_uqseg.engine.model_folder import trained_unet  # the store imports the method registry

            trained, history = trained_unet(o.from_model, o.from_net, self.net_config, cfg.normalisation, data.val)
            net.load_state_dict(trained.state_dict())
        else:
            loss = segmentation_loss()
            history = fit_network(
                net,
                lambda x, y, _: loss(net(x), y),
                data.sampler(cfg),
                cfg,
                progress,
                work_dir=work_dir,
                validate=self.validator(data),
            )
        if o.temperature_scaling and data.val:
            progress(0, 1, "fitting temperature on validation voxels")
            self.temperature = fit_method_temperature(self, data.val)
        return {"net": history, "temperature": self.temperature}

    def window_statistics(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return single_sample_statistics(self.probabilities(self.nets["net"](x)))

    def n_samples(self) -> int:
        return 1
