"""From "no model" to "predicting", for both viewers: starter model, import, and a train job on labelled data.

Torch-free calls on any ``Backend`` (the napari panel and the Slicer module share them).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from napari_uqseg.client.backend import Backend
from napari_uqseg.core.bundled_models import STARTER_MODEL_NAME, starter_model_dir
from napari_uqseg.core.records import JobStatus, ModelSummary

#: methods offered for training, cheapest first (all give an uncertainty map; the first is the default)
TRAIN_METHODS = ("mc_dropout", "masksembles", "deterministic")
#: a small network that trains on a CPU in minutes (the starter model's widths)
TRAIN_NET = {"channels": [8, 16, 32, 64]}
TRAIN_PATCH = [32, 32, 32]
#: Adam steps the viewers' train panels offer by default
TRAIN_ITERATIONS = 300


def model_name_from(path: str | Path) -> str:
    """A valid model name from a folder or archive name (``my model.tar.gz`` -> ``my-model``)."""
    stem = Path(path).name.removesuffix(".gz").removesuffix(".tar").removesuffix(".tgz")
    return re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_")[:64] or "imported"


def use_starter(backend: Backend) -> ModelSummary:
    """Register the starter model shipped in the package (``brain-starter``) on ``backend``."""
    return backend.import_model(STARTER_MODEL_NAME, str(starter_model_dir()))


def train_config(iterations: int) -> dict[str, dict[str, Any]]:
    """The viewers' training recipe: a small U-Net, 32^3 patches, ``iterations`` Adam steps."""
    return {
        "net": dict(TRAIN_NET),
        "train": {"patch_size": list(TRAIN_PATCH), "batch_size": 2, "iterations": iterations},
    }


def start_training(backend: Backend, name: str, dataset_folder: str | Path, method: str, iterations: int) -> JobStatus:
    """Send a labelled MSD-layout folder as dataset ``<name>-data`` and start a train job making model ``name``."""
    dataset = backend.upload_dataset(f"{name}-data", str(dataset_folder))
    params = {"method": method, "dataset": dataset, "config": train_config(iterations)}
    return backend.start_job("train", name, params)


def member_warnings(models: list[ModelSummary], model: str, version: str) -> list[str]:
    """The member check's warnings recorded with ``model`` ``version`` (empty when clean or unknown)."""
    for summary in models:
        if summary.name == model:
            for v in summary.versions:
                if v.version == version:
                    return list(v.metrics.get("member_warnings", []))
    return []


def training_outcome(status: JobStatus, models: list[ModelSummary]) -> tuple[str, bool]:
    """``(message, is_warning)`` for a finished train job: ready, warnings of the member check, cancelled, failed."""
    if status.state == "cancelled":
        return "Training cancelled; no model was added.", False
    if status.state != "succeeded":
        return f"Training failed: {status.error or status.message}", True
    model, version = status.result["model"], status.result["version"]
    warnings = member_warnings(models, model, version)
    note = ("Member check: " + " ".join(warnings)) if warnings else "Member check: no warnings."
    return f"Trained {model} {version}: ready to predict. {note}", bool(warnings)
