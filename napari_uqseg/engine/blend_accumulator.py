"""Blended window sums held for one block of windows, plus the overlap carried from one row of windows to the next.

Windows are visited one *row* at a time (the same start along the grid's slab axis ``a``) and, within a row, one
*block* at a time (the same start along its block axis ``b``). The block's sums cover ``patch[a] x patch[b]`` and
the whole padded volume along the other axes. Once a block of windows is done, the planes along ``b`` before the
next block's start receive nothing more from this row: the part of them that no later row reaches (before the next
row's start along ``a``) is finished and handed out, divided by the summed window weights computed from the grid
(``engine.window_grid.window_weight_sum``, not accumulated); the part the next row overlaps is stored in the
*carry*, which holds only those overlap planes (``patch[a] - step`` of them, e.g. 32 of a 128-voxel window at
overlap 0.25) over the whole cross-section, and which the next row's blocks take back as they reach it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from napari_uqseg.engine.window_grid import WindowGrid, window_weight_sum

#: voxels handed out per chunk, at least one plane (bounds every temporary made from the blended sums)
CHUNK_VOXELS = 1 << 19


def shift_planes(t: torch.Tensor, axis: int, shift: int) -> None:
    """Move planes ``[shift, n)`` of ``t`` along ``axis`` to ``[0, n - shift)`` in place; zero the rest."""
    n = t.shape[axis]
    keep = max(n - shift, 0)
    for p in range(0, keep, max(shift, 1)):  # forward copy in chunks of <= shift planes: no overlap
        k = min(shift, keep - p)
        t.narrow(axis, p, k).copy_(t.narrow(axis, p + shift, k))
    t.narrow(axis, keep, n - keep).zero_()


def _moved(box: list[slice], origin: Sequence[int]) -> tuple[slice, ...]:
    """``box`` in coordinates that start at ``origin``."""
    return tuple(slice(s.start - o, s.stop - o) for s, o in zip(box, origin, strict=True))


class BlockAccumulator:
    """Weighted sums of every statistic over one block of windows, and the overlap carried between rows.

    Shapes (``ch`` channels per statistic; axis order of the volume): block ``(ch, *block)`` with
    ``block[a] = patch[a]``, ``block[b] = patch[b]`` and the padded size elsewhere; carry ``(ch, *carry)``
    with ``carry[a]`` the largest overlap of two consecutive rows and the padded size elsewhere; float32.
    Use: ``begin_row(start_a)``; for every block of the row, ``finish_until(start_b)`` then ``add`` its
    windows; ``finish_until(padded[b])`` ends the row. Finished planes are handed out once each.
    """

    def __init__(self, grid: WindowGrid, weights: torch.Tensor) -> None:
        self.grid, self.weights = grid, weights
        a, b, patch = grid.axis, grid.inner, grid.patch
        starts = grid.axis_starts[a]
        depth = max((s + patch[a] - n for s, n in zip(starts, starts[1:], strict=False)), default=0)
        self.block_shape = tuple(patch[d] if d in (a, b) else n for d, n in enumerate(grid.padded))
        self.carry_shape = tuple(max(depth, 0) if d == a else n for d, n in enumerate(grid.padded))
        self.block: dict[str, torch.Tensor] = {}
        self.carry: dict[str, torch.Tensor] = {}
        self.row: int | None = None  # padded start of the current row along a
        self.carried = 0  # planes of the carry that the current row takes over
        self.base = 0  # padded start of the block along b

    def _index(self, a: slice, b: slice) -> tuple[slice, ...]:
        """``(channels, *spatial)`` index taking ``a`` and ``b`` along the two axes, everything else whole."""
        spatial = [slice(None)] * len(self.grid.padded)
        spatial[self.grid.axis], spatial[self.grid.inner] = a, b
        return (slice(None), *spatial)

    def _origin(self) -> list[int]:
        """The block's first voxel in padded coordinates."""
        origin = [0] * len(self.grid.padded)
        origin[self.grid.axis], origin[self.grid.inner] = self.row, self.base
        return origin

    def begin_row(self, start: int) -> None:
        """Start the row of windows at padded ``start`` along ``a``; the block takes over the carried overlap."""
        p = self.grid.patch[self.grid.axis]
        self.carried = 0 if self.row is None else max(self.row + p - start, 0)
        self.row, self.base = start, 0
        for t in self.block.values():
            t.zero_()
        self._load(0, self.grid.patch[self.grid.inner])

    def add(self, start: tuple[int, ...], stats: dict[str, torch.Tensor]) -> None:
        """Add one window's statistics ``{name: (ch, *patch)}`` at ``start`` (padded coordinates)."""
        origin = self._origin()
        region = tuple(slice(s - o, s - o + p) for s, o, p in zip(start, origin, self.grid.patch, strict=True))
        for name, value in stats.items():
            if name not in self.block:
                self.block[name] = torch.zeros((value.shape[0], *self.block_shape), dtype=torch.float32)
                self.carry[name] = torch.zeros((value.shape[0], *self.carry_shape), dtype=torch.float32)
            self.block[name][(slice(None), *region)].addcmul_(value.float(), self.weights)

    def finish_until(self, stop: int) -> Iterator[tuple[tuple[slice, ...], dict[str, torch.Tensor]]]:
        """Hand out what this row finished before padded plane ``stop`` along ``b``, carry the rest of those
        planes to the next row, and move the block to start at ``stop``.

        Yields ``(region, stats)``: ``region`` slices of the unpadded volume, ``stats`` ``{name: (ch, *region)}``
        float32 blended means.
        """
        if stop <= self.base:
            return
        yield from self._hand_out(stop)
        self._store(stop)
        if stop < self.grid.padded[self.grid.inner]:
            self._shift(stop)

    def _hand_out(self, stop: int) -> Iterator[tuple[tuple[slice, ...], dict[str, torch.Tensor]]]:
        """Blended means of the volume's voxels before ``stop`` along ``b`` and before the next row along ``a``,
        in chunks of at most :data:`CHUNK_VOXELS` (at least one plane along ``a``)."""
        g, a, b = self.grid, self.grid.axis, self.grid.inner
        next_row = g.next_start(a, self.row)
        box = [slice(before, before + n) for before, n in zip(g.pad_before, g.shape, strict=True)]
        box[a] = slice(max(self.row, box[a].start), min(g.padded[a] if next_row is None else next_row, box[a].stop))
        box[b] = slice(max(self.base, box[b].start), min(stop, box[b].stop))
        sizes = [s.stop - s.start for s in box]
        if min(sizes) <= 0:
            return
        planes = max(1, CHUNK_VOXELS * sizes[a] // int(np.prod(sizes)))
        rows = box[a]
        for first in range(rows.start, rows.stop, planes):
            box[a] = slice(first, min(first + planes, rows.stop))
            count = window_weight_sum(g, self.weights, tuple(box))
            local = (slice(None), *_moved(box, self._origin()))
            yield _moved(box, g.pad_before), {name: t[local] / count for name, t in self.block.items()}

    def _store(self, stop: int) -> None:
        """Copy the block's planes that the next row overlaps, for ``b`` planes ``[base, stop)``, into the carry."""
        p = self.grid.patch[self.grid.axis]
        next_row = self.grid.next_start(self.grid.axis, self.row)
        if next_row is None or self.row + p <= next_row:
            return
        depth = self.row + p - next_row
        dst = self._index(a=slice(0, depth), b=slice(self.base, stop))
        src = self._index(a=slice(p - depth, p), b=slice(0, stop - self.base))
        for name, t in self.block.items():
            self.carry[name][dst] = t[src]

    def _load(self, lo: int, hi: int) -> None:
        """Take the carried sums of padded ``b`` planes ``[lo, hi)`` into the block (their planes before it empty)."""
        if self.carried == 0:
            return
        dst = self._index(a=slice(0, self.carried), b=slice(lo - self.base, hi - self.base))
        src = self._index(a=slice(0, self.carried), b=slice(lo, hi))
        for name, t in self.block.items():
            t[dst] = self.carry[name][src]

    def _shift(self, stop: int) -> None:
        """Drop the block's ``b`` planes before ``stop``, then take the planes that come free from the carry."""
        end = self.base + self.grid.patch[self.grid.inner]
        for t in self.block.values():
            shift_planes(t, self.grid.inner + 1, stop - self.base)
        self.base = stop
        self._load(max(end, stop), stop + self.grid.patch[self.grid.inner])
