"""Test-time augmentation (TTA) around any method: flipped and contrast-changed views, pooled as samples.

Each view of a window is sampled by the wrapped method, mapped back to the original orientation, and its
statistics are pooled with the other views' as if every view's samples were the method's own: ``M``
samples in ``V`` views give ``M x V`` samples. A deterministic network therefore gets sample-based maps
(mutual information, class std), and test-time *mirroring* is the ``flips`` mode's mean probability: the
average of the flipped predictions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.options import look_up_option, options_from_dict

if TYPE_CHECKING:
    from napari_uqseg.engine.methods.base import UQMethod

SAMPLE_MAPS = ("entropy", "expected_entropy", "mutual_information", "class_std")


@dataclass(frozen=True)
class TTAOptions:
    """What views TTA adds.

    Attributes
    ----------
    flips : bool
        The original plus one view flipped along each spatial axis (``1 + D`` views).
    intensity : float
        When ``> 0``: two more views of the original orientation with intensities (after normalisation)
        multiplied by ``1 + intensity`` and ``1 - intensity``.
    """

    flips: bool = True
    intensity: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.flips, bool):
            raise InputError("tta.flips", "must be true or false")
        if not isinstance(self.intensity, int | float) or not 0.0 <= self.intensity <= 0.5:
            raise InputError("tta.intensity", f"must be a number in [0, 0.5], got {self.intensity!r}")

    @property
    def key(self) -> str:
        """Canonical name (``"flips"``, ``"flips+intensity0.1"``), the key of its calibration."""
        parts = (["flips"] if self.flips else []) + ([f"intensity{self.intensity:g}"] if self.intensity else [])
        return "+".join(parts) or "none"


def tta_from_key(key: str) -> TTAOptions | None:
    """The TTA options whose ``key`` is ``key`` (``"none"`` -> ``None``); the inverse of :attr:`TTAOptions.key`."""
    if key == "none":
        return None
    parts = key.split("+")
    intensity = next((float(p.removeprefix("intensity")) for p in parts if p.startswith("intensity")), 0.0)
    return TTAOptions(flips="flips" in parts, intensity=intensity)


#: named modes the CLI, the server option and the viewers offer
TTA_MODES: dict[str, TTAOptions | None] = {
    "none": None,
    "flips": TTAOptions(flips=True),
    "flips+intensity": TTAOptions(flips=True, intensity=0.1),
}


def parse_tta(value: str | dict[str, Any] | None) -> TTAOptions | None:
    """A TTA mode name (``TTA_MODES``) or an options dict -> options; ``None`` or ``"none"`` -> no TTA."""
    if value is None or isinstance(value, TTAOptions):
        return value
    if isinstance(value, str):
        return TTA_MODES[look_up_option("tta", value, TTA_MODES, "TTA mode")]
    if isinstance(value, dict):
        return options_from_dict(TTAOptions, value, "tta")
    raise InputError("tta", f"must be a mode name or an options object, got {type(value).__name__}")


def tta_views(options: TTAOptions, spatial_dims: int) -> list[tuple[tuple[int, ...], float]]:
    """``(flipped spatial axes of a (B, C, *S) tensor, intensity factor)`` of every view, the original first."""
    views: list[tuple[tuple[int, ...], float]] = [((), 1.0)]
    if options.flips:
        views += [((2 + d,), 1.0) for d in range(spatial_dims)]
    if options.intensity:
        views += [((), 1.0 + options.intensity), ((), 1.0 - options.intensity)]
    return views


class TestTimeAugmented:
    """``method`` seen through TTA views; behaves as the method for inference (attributes pass through).

    Parameters
    ----------
    method : UQMethod
        Any trained method.
    options : TTAOptions
        The views.
    """

    __test__ = False  # not a pytest test class despite its name

    def __init__(self, method: UQMethod, options: TTAOptions) -> None:
        self.method = method
        self.tta_options = options
        self.views = tta_views(options, method.net_config.spatial_dims)
        self.maps = tuple(dict.fromkeys((*method.maps, *SAMPLE_MAPS)))

    def __getattr__(self, name: str) -> Any:  # everything else is the wrapped method's
        return getattr(self.method, name)

    @property
    def tta(self) -> str:
        return self.tta_options.key

    @torch.no_grad()
    def window_statistics(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mean over views of the method's statistics, each mapped back to ``x``'s orientation."""
        pooled: dict[str, torch.Tensor] = {}
        for axes, factor in self.views:
            view = x * factor if factor != 1.0 else x
            stats = self.method.window_statistics(torch.flip(view, axes) if axes else view)
            for name, value in stats.items():
                value = torch.flip(value, axes) if axes else value
                pooled[name] = pooled[name] + value if name in pooled else value.clone()
        return {name: value / len(self.views) for name, value in pooled.items()}

    def n_samples(self) -> int:
        return self.method.n_samples() * len(self.views)

    def forward_passes(self) -> float:
        return self.method.forward_passes() * len(self.views)


def with_tta(method: UQMethod, tta: str | dict[str, Any] | TTAOptions | None) -> Any:
    """``method`` wrapped in TTA, or ``method`` itself for no TTA."""
    options = parse_tta(tta)
    return method if options is None else TestTimeAugmented(method, options)


def tta_key(method: Any) -> str:
    """``"none"`` for a plain method, the TTA options' key for a wrapped one."""
    return getattr(method, "tta", "none") if isinstance(method, TestTimeAugmented) else "none"
