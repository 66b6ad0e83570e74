"""The package as shipped: the napari manifest, package data, and the import contracts covering every package."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "napari_uqseg"


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_packaged_manifest_is_a_file_identical_to_the_top_level_one():
    packaged = PACKAGE / "napari.yaml"
    assert not packaged.is_symlink(), "napari_uqseg/napari.yaml must be a real file (a symlink breaks wheels)"
    assert packaged.read_bytes() == (ROOT / "napari.yaml").read_bytes(), "copy napari.yaml into napari_uqseg/"


def test_every_package_data_pattern_names_an_existing_file():
    patterns = _pyproject()["tool"]["setuptools"]["package-data"]["napari_uqseg"]
    for pattern in patterns:
        assert any(p.is_file() for p in PACKAGE.glob(pattern)), f"package-data {pattern!r} matches no file"


def test_the_layers_contract_is_exhaustive_over_the_package():
    contracts = _pyproject()["tool"]["importlinter"]["contracts"]
    [layers] = [c for c in contracts if c["type"] == "layers"]
    assert layers["containers"] == ["napari_uqseg"] and layers["exhaustive"] is True
    listed = {name.strip() for layer in layers["layers"] for name in layer.split("|")}
    children = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    children |= {p.stem for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    assert children == listed, f"packages outside the layers: {children - listed}; stale layers: {listed - children}"
