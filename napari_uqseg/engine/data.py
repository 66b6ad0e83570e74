"""MSD/nnU-Net-layout datasets: loading, per-volume normalisation, pair-aware split, patch sampling."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.json_files import read_json
from napari_uqseg.core.nifti_io import load_image, load_label
from napari_uqseg.core.options import look_up_option

#: label value of voxels no one reviewed in a partial correction: they are not trained on (``engine.masked_loss``)
IGNORE_LABEL = 255


def known_foreground(label: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Voxels of a label map (numpy array or torch tensor) with a known foreground class: ``> 0``, not
    :data:`IGNORE_LABEL`; same shape, bool."""
    return (label > 0) & (label != IGNORE_LABEL)


@dataclass
class Case:
    """One labelled volume: normalised image ``(I, J, K)`` float32, labels uint8, the original affine.

    Label :data:`IGNORE_LABEL` marks voxels without a known class (not reviewed); the loss leaves them out.
    """

    case_id: str
    image: np.ndarray
    label: np.ndarray
    affine: np.ndarray
    image_path: str = ""
    label_path: str = ""


def zscore_stats(array: np.ndarray, scheme: str = "zscore") -> tuple[float, float]:
    """Mean and standard deviation (at least 1e-6) of a volume's intensities for ``normalise``.

    ``"zscore"`` uses all voxels, ``"zscore_nonzero"`` the non-zero ones (all if every voxel is zero).
    Sums run in float64 over slabs of the first axis (two passes), so no full-size temporary is made.
    """
    look_up_option("normalisation", scheme, ("zscore", "zscore_nonzero"), "scheme")
    nonzero = scheme == "zscore_nonzero" and bool(np.any(array))
    step = max(1, (1 << 20) // max(1, array[:1].size))

    def values() -> Iterator[np.ndarray]:
        for i in range(0, array.shape[0], step):
            slab = array[i : i + step]
            yield slab[slab != 0] if nonzero else slab

    count = sum(v.size for v in values())
    mean = sum(float(v.sum(dtype=np.float64)) for v in values()) / count
    squares = sum(float(np.square(v.astype(np.float64) - mean).sum()) for v in values())
    return mean, max(float(np.sqrt(squares / count)), 1e-6)


def zscore(values: np.ndarray, mean: float, std: float) -> np.ndarray:
    """``(values - mean) / std`` as float32 (any shape; a window of a volume or the whole of it)."""
    return ((values - mean) / std).astype(np.float32)


def normalise(array: np.ndarray, scheme: str = "zscore") -> np.ndarray:
    """Per-volume intensity normalisation; ``"zscore"`` over all voxels or ``"zscore_nonzero"``."""
    return zscore(array, *zscore_stats(array, scheme))


def read_dataset_json(data_dir: str | Path) -> dict:
    """Parse ``dataset.json`` of an MSD-layout folder.

    Raises
    ------
    InputError
        Missing folder or ``dataset.json``, invalid JSON, no ``labels``/``training`` entries.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputError(str(data_dir), "dataset folder does not exist")
    path = data_dir / "dataset.json"
    meta = read_json(path, "missing dataset.json (an MSD/nnU-Net dataset needs one)")
    if not isinstance(meta.get("labels"), dict) or not meta["labels"]:
        raise InputError(str(path), "has no 'labels' mapping")
    if not isinstance(meta.get("training"), list) or not meta["training"]:
        raise InputError(str(path), "has no 'training' cases")
    return meta


def case_pairs(data_dir: str | Path) -> list[tuple[str, Path, Path]]:
    """``(case_id, image_path, label_path)`` for every training case listed in ``dataset.json``."""
    data_dir = Path(data_dir)
    meta = read_dataset_json(data_dir)
    out = []
    for entry in meta["training"]:
        image = data_dir / str(entry["image"])
        label = data_dir / str(entry["label"])
        case_id = image.name.removesuffix(".gz").removesuffix(".nii")
        out.append((case_id, image, label))
    return out


def num_classes_of(data_dir: str | Path) -> tuple[int, dict[str, str]]:
    """Number of classes (background included) and the label names of ``dataset.json``."""
    labels = read_dataset_json(data_dir)["labels"]
    names = {str(k): str(v) for k, v in labels.items()}
    return max(int(k) for k in names) + 1, names


def load_cases(
    data_dir: str | Path, case_ids: list[str] | None = None, scheme: str = "zscore", spatial_dims: int = 3
) -> list[Case]:
    """Load (a subset of) the labelled cases, validated and normalised."""
    num_classes, _ = num_classes_of(data_dir)
    pairs = case_pairs(data_dir)
    if case_ids is not None:
        known = {c for c, _, _ in pairs}
        missing = sorted(set(case_ids) - known)
        if missing:
            raise InputError("--cases", f"case(s) not in the dataset: {missing[:5]}")
        pairs = [p for p in pairs if p[0] in set(case_ids)]
    cases = []
    for case_id, image_path, label_path in pairs:
        image = load_image(image_path, spatial_dims)
        label = load_label(label_path, image, num_classes)
        cases.append(
            Case(case_id, normalise(image.array, scheme), label.array, image.affine, str(image_path), str(label_path))
        )
    return cases


def pair_group(case_id: str) -> str:
    """Scan group of a case: ids ``2k-1`` and ``2k`` share group ``k`` (MSD hippocampus hemispheres)."""
    match = re.search(r"(\d+)$", case_id)
    return f"pair_{(int(match.group(1)) + 1) // 2}" if match else case_id


def split_cases(
    case_ids: list[str], val_fraction: float, seed: int, group_pairs: bool = True
) -> tuple[list[str], list[str]]:
    """Random train/validation split of case ids that never separates a scan pair."""
    groups: dict[str, list[str]] = {}
    for case_id in case_ids:
        groups.setdefault(pair_group(case_id) if group_pairs else case_id, []).append(case_id)
    keys = sorted(groups)
    np.random.default_rng(seed).shuffle(keys)
    n_val = max(1, round(len(keys) * val_fraction)) if len(keys) > 1 and val_fraction > 0 else 0
    val = sorted(c for k in keys[:n_val] for c in groups[k])
    train = sorted(c for k in keys[n_val:] for c in groups[k])
    return train, val


def _pad_to(array: np.ndarray, shape: tuple[int, ...], value: float, rng: np.random.Generator) -> np.ndarray:
    """Pad up to ``shape`` with ``value``, the volume at a random offset (as a sliding window may see it)."""
    missing = [max(0, s - a) for a, s in zip(array.shape, shape, strict=True)]
    if not any(missing):
        return array
    before = [int(rng.integers(m + 1)) for m in missing]
    return np.pad(array, [(b, m - b) for b, m in zip(before, missing, strict=True)], constant_values=value)


class PatchSampler:
    """Random training patches with foreground oversampling (nnU-Net: 1/3 of patches centred on labels).

    ``sample(batch_size)`` returns ``x`` ``(B, 1, *patch)`` float32 and ``y`` ``(B, 1, *patch)`` int64.
    ``augment(image, label, seed)`` (``engine.augment.PatchAugmenter``) changes each patch; its seed comes
    from the sampler's RNG, so a resumed run draws the same augmentations.
    """

    def __init__(
        self,
        cases: list[Case],
        patch_size: tuple[int, ...],
        foreground_fraction: float = 0.33,
        seed: int = 0,
        augment: Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]] | None = None,
    ):
        if not cases:
            raise InputError("dataset", "no training cases")
        self.cases = cases
        self.patch_size = tuple(patch_size)
        self.foreground_fraction = foreground_fraction
        self.rng = np.random.default_rng(seed)
        self.augment = augment
        self._fg = [np.argwhere(known_foreground(c.label)) for c in cases]

    def _one(self, index: int, foreground: bool) -> tuple[np.ndarray, np.ndarray]:
        case = self.cases[index]
        # pad with the volume's minimum, as inference does (engine.inference.padding_value)
        state = self.rng.bit_generator.state
        image = _pad_to(case.image, self.patch_size, float(case.image.min()), self.rng)
        self.rng.bit_generator.state = state  # same offsets for the label
        label = _pad_to(case.label, self.patch_size, 0, self.rng)
        hi = [s - p for s, p in zip(image.shape, self.patch_size, strict=True)]
        fg = self._fg[index]
        if foreground and len(fg):
            centre = fg[self.rng.integers(len(fg))]
            start = [int(np.clip(c - p // 2, 0, h)) for c, p, h in zip(centre, self.patch_size, hi, strict=True)]
        else:
            start = [int(self.rng.integers(h + 1)) for h in hi]
        window = tuple(slice(s, s + p) for s, p in zip(start, self.patch_size, strict=True))
        return image[window], label[window]

    def sample(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for _ in range(batch_size):
            index = int(self.rng.integers(len(self.cases)))
            x, y = self._one(index, bool(self.rng.random() < self.foreground_fraction))
            if self.augment is not None:
                x, y = self.augment(x, y, int(self.rng.integers(2**31 - 1)))
            xs.append(x)
            ys.append(y)
        x = torch.from_numpy(np.stack(xs)[:, None].copy())
        y = torch.from_numpy(np.stack(ys)[:, None].astype(np.int64))
        return x, y

    def state(self) -> dict:
        """RNG state, so a resumed training run draws the same patches."""
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state


def read_case_list(path: str | Path | None) -> list[str] | None:
    """Case ids, one per line (``#`` comments allowed); ``None`` -> all cases."""
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "case list does not exist")
    ids = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    ids = [i.removesuffix(".gz").removesuffix(".nii") for i in ids if i]
    if not ids:
        raise InputError(str(path), "case list is empty")
    return ids


def split_dataset(
    data_dir: str | Path,
    out_dir: str | Path,
    test_fraction: float = 0.2,
    seed: int = 0,
    calibration_fraction: float = 0.0,
) -> dict[str, Path]:
    """Write ``train.txt``, ``test.txt`` and (``calibration_fraction > 0``) ``calibration.txt`` (scan pairs kept).

    The test list depends on ``test_fraction`` and ``seed`` only. ``calibration_fraction`` (a share of all
    cases) moves groups from the training list to the calibration list: cases the training neither fits nor
    uses to choose its checkpoint, for ``uqseg conformal --cases calibration.txt``.
    """
    if not 0 <= calibration_fraction < 1 - test_fraction:
        raise InputError("--calibration-fraction", f"must be in [0, {1 - test_fraction:g}), got {calibration_fraction}")
    ids = [c for c, _, _ in case_pairs(data_dir)]
    train, test = split_cases(ids, test_fraction, seed)
    lists = {"train": train, "test": test}
    if calibration_fraction > 0:
        lists["train"], lists["calibration"] = split_cases(train, calibration_fraction / (1 - test_fraction), seed + 1)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, case_ids in lists.items():
        paths[name] = out_dir / f"{name}.txt"
        paths[name].write_text("\n".join(case_ids) + "\n")
    return paths
