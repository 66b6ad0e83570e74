"""Fine-tune and train configurations checked when a job is submitted (400 then, not a failed job later).

Each value is checked against the type its dataclass field declares (``int``, ``float``, ``bool``,
``str``, optional ones, tuples of ints), then the engine's own ``from_dict`` checks ranges.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.options import check_known

#: declared field type -> accepted Python types (bool is not an int here, nor an int a bool)
SIMPLE_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "str": (str,),
}
MAX_CHANNELS = 1024


def _accepts(declared: str, value: Any) -> bool | None:
    """Whether ``value`` fits the declared type string; ``None`` for a type this check does not know."""
    declared = declared.replace(" ", "")
    if declared.endswith("|None"):
        return value is None or _accepts(declared[: -len("|None")], value)
    if declared in SIMPLE_TYPES:
        if isinstance(value, bool) and declared != "bool":
            return False
        return isinstance(value, SIMPLE_TYPES[declared])
    if declared.startswith("tuple[int"):
        return isinstance(value, list | tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    return None


def check_fields(cls: type, values: Any, source: str) -> dict[str, Any]:
    """Check ``values`` (an object) against the fields of dataclass ``cls``; returns it.

    Raises
    ------
    InputError
        Not an object, unknown keys, or a value of another type than its field's.
    """
    if not isinstance(values, dict):
        raise InputError(source, "must be an object")
    fields = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    check_known(source, values, fields)
    for name, value in values.items():
        if _accepts(fields[name], value) is False:
            raise InputError(f"{source}.{name}", f"must be of type {fields[name]}, got {type(value).__name__}")
    return values


def check_finetune_options(options: Any) -> None:
    """Validate fine-tune ``options`` (``engine.finetune.FinetuneOptions``)."""
    from napari_uqseg.engine.finetune import FinetuneOptions

    FinetuneOptions.from_dict(check_fields(FinetuneOptions, options, "params.options"))


def check_train_config(method: str, config: Any) -> None:
    """Validate a train job's ``config`` (``net``, ``train`` and ``method`` sections) without building a big net."""
    from napari_uqseg.engine.make_model import build_method
    from napari_uqseg.engine.training import TrainConfig
    from napari_uqseg.engine.unet import UNetConfig

    if not isinstance(config, dict) or set(config) - {"net", "train", "method"}:
        raise InputError("params.config", "must be an object with (only) net, train and method sections")
    net = check_fields(UNetConfig, config.get("net", {}), "params.config.net")
    check_fields(TrainConfig, config.get("train", {}), "params.config.train")
    if not isinstance(config.get("method", {}), dict):
        raise InputError("params.config.method", "must be an object")
    channels = net.get("channels", [16])
    if not channels or len(channels) > 8 or not all(1 <= c <= MAX_CHANNELS for c in channels):
        raise InputError("params.config.net.channels", f"1 to 8 widths, each in [1, {MAX_CHANNELS}]")
    small = {**config, "net": {**net, "channels": [4] * len(channels)}}  # same structure, tiny weights
    try:
        build_method(method, small, num_classes=2)
    except InputError:
        raise
    except (TypeError, ValueError, KeyError) as exc:
        raise InputError("params.config", f"not a valid configuration ({exc.__class__.__name__}: {exc})") from exc
