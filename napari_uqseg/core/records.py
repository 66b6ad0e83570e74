"""Typed records passed between engine, server, client and viewers (plain data, JSON-friendly)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from napari_uqseg.core.volume import Volume


@dataclass(frozen=True)
class MethodInfo:
    """A registered uncertainty method and its cost.

    Attributes
    ----------
    name : str
        Registry name (``"mc_dropout"``).
    summary : str
        One line for users.
    forward_passes : float
        Full-network forward passes per prediction at the default options (fractions for shared bases).
    maps : tuple of str
        Uncertainty maps it returns (see ``core.uncertainty.MAP_TITLES``).
    """

    name: str
    summary: str
    forward_passes: float
    maps: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MethodInfo:
        return cls(d["name"], d["summary"], float(d["forward_passes"]), tuple(d["maps"]))


@dataclass
class Prediction:
    """Result of one prediction on one volume.

    Attributes
    ----------
    mask : Volume
        ``(I, J, K)`` uint8 argmax labels, same grid and affine as the input.
    probabilities : Volume
        ``(C, I, J, K)`` float32 mean class probabilities.
    maps : dict of str to Volume
        ``(I, J, K)`` float32 uncertainty maps by name.
    method : str
        Method that produced it.
    timings : dict of str to float
        Seconds per phase (``"inference"``, ``"upload"``, ...).
    info : dict
        Free-form metadata (model name and version, samples, device).
    """

    mask: Volume
    probabilities: Volume
    maps: dict[str, Volume]
    method: str
    timings: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def affine(self) -> np.ndarray:
        return self.mask.affine


@dataclass(frozen=True)
class ModelVersion:
    """One trained version of a named model (versions are never overwritten)."""

    version: str
    method: str
    created: str
    parent: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelVersion:
        return cls(d["version"], d["method"], d.get("created", ""), d.get("parent"), dict(d.get("metrics", {})))


@dataclass(frozen=True)
class ModelSummary:
    """A named model: its versions and the one being served."""

    name: str
    serving: str
    versions: tuple[ModelVersion, ...]
    labels: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "serving": self.serving,
            "versions": [v.to_dict() for v in self.versions],
            "labels": self.labels,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSummary:
        versions = tuple(ModelVersion.from_dict(v) for v in d["versions"])
        return cls(d["name"], d["serving"], versions, dict(d.get("labels", {})))

    def method_of(self, version: str | None = None) -> str:
        wanted = version or self.serving
        return next(v.method for v in self.versions if v.version == wanted)


JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class JobStatus:
    """State of a background job (train, finetune, evaluate).

    Attributes
    ----------
    progress : float
        Fraction done in [0, 1].
    eta_s : float or None
        Estimated seconds left.
    result : dict
        On success, e.g. ``{"model": ..., "version": ..., "before": {...}, "after": {...}}``.
    """

    id: str
    kind: str
    state: str
    progress: float = 0.0
    message: str = ""
    eta_s: float | None = None
    attempts: int = 0
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    @property
    def finished(self) -> bool:
        return self.state in ("succeeded", "failed", "cancelled")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobStatus:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)
