"""Slicer module tests outside Slicer: ``UQSegLib`` on the path, and the fake MRML layer for the adapter."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from napari_uqseg.testing.server import tiny_models, uqseg_server  # noqa: F401  (real loopback server fixtures)

MODULE_DIR = Path(__file__).resolve().parents[2] / "slicer_module" / "UQSeg"
TESTS_DIR = Path(__file__).resolve().parent
for _path in (MODULE_DIR, TESTS_DIR):  # Slicer puts the module folder on sys.path; we do the same
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))


@pytest.fixture()
def fake_slicer(monkeypatch: pytest.MonkeyPatch):
    """``(scene, mrml_adapter)``: fake ``slicer``/``vtk`` installed and the adapter imported against them.

    The adapter is removed from ``sys.modules`` afterwards so nothing else sees the fakes.
    """
    import fake_mrml

    scene = fake_mrml.install(monkeypatch)
    monkeypatch.delitem(sys.modules, "UQSegLib.mrml_adapter", raising=False)
    adapter = importlib.import_module("UQSegLib.mrml_adapter")
    yield scene, adapter
    sys.modules.pop("UQSegLib.mrml_adapter", None)
