"""Model folders on disk: ``model.json`` (the model card) plus the weights each method saves."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from napari_uqseg.core.calibrated_uncertainty import CALIBRATION_FILE
from napari_uqseg.core.case_scores import DESCRIPTIONS
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.nifti_io import atomic_write_bytes
from napari_uqseg.engine.data import Case
from napari_uqseg.engine.inference import CHOSEN_DEFAULTS, chosen_defaults
from napari_uqseg.engine.methods.base import UQMethod, method_class, options_dict
from napari_uqseg.engine.unet import UNet, UNetConfig

CARD_FILE = "model.json"
FORMAT_VERSION = 1


@dataclass
class ModelCard:
    """Everything that defines a trained model, stored as ``model.json``.

    Attributes
    ----------
    method, options : str, dict
        Registered method name and its options.
    net : dict
        ``UNetConfig`` fields.
    patch_size : list of int
        Sliding-window patch (the training patch).
    normalisation : str
        Per-volume intensity normalisation scheme.
    labels : dict
        Class index (as str) -> name.
    extra : dict
        Method state that is not weights (temperature, Bayesian share, checkpoint list ...).
    training : dict
        Training summary: config, data, history, seconds.
    """

    method: str
    options: dict[str, Any]
    net: dict[str, Any]
    patch_size: list[int]
    normalisation: str
    labels: dict[str, str]
    extra: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, default=_jsonable)

    @property
    def member_warnings(self) -> list[str]:
        """Warnings of the member check the training ran (``engine.member_check``); empty if none."""
        return list(self.training.get("member_check", {}).get("warnings", []))


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, tuple | set):
        return list(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def save_model(method: UQMethod, model_dir: str | Path, labels: dict[str, str], training: dict[str, Any]) -> Path:
    """Write the model card and weights into ``model_dir`` atomically (staged, then renamed)."""
    model_dir = Path(model_dir)
    staging = model_dir.with_name(f".{model_dir.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    method.save_weights(staging)
    card = ModelCard(
        method=method.name,
        options=options_dict(method),
        net=method.net_config.to_dict(),
        patch_size=list(method.patch_size),
        normalisation=method.normalisation,
        labels=labels,
        extra={**method.extra_state(), "temperature": method.temperature, **chosen_defaults(method)},
        training=training,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    atomic_write_bytes(staging / CARD_FILE, card.to_json().encode())
    if model_dir.exists():
        old = model_dir.with_name(f".{model_dir.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(model_dir, old)
        os.replace(staging, model_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, model_dir)
    return model_dir


def store_choices(model_dir: str | Path, review_map: str | None = None, case_score: str | None = None) -> None:
    """Make ``review_map`` and ``case_score`` the model's defaults (chosen on its validation cases), in place.

    ``None`` leaves that default as it is.

    Raises
    ------
    InputError
        Not a model folder, ``review_map`` is not one of the method's maps, or ``case_score`` is not a case
        score (``core.case_scores.DESCRIPTIONS``).
    """
    card = read_card(model_dir)
    maps = method_class(card.method).maps
    if review_map is not None and review_map not in maps:
        raise InputError("review_map", f"{review_map!r} is not a map of {card.method}; maps: {sorted(maps)}")
    if case_score is not None and case_score not in DESCRIPTIONS:
        raise InputError("case_score", f"{case_score!r} is not a case score; scores: {sorted(DESCRIPTIONS)}")
    chosen = {"review_map": review_map, "case_score": case_score}
    card.extra = {**card.extra, **{key: value for key, value in chosen.items() if value is not None}}
    atomic_write_bytes(Path(model_dir) / CARD_FILE, card.to_json().encode())


def read_card(model_dir: str | Path) -> ModelCard:
    """Parse ``model.json``.

    Raises
    ------
    InputError
        Missing folder or card, invalid JSON, unsupported format version.
    """
    path = Path(model_dir) / CARD_FILE
    if not path.is_file():
        raise InputError(str(model_dir), f"not a model folder (no {CARD_FILE})")
    try:
        data = json.loads(path.read_text())
        card = ModelCard(**data)
    except (json.JSONDecodeError, TypeError) as exc:
        raise InputError(str(path), f"invalid model card ({exc})") from exc
    if card.format_version > FORMAT_VERSION:
        raise InputError(str(path), f"model format {card.format_version} is newer than this napari-uqseg supports")
    return card


def validation_split(
    model_dir: str | Path, data_dir: str | Path | None = None, cases: list[str] | None = None
) -> tuple[ModelCard, str | Path, list[str]]:
    """The model's card and ``(data_dir, cases)``: the given ones, else the dataset and the validation split its
    training recorded.

    Raises
    ------
    InputError
        Neither given nor recorded in the card.
    """
    card = read_card(model_dir)
    data = card.training.get("data", {})
    data_dir = data_dir or data.get("dir")
    cases = cases or data.get("val_cases")
    if not data_dir or not cases:
        raise InputError(str(model_dir), "the card names no validation cases: pass --data and --cases")
    return card, data_dir, list(cases)


def read_uq_calibration(model_dir: str | Path) -> dict[str, Any] | None:
    """The model's conformal calibration (``core.calibrated_uncertainty``), ``None`` if it has none."""
    path = Path(model_dir) / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(str(path), f"invalid calibration file ({exc})") from exc


def load_model(model_dir: str | Path, device: str = "cpu") -> UQMethod:
    """Rebuild a trained method from its folder, on ``device``."""
    model_dir = Path(model_dir)
    card = read_card(model_dir)
    method = method_class(card.method)(UNetConfig.from_dict(card.net), card.options)
    method.patch_size = tuple(card.patch_size)
    method.normalisation = card.normalisation
    method.load_weights(model_dir)
    method.load_extra_state(card.extra)
    method.temperature = float(card.extra.get("temperature", 1.0))
    for key in CHOSEN_DEFAULTS:  # a fine-tuned version saved from it inherits them
        setattr(method, key, card.extra.get(key))
    method.model_dir = model_dir
    method.uq_calibration = read_uq_calibration(model_dir)
    return method.to(device)


def trained_unet(
    model_dir: str | Path, net_key: str, net_config: UNetConfig, normalisation: str, val_cases: list[Case]
) -> tuple[UNet, dict[str, Any]]:
    """A trained model's plain U-Net ``net_key``, to start another method's training from (``from_model``).

    Returns the network (CPU, float32) and ``{"from_model", "from_net", "history"}``: the source's training
    history of that network. Raises ``InputError`` when the folder has no such plain U-Net, when its U-Net
    config or normalisation differ, or when it trained on any of ``val_cases`` (a plateau rule choosing on
    them would choose on seen cases).
    """
    source = load_model(model_dir)
    net = dict(source.nets.items()).get(net_key)
    if not isinstance(net, UNet):
        raise InputError(str(model_dir), f"has no plain U-Net {net_key!r} (its networks: {', '.join(source.nets)})")
    if source.net_config != net_config or source.normalisation != normalisation:
        raise InputError(str(model_dir), "its U-Net or normalisation differs from this training config's")
    card = read_card(model_dir)
    seen = set(card.training.get("data", {}).get("train_cases", []))
    leaked = sorted(c.case_id for c in val_cases if c.case_id in seen)
    if leaked:
        raise InputError(str(model_dir), f"was trained on {len(leaked)} validation case(s) of this fit: {leaked[:3]}")
    history = card.training.get("history", {}).get(net_key)
    return net, {"from_model": str(model_dir), "from_net": net_key, "history": history}
