"""Options of one prediction, shared by ``uqseg predict``, the engine's prediction writer and the server.

One dataclass, one set of defaults and one choice of review map, so the CLI, the engine and the server
rank the same prediction the same way (docs/architecture.md, "Prediction options").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.options import check_known, look_up_option
from napari_uqseg.core.records import Prediction
from napari_uqseg.core.review import ReviewRanking, build_review
from napari_uqseg.core.wire import NAME_PATTERN, TTA_MODES

#: the review map when none is asked for: the first of these the prediction has (mutual information, the
#: epistemic part, for sampling methods; entropy, which every method has, otherwise)
DEFAULT_REVIEW_MAPS = ("mutual_information", "entropy")
#: network arithmetic of a prediction (``engine.precision``): ``auto`` is bfloat16 on CPUs with native bfloat16
PRECISIONS = ("auto", "float32", "bfloat16")


@dataclass(frozen=True)
class PredictOptions:
    """Inference and review options of one prediction (the model-defining options are fixed by the model).

    Attributes
    ----------
    review_map : str or None
        Uncertainty map that ranks the review regions; ``None``: the model's default, else the first of
        :data:`DEFAULT_REVIEW_MAPS` (``review_map_of``).
    axis : int
        Axis (0, 1 or 2) along which slices are scored.
    overlap : float
        Sliding-window overlap in [0, 0.9].
    sw_batch_size : int
        Windows per forward pass (>= 1).
    float32 : bool
        Keep float32 copies of the outputs (server only).
    tta : str
        Test-time augmentation mode, one of ``core.wire.TTA_MODES``.
    precision : str
        Network arithmetic, one of :data:`PRECISIONS` (``float32`` switches the bfloat16 default back).
    """

    review_map: str | None = None
    axis: int = 0
    overlap: float = 0.25
    sw_batch_size: int = 1
    float32: bool = False
    tta: str = "none"
    precision: str = "auto"

    def __post_init__(self) -> None:
        if self.review_map is not None and not (
            isinstance(self.review_map, str) and NAME_PATTERN.fullmatch(self.review_map)
        ):
            raise InputError("options.review_map", "must be a map name")
        if not isinstance(self.axis, int) or isinstance(self.axis, bool) or not 0 <= self.axis <= 2:
            raise InputError("options.axis", "must be 0, 1 or 2")
        if not isinstance(self.overlap, int | float) or not 0.0 <= float(self.overlap) <= 0.9:
            raise InputError("options.overlap", "must be a number in [0, 0.9]")
        if not isinstance(self.sw_batch_size, int) or isinstance(self.sw_batch_size, bool) or self.sw_batch_size < 1:
            raise InputError("options.sw_batch_size", "must be an integer >= 1")
        if not isinstance(self.float32, bool):
            raise InputError("options.float32", "must be true or false")
        look_up_option("options.tta", self.tta, TTA_MODES, "TTA mode")
        look_up_option("options.precision", self.precision, PRECISIONS, "precision")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names, in declaration order."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_dict(cls, options: Mapping[str, Any] | None, max_sw_batch_size: int | None = None) -> PredictOptions:
        """Options from a JSON object (missing keys take the defaults).

        Raises
        ------
        InputError
            Not an object, an unknown key, a bad value, or ``sw_batch_size`` above ``max_sw_batch_size``.
        """
        if options is None:
            options = {}
        if not isinstance(options, Mapping):
            raise InputError("options", "must be an object")
        check_known("options", options, cls.names())
        opts = cls(**options)
        if max_sw_batch_size is not None and opts.sw_batch_size > max_sw_batch_size:
            raise InputError("options.sw_batch_size", f"must be an integer in [1, {max_sw_batch_size}]")
        return opts

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def review_map_of(self, maps: Mapping[str, Any], method: str, model_default: str | None = None) -> str:
        """The map that ranks the review of a prediction with these ``maps`` (by ``method``).

        The asked ``review_map``; else the model's own default (chosen on its validation cases, carried in
        ``Prediction.info["review_map"]``) when the prediction has it; else the first of :data:`DEFAULT_REVIEW_MAPS`.

        Raises
        ------
        InputError
            The asked map is not one of ``maps`` (or the prediction has none of the defaults).
        """
        if self.review_map is None:
            for name in (model_default, *DEFAULT_REVIEW_MAPS):
                if name in maps:
                    return name
        if self.review_map not in maps:
            raise InputError(
                "options.review_map", f"{self.review_map!r} is not a map of {method}; maps: {sorted(maps)}"
            )
        return self.review_map

    def review_ranking(self, prediction: Prediction) -> ReviewRanking:
        """The review ranking of ``prediction`` under these options (``core.review.build_review``)."""
        name = self.review_map_of(prediction.maps, prediction.method, prediction.info.get("review_map"))
        maps: dict[str, np.ndarray] = {key: volume.array for key, volume in prediction.maps.items()}
        return build_review(
            maps[name],
            prediction.mask.array,
            self.axis,
            name,
            probabilities=prediction.probabilities.array,
            maps=maps,
            method=prediction.method,
            model_case_score=prediction.info.get("case_score"),
        )
