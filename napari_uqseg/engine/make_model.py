"""Making model folders: a method built from a config, trained on a dataset, its temperature calibrated.

The back end of ``uqseg train`` and ``uqseg calibrate``, of the server's train jobs and of the tiny test models;
the folder layout is ``engine.model_folder``.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import torch

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.json_files import read_json
from napari_uqseg.core.options import check_known
from napari_uqseg.core.progress import Progress, no_progress
from napari_uqseg.engine.data import load_cases, num_classes_of, split_cases
from napari_uqseg.engine.device import resolve_device
from napari_uqseg.engine.member_check import check_members
from napari_uqseg.engine.methods.base import TrainingData, UQMethod, method_class
from napari_uqseg.engine.model_folder import load_model, save_model, validation_split
from napari_uqseg.engine.temperature import fit_method_temperature
from napari_uqseg.engine.training import TrainConfig
from napari_uqseg.engine.unet import UNetConfig

CONFIG_SECTIONS = ("net", "train", "method")


def read_config(path: str | Path | None) -> dict[str, dict[str, Any]]:
    """Read a JSON config ``{"net": {...}, "train": {...}, "method": {...}}`` (every section optional).

    Raises
    ------
    InputError
        Missing file, invalid JSON, unknown sections.
    """
    if path is None:
        return {}
    config = read_json(path, "config file does not exist")
    if not isinstance(config, dict):
        raise InputError(str(path), f"must be a JSON object with sections among {CONFIG_SECTIONS}")
    check_known(str(path), config, CONFIG_SECTIONS)
    return config


def build_method(
    name: str, config: dict[str, dict[str, Any]], num_classes: int, in_channels: int = 1
) -> tuple[UQMethod, TrainConfig]:
    """Instantiate a method with its network (initial weights drawn from ``train.seed``) and training configuration."""
    net = UNetConfig.from_dict({**config.get("net", {}), "num_classes": num_classes, "in_channels": in_channels})
    cfg = TrainConfig.from_dict(config.get("train", {}))
    if len(cfg.patch_size) != net.spatial_dims or any(p % net.divisor for p in cfg.patch_size):
        raise InputError(
            "train.patch_size", f"{cfg.patch_size} must have {net.spatial_dims} sizes, each a multiple of {net.divisor}"
        )
    with torch.random.fork_rng(devices=[]):  # initial weights follow train.seed; the caller's RNG is left as it was
        torch.manual_seed(cfg.seed)
        method = method_class(name)(net, config.get("method", {}))
    method.patch_size = cfg.patch_size
    method.normalisation = cfg.normalisation
    return method, cfg


def train(
    method_name: str,
    data_dir: str | Path,
    out_dir: str | Path,
    config: dict[str, dict[str, Any]] | None = None,
    cases: list[str] | None = None,
    device: str = "auto",
    progress: Progress = no_progress,
    work_dir: str | Path | None = None,
) -> Path:
    """Train ``method_name`` on an MSD-layout dataset and save the model folder ``out_dir``.

    ``work_dir`` (default ``<out_dir>.work``) keeps resumable checkpoints; it is removed on success.
    """
    config = config or {}
    method_class(method_name)  # fail on a bad name before reading data
    num_classes, labels = num_classes_of(data_dir)
    method, cfg = build_method(method_name, config, num_classes)
    all_cases = load_cases(data_dir, cases, cfg.normalisation, method.net_config.spatial_dims)
    train_ids, val_ids = split_cases([c.case_id for c in all_cases], cfg.val_fraction, cfg.seed, cfg.group_pairs)
    by_id = {c.case_id: c for c in all_cases}
    data = TrainingData([by_id[i] for i in train_ids], [by_id[i] for i in val_ids], num_classes)
    method.to(resolve_device(device))
    out_dir = Path(out_dir)
    work = Path(work_dir) if work_dir else out_dir.with_name(out_dir.name + ".work")
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    history = method.fit(data, cfg, progress, work)
    summary = {
        "config": {"train": cfg.to_dict(), "method": config.get("method", {})},
        "data": {"dir": str(data_dir), "train_cases": train_ids, "val_cases": val_ids},
        "history": history,
        "seconds": time.perf_counter() - start,
        "device": str(method.device),
    }
    if data.val and method.n_samples() > 1:
        summary["member_check"] = check_members(method, data.val, labels)
    method.to("cpu")
    save_model(method, out_dir, labels, summary)
    shutil.rmtree(work, ignore_errors=True)
    return out_dir


def calibrate(
    model_dir: str | Path,
    out_dir: str | Path,
    data_dir: str | Path | None = None,
    cases: list[str] | None = None,
    device: str = "auto",
) -> tuple[Path, float]:
    """Fit the temperature of a trained model on validation cases and save the calibrated copy ``out_dir``.

    By default the cases are the validation split the model's training held out, from the dataset it was
    trained on (both recorded in its card); ``cases`` and ``data_dir`` choose others. The weights are not
    changed; the mask changes only where blended windows or pooled samples disagree (argmax of one softmax
    ignores ``T``). Returns the folder and the temperature.
    """
    if Path(out_dir).resolve() == Path(model_dir).resolve():
        raise InputError("--out", "must differ from --model: the calibrated copy never replaces the original")
    card, data_dir, cases = validation_split(model_dir, data_dir, cases)
    method = load_model(model_dir, str(resolve_device(device)))
    val = load_cases(data_dir, cases, method.normalisation, method.net_config.spatial_dims)
    method.temperature = fit_method_temperature(method, val)
    method.to("cpu")
    training = {**card.training, "calibration": {"temperature": method.temperature, "cases": cases}}
    return save_model(method, out_dir, card.labels, training), method.temperature
