"""Where MONAI's Gaussian sliding window puts its windows on a volume, and what weight they give each voxel.

The windows, their order, the padding of a volume smaller than the window and the Gaussian importance map are
MONAI's (``monai.inferers.sliding_window_inference``). The window starts form a Cartesian product of per-axis
starts, so the sum of the window weights over any box (MONAI's accumulated ``count_map``) can be computed from the
grid for that box alone: :func:`window_weight_sum`.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import torch
from monai.data.utils import dense_patch_slices
from monai.data.utils import get_valid_patch_size as _valid_patch
from monai.inferers.utils import _get_scan_interval, compute_importance_map


@dataclass(frozen=True)
class WindowGrid:
    """Where MONAI's sliding window puts its windows on a volume of ``shape``.

    Attributes
    ----------
    shape : tuple of int
        The volume's spatial shape.
    patch : tuple of int
        The window's spatial shape.
    padded : tuple of int
        Shape after padding every axis shorter than the patch up to the patch (centred, as MONAI pads).
    pad_before : tuple of int
        Voxels of padding before the volume on every axis.
    starts : list of tuple of int
        Window start corners in padded coordinates, in MONAI's order.
    axis : int
        The slab axis: the one where the patch covers the smallest fraction of the padded volume.
    inner : int
        The block axis: of the other axes, the one where the patch covers the smallest fraction.
    axis_starts : tuple of tuple of int
        The distinct window starts along every axis, increasing (``starts`` is their product).
    """

    shape: tuple[int, ...]
    patch: tuple[int, ...]
    padded: tuple[int, ...]
    pad_before: tuple[int, ...]
    starts: list[tuple[int, ...]]
    axis: int
    inner: int
    axis_starts: tuple[tuple[int, ...], ...]

    def next_start(self, axis: int, start: int) -> int | None:
        """The first window start along ``axis`` after ``start`` (``None`` after the last one)."""
        return next((s for s in self.axis_starts[axis] if s > start), None)


def window_grid(shape: tuple[int, ...], patch: tuple[int, ...], overlap: float) -> WindowGrid:
    """The windows MONAI's ``sliding_window_inference`` visits for ``shape``, ``patch`` and ``overlap`` (2-D or 3-D)."""
    dims = len(shape)
    padded = tuple(max(s, p) for s, p in zip(shape, patch, strict=True))
    pad_before = tuple(max(p - s, 0) // 2 for s, p in zip(shape, patch, strict=True))
    interval = _get_scan_interval(padded, patch, dims, (overlap,) * dims)
    starts = [tuple(int(s.start) for s in window) for window in dense_patch_slices(padded, patch, interval)]
    by_fraction = sorted(range(dims), key=lambda d: patch[d] / padded[d])
    axis_starts = tuple(tuple(sorted({s[d] for s in starts})) for d in range(dims))
    axis, inner = by_fraction[:2]
    return WindowGrid(tuple(shape), tuple(patch), padded, pad_before, starts, axis, inner, axis_starts)


def importance_map(patch: tuple[int, ...]) -> torch.Tensor:
    """MONAI's Gaussian window weights ``(*patch)`` float32 (``sigma_scale=0.125``), on the CPU."""
    return compute_importance_map(_valid_patch(patch, patch), mode="gaussian", device="cpu", dtype=torch.float32)


def window_weight_sum(grid: WindowGrid, weights: torch.Tensor, box: tuple[slice, ...]) -> torch.Tensor:
    """The summed weights of every window over ``box``: MONAI's ``count_map`` there, without accumulating it.

    Parameters
    ----------
    weights : torch.Tensor
        One window's weights ``(*patch)`` float32 (:func:`importance_map`).
    box : tuple of slice
        A box of the padded volume (``start``/``stop`` set on every axis).

    Returns
    -------
    torch.Tensor
        float32 ``(*box shape)``; the windows are added in MONAI's order, so the sums are MONAI's.
    """
    lo, hi = [b.start for b in box], [b.stop for b in box]
    out = torch.zeros([h - low for low, h in zip(lo, hi, strict=True)], dtype=torch.float32)
    hits = [
        [s for s in starts if s < h and s + p > low]
        for starts, p, low, h in zip(grid.axis_starts, grid.patch, lo, hi, strict=True)
    ]
    for start in product(*hits):
        first = [max(s, low) for s, low in zip(start, lo, strict=True)]
        last = [min(s + p, h) for s, p, h in zip(start, grid.patch, hi, strict=True)]
        dst = tuple(slice(f - low, e - low) for f, e, low in zip(first, last, lo, strict=True))
        src = tuple(slice(f - s, e - s) for f, e, s in zip(first, last, start, strict=True))
        out[dst] += weights[src]
    return out
