"""A fake of the few ``qt`` classes the panel sections build in code, with PythonQt's habits: Qt properties read as
attributes (``combo.currentData``, ``label.text``, ``table.rowCount``), setters as methods.

Slicer (and its PythonQt) cannot run here; the sections are thin glue over ``UQSegLib``, and this lets a test drive
that glue with real ``UQSegLib`` results instead of only reading its source.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class QGroupBox:
    def __init__(self, title: str = "") -> None:
        self.title, self.rows = title, []


class QFormLayout:
    def __init__(self, parent: QGroupBox) -> None:
        self.parent = parent

    def addRow(self, *items: Any) -> None:
        self.parent.rows.append(items)


class QComboBox:
    def __init__(self) -> None:
        self.items: list[tuple[str, Any]] = []
        self.currentIndex = -1
        self.toolTip = ""

    def addItem(self, text: str, data: Any = None) -> None:
        self.items.append((text, data))
        self.currentIndex = max(self.currentIndex, 0)

    def findData(self, data: Any) -> int:
        return next((i for i, (_, d) in enumerate(self.items) if d == data), -1)

    def setCurrentIndex(self, index: int) -> None:
        self.currentIndex = index

    @property
    def currentData(self) -> Any:
        return self.items[self.currentIndex][1] if self.currentIndex >= 0 else None


class QLabel:
    def __init__(self, text: str = "") -> None:
        self.text, self.wordWrap = text, False

    def setText(self, text: str) -> None:
        self.text = text

    def setWordWrap(self, on: bool) -> None:
        self.wordWrap = on


class QTableWidgetItem:
    def __init__(self, text: str) -> None:
        self._text = text

    def text(self) -> str:
        return self._text


class QTableWidget:
    def __init__(self) -> None:
        self.rowCount = self.columnCount = 0
        self.headers: list[str] = []
        self.cells: dict[tuple[int, int], QTableWidgetItem] = {}
        self.editTriggers = None

    def setEditTriggers(self, triggers: Any) -> None:
        self.editTriggers = triggers

    def setColumnCount(self, n: int) -> None:
        self.columnCount = n

    def setHorizontalHeaderLabels(self, labels: list[str]) -> None:
        assert len(labels) == self.columnCount, "more header labels than columns"
        self.headers = list(labels)

    def setRowCount(self, n: int) -> None:
        self.rowCount = n
        self.cells = {k: v for k, v in self.cells.items() if k[0] < n}

    def setItem(self, row: int, column: int, item: QTableWidgetItem) -> None:
        assert row < self.rowCount and column < self.columnCount, "cell outside the table"
        self.cells[(row, column)] = item

    def item(self, row: int, column: int) -> QTableWidgetItem | None:
        return self.cells.get((row, column))


class PanelLayout:
    """The module panel's ``layout`` (a QVBoxLayout ending in a stretch)."""

    def __init__(self) -> None:
        self.widgets: list[Any] = ["stretch"]

    def count(self) -> int:
        return len(self.widgets)

    def insertWidget(self, index: int, widget: Any) -> None:
        self.widgets.insert(index, widget)


def install(monkeypatch: Any) -> None:
    """Put fake ``qt`` and ``slicer.i18n`` (``tr`` returns its text) into ``sys.modules``."""
    qt = types.ModuleType("qt")
    for cls in (QGroupBox, QFormLayout, QComboBox, QLabel, QTableWidget, QTableWidgetItem):
        setattr(qt, cls.__name__, cls)
    qt.QAbstractItemView = types.SimpleNamespace(NoEditTriggers="NoEditTriggers")
    slicer = sys.modules.get("slicer") or types.ModuleType("slicer")
    i18n = types.ModuleType("slicer.i18n")
    i18n.tr = lambda text: text
    slicer.i18n = i18n
    monkeypatch.setitem(sys.modules, "qt", qt)
    monkeypatch.setitem(sys.modules, "slicer", slicer)
    monkeypatch.setitem(sys.modules, "slicer.i18n", i18n)
