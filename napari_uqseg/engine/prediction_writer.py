"""A prediction's outputs assembled chunk by chunk from blended window statistics (numpy).

Each chunk of blended statistics (a box of a few planes, see ``engine.slab_blend``) becomes its part of the mask,
the kept class probabilities and the uncertainty maps, written into preallocated arrays at
``output_dtype``; the volume sums behind the structure-volume scales are added up on the way. Nothing
full-size is made besides the outputs themselves.

Output precision: the mask is the argmax of the float32 blended probabilities (identical to a float32
output). ``float16`` probabilities are within 2.5e-4 of the float32 value (half a float16 step below 1);
``float16`` maps within a relative 4.9e-4 (below 5e-4 nats up to 1 nat, 1e-3 up to 2 nats). Both are far
below a display level (the wire and the viewers' colour maps use 1/255 of the range, 3.9e-3 for
probabilities) and below what the uncertainty metrics resolve.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.uncertainty import uncertainty_maps
from napari_uqseg.core.volume_intervals import scales_from_sums, volume_scale_sums

OUTPUT_DTYPES = ("float16", "float32")
#: the pooled statistics every method returns; any other statistic is a method-specific map
POOLED = ("mean_prob", "mean_sq_prob", "expected_entropy")


def needed_statistics(names: Sequence[str], n_samples: int) -> list[str]:
    """The window statistics a prediction blends: ``mean_prob``, the sample moments when ``n_samples > 1``,
    and every method-specific map (``names``: what the method's ``window_statistics`` returns)."""
    moments = ("mean_sq_prob", "expected_entropy") if n_samples > 1 else ()
    return [n for n in names if n == "mean_prob" or n in moments or n not in POOLED]


class PredictionWriter:
    """Mask, probabilities and maps of a volume of shape ``(*S)``, filled in by ``write`` chunks.

    Parameters
    ----------
    shape : tuple of int
        Spatial shape ``(*S)``.
    n_samples : int
        Samples behind the pooled statistics.
    maps : sequence of str
        Map names to keep (the method's ``maps``).
    output_dtype : str
        ``float16`` (default) or ``float32`` for probabilities and maps.
    probability_classes : sequence of int or None
        Classes whose probabilities are kept (``None``: every class).
    """

    def __init__(
        self,
        shape: tuple[int, ...],
        n_samples: int,
        maps: Sequence[str],
        output_dtype: str = "float16",
        probability_classes: Sequence[int] | None = None,
    ) -> None:
        if output_dtype not in OUTPUT_DTYPES:
            raise InputError("output_dtype", f"must be one of {OUTPUT_DTYPES}, got {output_dtype!r}")
        self.shape, self.n_samples, self.keep = tuple(shape), n_samples, tuple(maps)
        self.dtype = np.dtype(output_dtype)
        self.classes = None if probability_classes is None else [int(c) for c in probability_classes]
        self.mask = np.zeros(self.shape, np.uint8)
        self.probabilities: np.ndarray | None = None
        self.maps: dict[str, np.ndarray] = {}
        self.sums: dict[str, np.ndarray] = {}

    def _allocate(self, num_classes: int, names: list[str]) -> None:
        classes = list(range(num_classes)) if self.classes is None else self.classes
        bad = [c for c in classes if not 0 <= c < num_classes]
        if bad:
            raise InputError("probability_classes", f"classes {bad} outside 0..{num_classes - 1}")
        self.classes = classes
        self.probabilities = np.zeros((len(classes), *self.shape), self.dtype)
        self.maps = {name: np.zeros(self.shape, self.dtype) for name in names}

    def write(self, region: tuple[slice, ...], stats: dict[str, np.ndarray]) -> None:
        """Fill ``region`` (slices of ``(*S)``) from blended statistics ``{name: (ch, *region)}``."""
        mean_prob = stats["mean_prob"]
        maps = uncertainty_maps(
            mean_prob,
            stats.get("mean_sq_prob"),
            stats["expected_entropy"][0] if "expected_entropy" in stats else None,
            self.n_samples,
        )
        for name, value in stats.items():  # method-specific maps, e.g. the DUDES distilled std
            if name not in POOLED:
                maps[name] = value[0]
        maps = {name: maps[name] for name in self.keep if name in maps}
        if self.probabilities is None:
            self._allocate(mean_prob.shape[0], list(maps))
        self.mask[region] = np.argmax(mean_prob, axis=0)
        self.probabilities[(slice(None), *region)] = mean_prob[self.classes]
        for name, value in maps.items():
            self.maps[name][region] = value
        for source, value in volume_scale_sums(mean_prob, stats.get("mean_sq_prob"), self.n_samples).items():
            self.sums[source] = self.sums.get(source, 0.0) + value

    def scales(self) -> dict[str, np.ndarray]:
        """Structure-volume scales in voxels (``core.volume_intervals.volume_scales`` of the whole volume)."""
        return scales_from_sums(self.sums)
