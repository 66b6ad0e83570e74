"""The npe2 manifest is valid, is the one napari loads for the package, and every command it names imports."""

from __future__ import annotations

from pathlib import Path

import pytest
from npe2 import PluginManifest

ROOT = Path(__file__).resolve().parents[2]


def test_top_level_manifest_is_valid_and_is_the_installed_one():
    manifest = PluginManifest.from_file(ROOT / "napari.yaml")
    installed = PluginManifest.from_distribution("napari-uqseg")
    assert installed.name == manifest.name == "napari-uqseg"
    assert installed.model_dump() == manifest.model_dump()  # the package's napari.yaml is the top-level file
    contributions = manifest.contributions
    assert {w.display_name for w in contributions.widgets} >= {"Segment with uncertainty"}
    assert {s.key for s in contributions.sample_data} == {"synthetic", "brain"}
    [reader] = contributions.readers
    assert reader.accepts_directories and "*.nii.gz" in reader.filename_patterns
    [writer] = contributions.writers
    assert [t.value if hasattr(t, "value") else t for t in writer.layer_types] == ["labels"]


@pytest.mark.parametrize(
    "command", [c.id for c in PluginManifest.from_file(ROOT / "napari.yaml").contributions.commands]
)
def test_every_command_imports(command):
    manifest = PluginManifest.from_file(ROOT / "napari.yaml")
    [cmd] = [c for c in manifest.contributions.commands if c.id == command]
    assert callable(_resolve(cmd.python_name))


def _resolve(python_name: str):
    import importlib

    module, attr = python_name.split(":")
    return getattr(importlib.import_module(module), attr)


@pytest.mark.gui
def test_widget_loads_through_the_manifest(make_napari_viewer):
    from napari_uqseg.napari_ui.segment_widget import SegmentWidget

    viewer = make_napari_viewer()
    dock, widget = viewer.window.add_plugin_dock_widget("napari-uqseg", "Segment with uncertainty")
    assert isinstance(widget, SegmentWidget)
    assert widget.connection.status.text() == "Not connected."
