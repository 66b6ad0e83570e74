"""Deep ensemble (Lakshminarayanan et al. 2017): M independently initialised and shuffled U-Nets."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.func import functional_call, stack_module_state

from napari_uqseg.core.progress import Progress
from napari_uqseg.engine.methods.base import TrainingData, UQMethod, register
from napari_uqseg.engine.statistics import SampleStatistics
from napari_uqseg.engine.training import TrainConfig, fit_network, segmentation_loss
from napari_uqseg.engine.unet import UNet


@dataclass
class DeepEnsembleOptions:
    """``members``: M networks, each with its own initialisation seed and patch order.

    ``batched``: run all members in one vectorised forward (``torch.func`` stacked weights; the
    convolutions become grouped convolutions), activation memory M times one member's, on a GPU and, on
    the CPU, for a single window (a batch of windows runs faster as the loop there: docs/benchmarks.md);
    ``False`` is the plain reference loop, one member at a time.
    """

    members: int = 5
    seed: int = 0
    batched: bool = True


@register
class DeepEnsemble(UQMethod):
    name = "deep_ensemble"
    summary = "deep ensemble of M independently trained U-Nets (M passes)"
    Options = DeepEnsembleOptions

    def build(self) -> None:
        for k in range(self.options.members):
            with torch.random.fork_rng():
                torch.manual_seed(self.options.seed + 1000 * k)
                self.nets[f"member_{k}"] = UNet(self.net_config)
        self._stack_key: tuple | None = None  # see stacked_forward

    def members(self) -> list[torch.nn.Module]:
        return [self.nets[f"member_{k}"] for k in range(self.options.members)]

    def stacked_forward(self) -> tuple[Callable, dict, dict]:
        """``(forward, params, buffers)``: the members' weights stacked on a leading axis and a vmapped
        forward, ``forward(params, buffers, x)`` giving ``(M, B, C, *S)`` logits for ``x`` ``(B, 1, *S)``.

        Rebuilt whenever a member's tensors moved or changed (``_version`` counts in-place updates:
        training, loading) or the members' train/eval mode changed (the skeleton copies it).
        """
        members = self.members()
        tensors = (t for m in members for t in (*m.parameters(), *m.buffers()))
        key = (members[0].training, *((t.data_ptr(), t._version) for t in tensors))
        if self._stack_key != key:
            params, buffers = stack_module_state(members)
            skeleton = copy.deepcopy(members[0]).to("meta")  # architecture only; weights come from the stack

            def forward(p: dict, b: dict, x: torch.Tensor) -> torch.Tensor:
                return functional_call(skeleton, (p, b), (x,))

            self._stack = (torch.vmap(forward, in_dims=(0, 0, None)), params, buffers)
            self._stack_key = key
        return self._stack

    def fit(self, data: TrainingData, cfg: TrainConfig, progress: Progress, work_dir: Path | None) -> dict:
        loss = segmentation_loss()
        histories = {}
        for k, net in enumerate(self.members()):
            histories[f"member_{k}"] = fit_network(
                net,
                lambda x, y, _, net=net: loss(net(x), y),
                data.sampler(cfg, seed_offset=1000 * k),
                cfg,
                progress,
                tag=f"member_{k}",
                work_dir=work_dir,
                validate=self.net_validator(data, net),
            )
        return histories

    def window_statistics(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        stats = SampleStatistics()
        # the stack is a copy: inference only
        if self.options.batched and not torch.is_grad_enabled() and (x.is_cuda or x.shape[0] == 1):
            forward, params, buffers = self.stacked_forward()
            stats.add(self.probabilities(forward(params, buffers, x), dim=2), stacked=True)  # (M, B, C, *S)
            return stats.result()
        for net in self.members():
            stats.add(self.probabilities(net(x)))
        return stats.result()

    def n_samples(self) -> int:
        return self.options.members
