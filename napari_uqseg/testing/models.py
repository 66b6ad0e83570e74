"""Tiny trained models for tests: a deterministic and an MC-Dropout U-Net on the synthetic data."""

from __future__ import annotations

import copy
from pathlib import Path

from napari_uqseg.testing.synthetic import TINY_CONFIG, write_synthetic_dataset

#: model name -> method; names are what tests pass as ``model`` to a backend
TINY_MODELS = {"tiny_det": "deterministic", "tiny_mcd": "mc_dropout"}
#: models given a conformal calibration (volume intervals, outer/inner masks at this risk), with and without TTA
CALIBRATED = {"tiny_det": 0.3}


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
        if name in CALIBRATED and not (folder / "uq_calibration.json").is_file():
            _calibrate(folder, root / "calibration", CALIBRATED[name])
        out[name] = folder
    return out


def _calibrate(model: Path, data: Path, risk: float) -> None:
    """Conformal calibration on 10 further synthetic cases (``uqseg conformal --tta none flips``)."""
    from napari_uqseg.engine.uq_calibration import calibrate_model

    if not (data / "dataset.json").is_file():
        write_synthetic_dataset(data, n_cases=10, seed=100)
    cases = [f"synth_{i:03d}" for i in range(1, 11)]
    calibrate_model(model, data, cases, ("none", "flips"), risk, device="cpu")
