"""Static checks of the Slicer module: ScriptedLoadableModule structure, import boundaries, packaging files.

Slicer cannot run here, so ``UQSeg.py`` is checked as source (AST), and ``UQSegLib`` is imported with ``slicer``
made unimportable to prove only the adapter needs it.
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "slicer_module"
MODULE_DIR = ROOT / "UQSeg"
LIB = MODULE_DIR / "UQSegLib"
SECTIONS = MODULE_DIR / "UQSegWidgets"  # the panel's sections: Qt glue, like UQSeg.py
SLICER_NAMES = {"slicer", "vtk", "qt", "ctk"}
HEAVY_NAMES = {"torch", "monai", "torchvision"}
PURE_MODULES = sorted(p.stem for p in LIB.glob("*.py") if p.stem not in ("__init__", "mrml_adapter"))


def imported_roots(path: Path) -> set[str]:
    """Top-level names of every import in a file, including imports inside functions."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def classes(tree: ast.Module) -> dict[str, ast.ClassDef]:
    return {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}


def base_names(cls: ast.ClassDef) -> list[str]:
    return [b.id if isinstance(b, ast.Name) else ast.unparse(b) for b in cls.bases]


def methods(cls: ast.ClassDef) -> set[str]:
    return {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}


@pytest.fixture(scope="module")
def module_tree() -> ast.Module:
    return ast.parse((MODULE_DIR / "UQSeg.py").read_text())


def test_scripted_loadable_module_structure(module_tree):
    found = classes(module_tree)
    assert base_names(found["UQSeg"]) == ["ScriptedLoadableModule"]
    assert base_names(found["UQSegWidget"]) == ["ScriptedLoadableModuleWidget", "VTKObservationMixin"]
    assert base_names(found["UQSegLogic"]) == ["ScriptedLoadableModuleLogic"]
    assert base_names(found["UQSegTest"]) == ["ScriptedLoadableModuleTest"]
    assert {"setup", "cleanup", "enter", "exit", "setParameterNode"} <= methods(found["UQSegWidget"])
    assert {"getParameterNode", "process"} <= methods(found["UQSegLogic"])
    test_methods = methods(found["UQSegTest"])
    assert {"setUp", "runTest"} <= test_methods
    assert any(name.startswith("test_UQSeg") for name in test_methods)
    run_test = next(n for n in found["UQSegTest"].body if isinstance(n, ast.FunctionDef) and n.name == "runTest")
    called = {c.func.attr for c in ast.walk(run_test) if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)}
    assert {n for n in test_methods if n.startswith("test_")} <= called  # runTest runs every test


def test_module_imports_follow_the_template(module_tree):
    imports = {ast.unparse(n) for n in module_tree.body if isinstance(n, ast.Import | ast.ImportFrom)}
    assert "import slicer" in imports
    assert any(i.startswith("from slicer.ScriptedLoadableModule import") for i in imports)
    assert "from slicer.util import VTKObservationMixin" in imports
    assert "from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper" in imports
    # UQSegLib needs the client installed first, so UQSeg.py must import it only inside functions
    assert not any("UQSegLib" in i or "napari_uqseg" in i for i in imports)
    for path in SECTIONS.glob("*.py"):  # so must the sections, imported with UQSeg.py
        top = [n for n in ast.parse(path.read_text()).body if isinstance(n, ast.Import | ast.ImportFrom)]
        assert not any("UQSegLib" in ast.unparse(n) or "napari_uqseg" in ast.unparse(n) for n in top), path.name
    setup = next(
        n for n in classes(module_tree)["UQSegWidget"].body if isinstance(n, ast.FunctionDef) and n.name == "setup"
    )
    assert "slicer.util.loadUI(self.resourcePath('UI/UQSeg.ui'))" in ast.unparse(setup)


def test_only_the_adapter_and_module_import_slicer():
    offenders = {}
    for path in sorted(ROOT.rglob("*.py")):
        roots = imported_roots(path)
        if roots & HEAVY_NAMES:
            offenders[str(path.relative_to(ROOT))] = sorted(roots & HEAVY_NAMES)
        elif roots & SLICER_NAMES and path.name not in ("UQSeg.py", "mrml_adapter.py") and path.parent != SECTIONS:
            offenders[str(path.relative_to(ROOT))] = sorted(roots & SLICER_NAMES)
    assert offenders == {}
    assert imported_roots(LIB / "mrml_adapter.py") & SLICER_NAMES == {"slicer", "vtk"}


@pytest.mark.parametrize("name", PURE_MODULES)
def test_pure_modules_import_without_slicer(name, monkeypatch):
    for blocked in SLICER_NAMES | HEAVY_NAMES:
        monkeypatch.setitem(sys.modules, blocked, None)  # None in sys.modules makes `import x` fail
    monkeypatch.delitem(sys.modules, f"UQSegLib.{name}", raising=False)
    monkeypatch.delattr(importlib.import_module("UQSegLib"), name, raising=False)  # restored after the test
    module = importlib.import_module(f"UQSegLib.{name}")
    assert module.__doc__


def test_ui_file_has_every_widget_the_module_uses(module_tree):
    root = ET.parse(MODULE_DIR / "Resources" / "UI" / "UQSeg.ui").getroot()
    names = {w.get("name") for w in root.iter("widget")}
    panel = [MODULE_DIR / "UQSeg.py", *sorted(SECTIONS.glob("*.py"))]
    used = {name for path in panel for name in re.findall(r"self\.ui\.(\w+)", path.read_text())}
    assert used and used <= names, sorted(used - names)
    bound = {p.find("string").text for p in root.iter("property") if p.get("name") == "SlicerParameterName"}
    wrapper = classes(module_tree)["UQSegParameterNode"]
    fields = {n.target.id for n in wrapper.body if isinstance(n, ast.AnnAssign)}
    assert bound <= fields
    assert "token" not in " ".join(fields).lower()  # a secret never goes into the saved scene


def test_packaging_lists_every_file():
    cmake = (MODULE_DIR / "CMakeLists.txt").read_text().replace("${MODULE_NAME}", "UQSeg")
    for path in [*LIB.glob("*.py"), *SECTIONS.glob("*.py")]:
        listed = f"{path.parent.name}/{path.name}"
        assert listed in cmake, f"{listed} missing from MODULE_PYTHON_SCRIPTS"
    for resource in ("Resources/Icons/UQSeg.png", "Resources/UI/UQSeg.ui", "Resources/requirements.txt"):
        assert resource in cmake
        assert (MODULE_DIR / resource).is_file()
    assert "slicerMacroBuildScriptedModule" in cmake and "slicer_add_python_unittest(SCRIPT UQSeg.py)" in cmake
    extension = (ROOT / "CMakeLists.txt").read_text()
    assert "add_subdirectory(UQSeg)" in extension and "find_package(Slicer REQUIRED)" in extension
    assert (MODULE_DIR / "Resources" / "Icons" / "UQSeg.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_requirements_are_the_light_client_only():
    lines = [
        line.strip()
        for line in (MODULE_DIR / "Resources" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines == ["napari-uqseg>=0.1"]  # no extras: [engine]/[server] would pull in torch
    assert not re.search(r"torch|monai|\[", " ".join(lines))
