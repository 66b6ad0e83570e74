"""Tiny trained models (a deterministic and an MC-Dropout U-Net on synthetic data) for tests, benchmarks and
the reliability suite; trained in seconds on one CPU core."""

from __future__ import annotations

import copy
from pathlib import Path

from napari_uqseg.core.sample_data import write_synthetic_dataset

#: model name -> method; names are what tests pass as ``model`` to a backend
TINY_MODELS = {"tiny_det": "deterministic", "tiny_mcd": "mc_dropout"}
#: models given a conformal calibration (volume intervals, outer/inner masks at this risk), with and without TTA
CALIBRATED = {"tiny_det": 0.3}


#: a configuration that trains any method on the synthetic data in a few seconds on one CPU core
TINY_CONFIG = {
    "net": {"channels": [4, 8, 16]},
    "train": {
        "patch_size": [16, 16, 16],
        "batch_size": 4,
        "iterations": 6,
        "checkpoint_every": 3,
        "optimizer": "adam",
        "lr": 3e-3,
        "stop_rule": "fixed",  # tests train a fixed handful of steps; the plateau rule has its own tests
        "augment": "none",
    },
}


def build_tiny_models(
    root: str | Path, models: dict[str, str] | None = None, method_options: dict[str, dict] | None = None
) -> dict[str, Path]:
    """Train each ``name: method`` with ``TINY_CONFIG`` on a synthetic dataset under ``root`` (seconds on CPU).

    ``method_options`` (model name -> method options) replaces the defaults (MC-Dropout: 3 samples).

    Returns
    -------
    dict of str to Path
        Model name -> model folder (``engine.model_folder`` layout), ready for ``uqseg serve --import-model``.
    """
    from napari_uqseg.engine.make_model import train

    root = Path(root)
    data = root / "dataset"
    if not (data / "dataset.json").is_file():
        write_synthetic_dataset(data, n_cases=4)
    out = {}
    for name, method in (models or TINY_MODELS).items():
        folder = root / "models" / name
        if not (folder / "model.json").is_file():
            config = copy.deepcopy(TINY_CONFIG)
            options = (method_options or {}).get(name, {"samples": 3} if method == "mc_dropout" else None)
            if options is not None:
                config["method"] = options
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
