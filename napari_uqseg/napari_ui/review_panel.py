"""The review panel: cases by score, the current case's slice scores and its ranked regions, with keyboard walking.

It renders a :class:`~napari_uqseg.napari_ui.review_model.ReviewCursor` and calls back into the segment widget
to move the viewer, so it holds no napari objects itself.
"""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtCore import QEvent, QObject, Qt, Signal
from qtpy.QtGui import QKeySequence
from qtpy.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from napari_uqseg.core.review_ranking import Region
from napari_uqseg.napari_ui.review_model import REGION_COLUMNS, ReviewCursor, sorted_cases

#: keys that walk the regions while the panel (or a child) has focus
SHORTCUTS = {"next": "N", "previous": "P", "done": "D", "flag": "F"}
STATE_COLOURS = {"todo": None, "done": Qt.GlobalColor.darkGreen, "flagged": Qt.GlobalColor.darkRed}


def _table(columns: tuple[str, ...]) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(list(columns))
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    return table


class ReviewPanel(QGroupBox):
    """Cases, slices and regions, most uncertain first.

    Signals
    -------
    case_selected(str)
        The user picked a case (image layer name) in the case list.
    """

    case_selected = Signal(str)

    def __init__(
        self,
        focus_region: Callable[[Region], None],
        focus_slice: Callable[[int], None],
        on_state_changed: Callable[[], None] | None = None,
    ) -> None:
        super().__init__("Review")
        self._focus_region = focus_region
        self._focus_slice = focus_slice
        self._on_state_changed = on_state_changed or (lambda: None)
        self.cursor: ReviewCursor | None = None
        self._updating = False

        self.cases = QListWidget()
        self.cases.setMaximumHeight(90)
        self.cases.itemClicked.connect(lambda item: self.case_selected.emit(item.data(Qt.ItemDataRole.UserRole)))
        self.case_score = QLabel("No prediction yet.")
        self.slices = _table(("slice", "score"))
        self.slices.setMaximumHeight(120)
        self.slices.cellClicked.connect(self._slice_clicked)
        self.regions = _table(REGION_COLUMNS)
        self.regions.currentCellChanged.connect(self._region_row_changed)
        self.progress = QLabel("0 of 0 reviewed")
        buttons = {name: QPushButton(f"{name.capitalize()} [{key}]") for name, key in SHORTCUTS.items()}
        self.buttons = buttons
        buttons["next"].clicked.connect(self.next)
        buttons["previous"].clicked.connect(self.previous)
        buttons["done"].clicked.connect(lambda: self.mark("done"))
        buttons["flag"].clicked.connect(lambda: self.mark("flagged"))
        # an event filter, not QShortcut: it works without an active window and before the tables'
        # type-ahead search swallows letter keys
        self._keys = {QKeySequence(key)[0].key(): name for name, key in SHORTCUTS.items()}
        for child in (self.regions, self.slices, self.cases, self):
            child.installEventFilter(self)

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Cases (most uncertain first)"))
        layout.addWidget(self.cases)
        layout.addWidget(self.case_score)
        layout.addWidget(QLabel("Slices (most uncertain first)"))
        layout.addWidget(self.slices)
        layout.addWidget(QLabel("Regions (most uncertain first)"))
        layout.addWidget(self.regions)
        row = QHBoxLayout()
        for name in ("previous", "next", "done", "flag"):
            row.addWidget(buttons[name])
        layout.addLayout(row)
        layout.addWidget(self.progress)
        self._enable(False)

    # --- content -------------------------------------------------------------------------------------------
    def set_cases(
        self, scores: dict[str, float], current: str | None = None, notes: dict[str, str] | None = None
    ) -> None:
        """Show the cases ordered by case score (unpredicted last); highlight ``current``.

        ``notes`` (case -> text, e.g. a worklist's flags) are appended to the case's line.
        """
        self.cases.clear()
        for entry in sorted_cases(scores):
            note = (notes or {}).get(entry.name)
            item = QListWidgetItem(entry.label() + (f"  [{note}]" if note else ""))
            item.setData(Qt.ItemDataRole.UserRole, entry.name)
            self.cases.addItem(item)
            if entry.name == current:
                self.cases.setCurrentItem(item)

    def set_cursor(self, cursor: ReviewCursor | None) -> None:
        """Show one case's regions through its cursor (``None``: nothing to review)."""
        self.cursor = cursor
        self._updating = True
        try:
            self.regions.setRowCount(0)
            self.slices.setRowCount(0)
            if cursor is None:
                self.case_score.setText("No prediction yet.")
                self.progress.setText("0 of 0 reviewed")
                self._enable(False)
                return
            ranking = cursor.ranking
            self.case_score.setText(
                f"Case score {ranking.case_score:.3f} ({ranking.map_name}); "
                f"{cursor.total} regions above {ranking.threshold:.3f}"
            )
            for row, (index, score) in enumerate(cursor.slice_rows()):
                self.slices.insertRow(row)
                self.slices.setItem(row, 0, QTableWidgetItem(str(index)))
                self.slices.setItem(row, 1, QTableWidgetItem(f"{score:.3f}"))
            for row, values in enumerate(cursor.rows()):
                self.regions.insertRow(row)
                for col, text in enumerate(values):
                    self.regions.setItem(row, col, QTableWidgetItem(text))
                self._paint_row(row)
            self._enable(cursor.total > 0)
        finally:
            self._updating = False
        self._refresh_progress()

    # --- actions -------------------------------------------------------------------------------------------
    def select_row(self, row: int) -> None:
        """Select region row ``row`` (0-based) as a click would: the viewer moves to it."""
        self.regions.setCurrentCell(row, 0)

    def next(self) -> None:
        """Go to the next region."""
        if self.cursor is not None and self.cursor.total:
            self._show(self.cursor.next())

    def previous(self) -> None:
        """Go to the previous region."""
        if self.cursor is not None and self.cursor.total:
            self._show(self.cursor.previous())

    def mark(self, state: str) -> None:
        """Mark the current region and move on to the next one still to do."""
        if self.cursor is None or self.cursor.current is None:
            return
        row = self.cursor.index
        self.cursor.mark(state)
        self.regions.item(row, REGION_COLUMNS.index("state")).setText(state)
        self._paint_row(row)
        self._refresh_progress()
        self._show(self.cursor.current)
        self._on_state_changed()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API name)
        """N / P / D / F walk the cursor while the panel or one of its lists has the keyboard focus."""
        if event.type() == QEvent.Type.KeyPress and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
            name = self._keys.get(Qt.Key(event.key()))
            if name is not None and self.buttons[name].isEnabled():
                self.buttons[name].click()
                return True
        return super().eventFilter(watched, event)

    # --- internals -----------------------------------------------------------------------------------------
    def _show(self, region: Region | None) -> None:
        if region is not None and self.cursor is not None and self.cursor.index is not None:
            self.regions.setCurrentCell(self.cursor.index, 0)  # fires _region_row_changed, which focuses

    def _region_row_changed(self, row: int, *_: int) -> None:
        if self._updating or self.cursor is None or not 0 <= row < self.cursor.total:
            return
        self._focus_region(self.cursor.select(row))

    def _slice_clicked(self, row: int, _col: int) -> None:
        self._focus_slice(int(self.slices.item(row, 0).text()))

    def _paint_row(self, row: int) -> None:
        colour = STATE_COLOURS.get(self.regions.item(row, REGION_COLUMNS.index("state")).text())
        for col in range(self.regions.columnCount()):
            item = self.regions.item(row, col)
            if colour is None:
                item.setData(Qt.ItemDataRole.ForegroundRole, None)
            else:
                item.setForeground(colour)

    def _refresh_progress(self) -> None:
        if self.cursor is not None:
            self.progress.setText(self.cursor.progress_text())

    def _enable(self, on: bool) -> None:
        for button in self.buttons.values():
            button.setEnabled(on)
