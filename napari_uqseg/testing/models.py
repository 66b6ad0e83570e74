"""Tiny trained models for tests: a deterministic and an MC-Dropout U-Net on the synthetic data."""

from __future__ import annotations

import copy
from pathlib import Path

from napari_uqseg.testing.synthetic import TINY_CONFIG, write_synthetic_dataset

#: model name -> method; names are what tests pass as ``model`` to a backend
TINY_MODELS = {"tiny_det": "deterministic", "tiny_mcd": "mc_dropout"}


def build_tiny_models(root: str | Path, models: dict[str, str] | None = None) -> dict[str, Path]:
    """Train each ``name: method`` with ``TINY_CONFIG`` on a synthetic dataset under ``root`` (seconds on CPU).

    Returns
    -------
    dict of str to Path
        Model name -> model folder (``engine.store`` layout), ready for ``uqseg serve --import-model``.
    """
    from napari_uqseg.engine.api import train

    root = Path(root)
    data = root / "dataset"
    if not (data / "dataset.json").is_file():
        write_synthetic_dataset(data, n_cases=4)
    out = {}
    for name, method in (models or TINY_MODELS).items():
        folder = root / "models" / name
        if not (folder / "model.json").is_file():
            config = copy.deepcopy(TINY_CONFIG)
            if method == "mc_dropout":
                config["method"] = {"samples": 3}
            train(method, data, folder, config, device="cpu")
        out[name] = folder
    return out
