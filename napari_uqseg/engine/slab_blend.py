"""Gaussian-blended sliding window whose accumulators hold one slab of windows, not the whole volume.

The windows, their order along every axis, the padding of a volume smaller than the window and the
Gaussian importance map are MONAI's (``monai.inferers.sliding_window_inference``); what differs is where the
blended sums live. Windows are processed one *row* at a time (all windows with the same start along the
*slab axis*, the axis with the most windows); once a row is done, the planes before the next row's start
receive no more windows, so they are divided by their weight and handed out, and the accumulators shift.
Accumulators therefore cover ``patch[axis]`` planes of the volume, whatever its size, and every statistic
is handed out in chunks of a few planes, so no full-size float temporary is ever made. Input windows are
cut and z-scored from the raw volume on the fly: no normalised copy of the volume exists either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import groupby

import numpy as np
import torch
from monai.data.utils import dense_patch_slices
from monai.data.utils import get_valid_patch_size as _valid_patch
from monai.inferers.utils import _get_scan_interval, compute_importance_map

from napari_uqseg.core.progress import Progress, no_progress

#: voxels handed out per chunk, at least one plane (bounds every temporary made from the blended sums)
CHUNK_VOXELS = 1 << 19

WindowPredictor = Callable[[torch.Tensor], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class WindowGrid:
    """Where MONAI's sliding window puts its windows on a volume of ``shape``.

    Attributes
    ----------
    shape : tuple of int
        The volume's spatial shape.
    padded : tuple of int
        Shape after padding every axis shorter than the patch up to the patch (centred, as MONAI pads).
    pad_before : tuple of int
        Voxels of padding before the volume on every axis.
    starts : list of tuple of int
        Window start corners in padded coordinates, in MONAI's order.
    axis : int
        The slab axis: the one where the patch covers the smallest fraction of the padded volume.
    """

    shape: tuple[int, ...]
    patch: tuple[int, ...]
    padded: tuple[int, ...]
    pad_before: tuple[int, ...]
    starts: list[tuple[int, ...]]
    axis: int


def window_grid(shape: tuple[int, ...], patch: tuple[int, ...], overlap: float) -> WindowGrid:
    """The windows MONAI's ``sliding_window_inference`` visits for ``shape``, ``patch`` and ``overlap``."""
    dims = len(shape)
    padded = tuple(max(s, p) for s, p in zip(shape, patch, strict=True))
    pad_before = tuple(max(p - s, 0) // 2 for s, p in zip(shape, patch, strict=True))
    interval = _get_scan_interval(padded, patch, dims, (overlap,) * dims)
    starts = [tuple(s.start for s in window) for window in dense_patch_slices(padded, patch, interval)]
    axis = min(range(dims), key=lambda d: patch[d] / padded[d])
    return WindowGrid(tuple(shape), tuple(patch), padded, pad_before, starts, axis)


def importance_map(patch: tuple[int, ...]) -> torch.Tensor:
    """MONAI's Gaussian window weights ``(*patch)`` float32 (``sigma_scale=0.125``), on the CPU."""
    return compute_importance_map(_valid_patch(patch, patch), mode="gaussian", device="cpu", dtype=torch.float32)


class WindowSource:
    """Cuts z-scored input windows ``(in_ch=1, *patch)`` from a raw volume, padding with ``cval``.

    Parameters
    ----------
    array : np.ndarray
        Raw intensities ``(*S)``, any real dtype; never copied.
    scale : callable
        Raw values (any shape) -> normalised float32 values (the volume's z-scoring).
    cval : float
        Normalised value of the padding (the volume's minimum, its background).
    """

    def __init__(self, array: np.ndarray, grid: WindowGrid, scale: Callable[[np.ndarray], np.ndarray], cval: float):
        self.array, self.grid, self.scale, self.cval = array, grid, scale, cval

    def window(self, start: tuple[int, ...]) -> torch.Tensor:
        src, dst = [], []
        for st, p, before, n in zip(start, self.grid.patch, self.grid.pad_before, self.grid.shape, strict=True):
            lo = st - before
            src.append(slice(max(lo, 0), min(lo + p, n)))
            dst.append(slice(max(lo, 0) - lo, min(lo + p, n) - lo))
        block = self.scale(self.array[tuple(src)])
        if block.shape == self.grid.patch:
            return torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32))[None]
        out = np.full(self.grid.patch, self.cval, dtype=np.float32)
        out[tuple(dst)] = block
        return torch.from_numpy(out)[None]


class SlabAccumulator:
    """Weighted sums of every statistic over ``patch[axis]`` planes of the padded volume, and their weight."""

    def __init__(self, grid: WindowGrid, weights: torch.Tensor) -> None:
        self.grid, self.weights = grid, weights
        self.depth = grid.patch[grid.axis]
        self.base = 0  # padded plane index of the accumulators' first plane
        self.sums: dict[str, torch.Tensor] = {}
        plane_shape = list(grid.padded)
        plane_shape[grid.axis] = self.depth
        self.count = torch.zeros(plane_shape, dtype=torch.float32)

    def _region(self, start: tuple[int, ...]) -> tuple[slice, ...]:
        region = [slice(s, s + p) for s, p in zip(start, self.grid.patch, strict=True)]
        a = self.grid.axis
        region[a] = slice(start[a] - self.base, start[a] - self.base + self.depth)
        return tuple(region)

    def add(self, start: tuple[int, ...], stats: dict[str, torch.Tensor]) -> None:
        """Add one window's statistics ``{name: (ch, *patch)}`` at ``start`` (padded coordinates)."""
        region = self._region(start)
        for name, value in stats.items():
            if name not in self.sums:
                self.sums[name] = torch.zeros((value.shape[0], *self.count.shape), dtype=torch.float32)
            self.sums[name][(slice(None), *region)].addcmul_(value.float(), self.weights)
        self.count[region] += self.weights

    def finished(self, stop: int) -> Iterator[tuple[slice, dict[str, torch.Tensor]]]:
        """Blended means of padded planes ``[base, stop)``, in chunks, as ``(region in the volume, stats)``.

        ``region`` is a tuple of slices into the unpadded volume; ``stats`` are ``(ch, *region shape)``.
        """
        g, a = self.grid, self.grid.axis
        crop = [slice(b, b + s) for b, s in zip(g.pad_before, g.shape, strict=True)]
        lo, hi = max(self.base, g.pad_before[a]), min(stop, g.pad_before[a] + g.shape[a])
        planes = max(1, CHUNK_VOXELS * g.shape[a] // int(np.prod(g.shape)))
        for first in range(lo, hi, planes):
            last = min(first + planes, hi)
            local = list(crop)
            local[a] = slice(first - self.base, last - self.base)
            count = self.count[tuple(local)]
            stats = {name: s[(slice(None), *local)] / count for name, s in self.sums.items()}
            region = [slice(0, n) for n in g.shape]
            region[a] = slice(first - g.pad_before[a], last - g.pad_before[a])
            yield tuple(region), stats

    def shift_to(self, base: int) -> None:
        """Drop the planes before padded plane ``base`` and zero the planes that come free."""
        shift, keep = base - self.base, self.depth - (base - self.base)
        tensors = [self.count, *self.sums.values()]
        lead = [0] + [1] * len(self.sums)  # channel axis first for the sums
        for t, offset in zip(tensors, lead, strict=True):
            ax = self.grid.axis + offset
            for p in range(0, max(keep, 0), shift):  # forward copy in chunks of <= shift planes: no overlap
                n = min(shift, keep - p)
                t.narrow(ax, p, n).copy_(t.narrow(ax, p + shift, n))
            t.narrow(ax, max(keep, 0), self.depth - max(keep, 0)).zero_()
        self.base = base


def blended_chunks(
    predictor: WindowPredictor,
    source: WindowSource,
    sw_batch_size: int = 1,
    progress: Progress = no_progress,
) -> Iterator[tuple[tuple[slice, ...], dict[str, torch.Tensor]]]:
    """Every window through ``predictor``, blended; yields ``(region, stats)`` chunks covering the volume once.

    ``predictor`` maps windows ``(B, 1, *patch)`` to ``{name: (B, ch, *patch)}`` (on any device).
    Chunks come in increasing order along ``source.grid.axis``.
    """
    grid = source.grid
    acc = SlabAccumulator(grid, importance_map(grid.patch))
    rows = [list(row) for _, row in groupby(sorted(grid.starts, key=lambda s: s[grid.axis]), lambda s: s[grid.axis])]
    done, total = 0, len(grid.starts)
    for i, row in enumerate(rows):
        if i:
            acc.shift_to(row[0][grid.axis])
        for b in range(0, len(row), sw_batch_size):
            batch = row[b : b + sw_batch_size]
            out = predictor(torch.stack([source.window(s) for s in batch]))
            for j, start in enumerate(batch):
                acc.add(start, {name: value[j].cpu() for name, value in out.items()})
            done += len(batch)
            progress(done, total, "predicting windows")
        stop = rows[i + 1][0][grid.axis] if i + 1 < len(rows) else grid.padded[grid.axis]
        yield from acc.finished(stop)
