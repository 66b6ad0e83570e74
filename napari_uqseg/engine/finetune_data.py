"""The cases a fine-tune uses besides the corrections: replay cases and the original validation cases.

Both come from the dataset the model was trained on, as its card records it (``training.data``: ``dir``,
``train_cases``, ``val_cases``; fine-tuned versions carry their parent's record on). When that folder cannot
be read (a model trained elsewhere) the fine-tune runs without them and says so in its result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from napari_uqseg.core.nifti_io import load_image, load_label
from napari_uqseg.core.volume import Volume
from napari_uqseg.engine.data import Case, case_pairs, load_cases, num_classes_of


def training_record(card_training: dict[str, Any]) -> dict[str, Any]:
    """The card's ``data`` record (``dir``, ``train_cases``, ``val_cases``), or ``{}``."""
    data = card_training.get("data", {})
    return dict(data) if isinstance(data, dict) else {}


def evenly_spaced(ids: list[str], count: int) -> list[str]:
    """``count`` ids spread evenly over the sorted list (all if ``count <= 0`` or there are fewer)."""
    ids = sorted(ids)
    if count <= 0 or count >= len(ids):
        return ids
    return [ids[int(i)] for i in np.linspace(0, len(ids) - 1, count).round().astype(int)]


def _readable(record: dict[str, Any], key: str) -> tuple[Path | None, list[str], str]:
    folder, ids = record.get("dir"), list(record.get(key) or [])
    if not folder or not ids:
        return None, [], f"the model's card names no {key}"
    if not (Path(folder) / "dataset.json").is_file():
        return None, [], f"the training data {folder} cannot be read here"
    return Path(folder), ids, ""


def replay_cases(record: dict[str, Any], count: int, scheme: str, spatial_dims: int) -> tuple[list[Case], str]:
    """Up to ``count`` of the original training cases, normalised for training; ``(cases, note)``.

    ``note`` is empty when cases were found, else why there is no replay.
    """
    folder, ids, note = _readable(record, "train_cases")
    if folder is None:
        return [], note
    return load_cases(folder, evenly_spaced(ids, count), scheme, spatial_dims), ""


def validation_cases(record: dict[str, Any], count: int) -> tuple[list[tuple[str, Volume, Volume]], str]:
    """Up to ``count`` (0: all) of the validation cases the training held out: ``(case_id, image, label)``.

    Images are raw (not normalised), as a prediction takes them. Returns ``(cases, note)``; ``note`` says
    why there are none.
    """
    folder, ids, note = _readable(record, "val_cases")
    if folder is None:
        return [], note
    wanted = set(evenly_spaced(ids, count))
    num_classes, _ = num_classes_of(folder)
    cases = []
    for case_id, image_path, label_path in case_pairs(folder):
        if case_id in wanted:
            image = load_image(image_path)
            cases.append((case_id, image, load_label(label_path, image, num_classes)))
    return cases, ""
