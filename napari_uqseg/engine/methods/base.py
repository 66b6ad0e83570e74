"""The method interface every uncertainty method implements, and the registry of methods by name."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.options import look_up_option, options_from_dict
from napari_uqseg.core.progress import Progress
from napari_uqseg.core.records import MethodInfo
from napari_uqseg.engine.augment import PatchAugmenter
from napari_uqseg.engine.checkpoint import atomic_torch_save
from napari_uqseg.engine.data import Case, PatchSampler
from napari_uqseg.engine.plateau import Forward, validation_dice
from napari_uqseg.engine.replay import ReplayPatchSampler
from napari_uqseg.engine.training import TrainConfig
from napari_uqseg.engine.unet import UNetConfig

WEIGHTS_FILE = "weights.pt"


@dataclass
class NoOptions:
    """A method without options."""


@dataclass
class TrainingData:
    """Cases a method trains on: ``train`` for optimisation, ``val`` for calibration/model checks.

    ``replay`` cases (fine-tuning: the original training cases) fill ``replay_fraction`` of every batch.
    """

    train: list[Case]
    val: list[Case]
    num_classes: int
    replay: list[Case] = field(default_factory=list)
    replay_fraction: float = 0.0

    def sampler(self, cfg: TrainConfig, seed_offset: int = 0) -> PatchSampler | ReplayPatchSampler:
        seed = cfg.seed + seed_offset
        augment = PatchAugmenter.from_recipe(cfg.augment, len(cfg.patch_size))
        if self.replay and self.replay_fraction > 0:
            return ReplayPatchSampler(
                self.train, self.replay, cfg.patch_size, self.replay_fraction, cfg.foreground_fraction, seed, augment
            )
        return PatchSampler(self.train, cfg.patch_size, cfg.foreground_fraction, seed, augment)


class UQMethod(ABC):
    """One uncertainty method: its networks, training recipe and per-window sampling.

    Subclasses set ``name``, ``summary``, ``maps``, an ``Options`` dataclass, build their networks
    into ``self.nets`` in ``build`` and implement ``fit`` and ``window_statistics``.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    maps: ClassVar[tuple[str, ...]] = ("entropy", "expected_entropy", "mutual_information", "class_std")
    Options: ClassVar[type] = NoOptions

    def __init__(self, net_config: UNetConfig, options: dict[str, Any] | None = None) -> None:
        self.net_config = net_config
        self.options = options_from_dict(self.Options, options or {}, f"{self.name} options")
        self.patch_size: tuple[int, ...] = (64,) * net_config.spatial_dims
        self.normalisation = "zscore"
        self.device = torch.device("cpu")
        self.temperature = 1.0  # post-hoc calibration of every sample's logits (engine.temperature)
        self.review_map: str | None = None  # the map whose queue found most errors on validation (uqseg loop methods)
        self.case_score: str | None = None  # the worklist's score chosen on validation (core.case_scores)
        self.nets = nn.ModuleDict()
        self.build()

    # -- to implement -------------------------------------------------------------------------
    @abstractmethod
    def build(self) -> None:
        """Create the networks in ``self.nets`` (and buffers that define the model)."""

    @abstractmethod
    def fit(self, data: TrainingData, cfg: TrainConfig, progress: Progress, work_dir: Path | None) -> dict:
        """Train with the paper's recipe; resumable through ``work_dir``. Returns a training summary."""

    @abstractmethod
    def window_statistics(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Sample the method on one batch of windows ``x`` ``(B, in_ch, *patch)``.

        Returns ``mean_prob``, ``mean_sq_prob`` ``(B, C, *patch)``, ``expected_entropy``
        ``(B, 1, *patch)`` and optional method-specific maps ``(B, 1, *patch)``.
        """

    @abstractmethod
    def n_samples(self) -> int:
        """Stochastic samples (members, masks, heads x samples) behind one prediction."""

    def forward_passes(self) -> float:
        """Full-network forward passes per prediction (shared parts counted once)."""
        return float(self.n_samples())

    # -- shared behaviour ---------------------------------------------------------------------
    def validator(self, data: TrainingData, forward: Forward | None = None) -> Callable[[], float] | None:
        """The plateau rule's score: mean foreground Dice of ``forward`` on the validation cases.

        ``forward`` maps windows to probabilities; by default the method's pooled prediction
        (``window_statistics``). ``None`` when there are no validation cases.
        """
        if not data.val:
            return None
        forward = forward or (lambda x: self.window_statistics(x)["mean_prob"])
        return lambda: validation_dice(forward, data.val, self.patch_size, data.num_classes, self.device)

    def net_validator(self, data: TrainingData, net: nn.Module) -> Callable[[], float] | None:
        """:meth:`validator` of one plain network's softmax (float32 whatever the logits' precision)."""
        return self.validator(data, lambda x: torch.softmax(net(x).float(), dim=1))

    def probabilities(self, logits: torch.Tensor, dim: int = 1) -> torch.Tensor:
        """Softmax of ``logits / temperature`` along the class axis ``dim``: every sample's class
        probabilities at inference (calibrate-then-pool; training losses use the raw logits); float32
        whatever the logits' precision (``engine.precision``)."""
        return torch.softmax(logits.float() / self.temperature, dim=dim)

    def extra_state(self) -> dict[str, Any]:
        """JSON-able state that defines the model beyond ``self.nets`` (e.g. a temperature)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook, no-op by default
        """Inverse of ``extra_state``."""

    def save_weights(self, model_dir: Path) -> None:
        atomic_torch_save(self.nets.state_dict(), model_dir / WEIGHTS_FILE)

    def load_weights(self, model_dir: Path) -> None:
        path = model_dir / WEIGHTS_FILE
        if not path.is_file():
            raise InputError(str(path), "model weights are missing")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            self.nets.load_state_dict(state)
        except Exception as exc:  # truncated file, foreign pickle, wrong architecture
            raise InputError(str(path), f"cannot load the weights ({exc.__class__.__name__}: {exc})") from exc

    def to(self, device: torch.device | str) -> UQMethod:
        self.device = torch.device(device)
        self.nets.to(self.device)
        return self

    def eval(self) -> None:
        self.nets.eval()

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.nets.parameters())

    def info(self) -> MethodInfo:
        return MethodInfo(self.name, self.summary, self.forward_passes(), tuple(self.maps))


def options_dict(method: UQMethod) -> dict[str, Any]:
    return asdict(method.options)


_REGISTRY: dict[str, type[UQMethod]] = {}


def register(cls: type[UQMethod]) -> type[UQMethod]:
    """Class decorator adding a method to the registry under ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


def method_class(name: str) -> type[UQMethod]:
    """The registered class for ``name``.

    Raises
    ------
    InputError
        Unknown method, listing the known ones.
    """
    import napari_uqseg.engine.methods  # noqa: F401  (registers every method)

    return _REGISTRY[look_up_option("--method", name, sorted(_REGISTRY), "method")]


def registered_methods() -> dict[str, type[UQMethod]]:
    import napari_uqseg.engine.methods  # noqa: F401

    return dict(_REGISTRY)
