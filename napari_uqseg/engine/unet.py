"""A compact 2D/3D U-Net whose stages are exposed so methods can insert layers and split the decoder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from monai.networks.blocks import UnetBasicBlock, UnetOutBlock, UnetUpBlock
from torch import nn

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.options import options_from_dict


@dataclass
class UNetConfig:
    """Architecture of the segmentation network.

    Attributes
    ----------
    spatial_dims : int
        2 or 3.
    in_channels, num_classes : int
        Input channels and output classes (background included).
    channels : tuple of int
        Feature width per resolution level; ``len(channels)`` levels, ``len - 1`` down-samplings.
    norm : str
        ``"instance"`` (nnU-Net default; no batch statistics to mix samples) or ``"batch"``.
    dropout : float
        Rate of the dropout layers placed at ``dropout_where`` (0 disables them).
    dropout_kind : str
        ``"element"`` (``nn.Dropout``) or ``"channel"`` (``nn.Dropout2d/3d``).
    dropout_where : str
        ``"decoder"`` (bottleneck and decoder stages, where Bayesian SegNet puts it) or ``"all"``.
    """

    spatial_dims: int = 3
    in_channels: int = 1
    num_classes: int = 3
    channels: tuple[int, ...] = (16, 32, 64, 128)
    norm: str = "instance"
    dropout: float = 0.0
    dropout_kind: str = "element"
    dropout_where: str = "decoder"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        if self.spatial_dims not in (2, 3):
            raise InputError("net.spatial_dims", f"must be 2 or 3, got {self.spatial_dims}")
        if len(self.channels) < 2:
            raise InputError("net.channels", "needs at least two levels")
        if self.norm not in ("instance", "batch"):
            raise InputError("net.norm", f"must be 'instance' or 'batch', got {self.norm!r}")
        if self.dropout_kind not in ("element", "channel") or self.dropout_where not in ("decoder", "all"):
            raise InputError("net.dropout_kind/where", "kind must be element|channel, where decoder|all")

    @property
    def divisor(self) -> int:
        """Patch sizes must be multiples of this (2 ** number of down-samplings)."""
        return 2 ** (len(self.channels) - 1)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> UNetConfig:
        return options_from_dict(cls, d, "net")


#: ``factory(channels) -> module`` builds a layer placed after a U-Net stage.
StageLayerFactory = Callable[[int], nn.Module]


class UNet(nn.Module):
    """U-Net with residual-free nnU-Net-style stages (conv-norm-lrelu x2).

    ``forward(x)``: ``(B, in_channels, *S) -> (B, num_classes, *S)`` logits, ``S`` divisible by
    ``config.divisor``. ``encode``/``decode`` expose the stages; ``stage_layers`` hold one layer after
    every encoder and decoder stage (identity unless a method sets them, e.g. dropout, Masksembles).
    """

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        dims, ch, norm = config.spatial_dims, config.channels, config.norm
        self.encoders = nn.ModuleList(
            UnetBasicBlock(dims, config.in_channels if i == 0 else ch[i - 1], ch[i], 3, 1 if i == 0 else 2, norm)
            for i in range(len(ch))
        )
        self.decoders = nn.ModuleList(
            UnetUpBlock(dims, ch[i], ch[i - 1], 3, 1, 2, norm) for i in range(len(ch) - 1, 0, -1)
        )
        self.head = UnetOutBlock(dims, ch[0], config.num_classes)
        self.encoder_layers = nn.ModuleList(nn.Identity() for _ in self.encoders)
        self.decoder_layers = nn.ModuleList(nn.Identity() for _ in self.decoders)
        if config.dropout > 0:
            self.set_stage_layers(self._dropout_factory(), encoder=config.dropout_where == "all")

    @property
    def decoder_channels(self) -> list[int]:
        """Output width of each decoder stage, deepest first."""
        return list(reversed(self.config.channels[:-1]))

    def _dropout_factory(self) -> StageLayerFactory:
        cfg = self.config
        if cfg.dropout_kind == "element":
            return lambda _: nn.Dropout(cfg.dropout)
        drop = nn.Dropout3d if cfg.spatial_dims == 3 else nn.Dropout2d
        return lambda _: drop(cfg.dropout)

    def set_stage_layers(self, factory: StageLayerFactory, encoder: bool = False) -> None:
        """Place ``factory(channels)`` after the bottleneck and every decoder stage (and encoders if asked)."""
        ch = self.config.channels
        self.encoder_layers[-1] = factory(ch[-1])
        if encoder:
            for i in range(len(ch) - 1):
                self.encoder_layers[i] = factory(ch[i])
        for j, width in enumerate(self.decoder_channels):
            self.decoder_layers[j] = factory(width)

    def stages(self) -> list[nn.Module]:
        """The stages in execution order: encoders (shallow first), decoders (deepest first), output head."""
        return [*self.encoders, *self.decoders, self.head]

    def run_stages(
        self, h: torch.Tensor, skips: list[torch.Tensor], start: int, stop: int
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Run stages ``start:stop`` (indices into ``stages()``) from the state ``(h, skips)``.

        Running every stage from ``(x, [])`` equals ``forward(x)``; methods use sub-ranges to compute a
        shared prefix once (partial_bayes) or to hand the last stages to separate heads (VI-MH).
        """
        n_enc, n_dec = len(self.encoders), len(self.decoders)
        skips = list(skips)
        for k in range(start, stop):
            if k < n_enc:
                h = self.encoder_layers[k](self.encoders[k](h))
                if k < n_enc - 1:  # every encoder output but the bottleneck is a skip
                    skips.append(h)
            elif k < n_enc + n_dec:
                j = k - n_enc
                h = self.decoder_layers[j](self.decoders[j](h, skips[-1 - j]))
            else:
                h = self.head(h)
        return h, skips

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Returns the bottleneck features and the skip features (shallow first)."""
        return self.run_stages(x, [], 0, len(self.encoders))

    def decode(
        self, h: torch.Tensor, skips: list[torch.Tensor], start: int = 0, stop: int | None = None
    ) -> torch.Tensor:
        """Run decoder stages ``start:stop`` (deepest first) on ``h`` with the matching skips."""
        n_enc = len(self.encoders)
        stop = len(self.decoders) if stop is None else stop
        return self.run_stages(h, skips, n_enc + start, n_enc + stop)[0]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last decoder features ``(B, channels[0], *S)`` (input of the output head)."""
        h, skips = self.encode(x)
        return self.decode(h, skips)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
