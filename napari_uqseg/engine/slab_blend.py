"""Gaussian-blended sliding window whose sums are held for one block of windows, not the whole volume.

The windows, their order along every axis, the padding of a volume smaller than the window and the Gaussian
importance map are MONAI's (``engine.window_grid``); what differs is where the blended sums live
(``engine.blend_accumulator``): windows are visited row by row along the grid's slab axis and block by block
within a row; every finished part of the volume is divided by its summed window weights and handed out in
chunks of a few planes, so no full-size float array is ever made. Input windows are cut and z-scored from the
raw volume on the fly: no normalised copy of the volume exists either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import groupby

import numpy as np
import torch

from napari_uqseg.core.progress import Progress, no_progress
from napari_uqseg.engine.blend_accumulator import BlockAccumulator
from napari_uqseg.engine.window_grid import WindowGrid, importance_map

WindowPredictor = Callable[[torch.Tensor], dict[str, torch.Tensor]]


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


def _groups(starts: list[tuple[int, ...]], axis: int) -> list[tuple[int, list[tuple[int, ...]]]]:
    """``starts`` grouped by their start along ``axis``, increasing (MONAI's order kept within a group)."""
    ordered = sorted(starts, key=lambda s: s[axis])
    return [(key, list(group)) for key, group in groupby(ordered, lambda s: s[axis])]


def blended_chunks(
    predictor: WindowPredictor,
    source: WindowSource,
    sw_batch_size: int = 1,
    progress: Progress = no_progress,
) -> Iterator[tuple[tuple[slice, ...], dict[str, torch.Tensor]]]:
    """Every window through ``predictor``, blended; yields ``(region, stats)`` chunks covering the volume once.

    ``predictor`` maps windows ``(B, 1, *patch)`` to ``{name: (B, ch, *patch)}`` (on any device); ``region`` is
    a tuple of slices of the unpadded volume, ``stats`` ``{name: (ch, *region shape)}`` float32 on the CPU.
    Batches hold windows of one block (at most ``sw_batch_size``).
    """
    grid = source.grid
    acc = BlockAccumulator(grid, importance_map(grid.patch))
    done, total = 0, len(grid.starts)
    for row_start, row in _groups(grid.starts, grid.axis):
        acc.begin_row(row_start)
        for block_start, block in _groups(row, grid.inner):
            yield from acc.finish_until(block_start)
            for b in range(0, len(block), sw_batch_size):
                batch = block[b : b + sw_batch_size]
                out = predictor(torch.stack([source.window(s) for s in batch]))
                for j, start in enumerate(batch):
                    acc.add(start, {name: value[j].cpu() for name, value in out.items()})
                done += len(batch)
                progress(done, total, "predicting windows")
        yield from acc.finish_until(grid.padded[grid.inner])
