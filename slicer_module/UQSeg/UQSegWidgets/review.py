"""Review section of the UQSeg panel: the ranked regions as a table, their states, and submitting the correction."""

from __future__ import annotations

import qt
import slicer
from slicer.i18n import tr as _

COLUMNS = ("#", "Segment", "Wrong", "Mean", "Peak", "mL", "State")


class ReviewSection:
    """Shows ``widget.logic.view.review`` (a ``UQSegLib.logic.CaseReview``); ``widget`` is the ``UQSegWidget``."""

    def __init__(self, widget) -> None:
        self.widget, self.ui = widget, widget.ui
        self.ui.reviewTable.setColumnCount(len(COLUMNS))
        self.ui.reviewTable.setHorizontalHeaderLabels([_(c) for c in COLUMNS])
        self.ui.reviewTable.connect("cellClicked(int,int)", self.onRegionClicked)
        self.ui.doneButton.connect("clicked(bool)", lambda: self.onSetState("done"))
        self.ui.flagButton.connect("clicked(bool)", lambda: self.onSetState("flagged"))
        self.ui.todoButton.connect("clicked(bool)", lambda: self.onSetState("todo"))
        self.ui.submitButton.connect("clicked(bool)", self.onSubmit)

    def updateButtons(self, connected: bool, busy: bool, hasResult: bool) -> None:
        for button in (self.ui.doneButton, self.ui.flagButton, self.ui.todoButton):
            button.enabled = hasResult
        self.ui.submitButton.enabled = connected and hasResult and not busy

    def fillReviewTable(self) -> None:
        from UQSegLib.review_table import table_cells

        review = self.widget.logic.view.review
        rows = review.rows()
        table = self.ui.reviewTable
        table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(table_cells(row, review.result.class_names)):
                item = qt.QTableWidgetItem(text)
                item.setData(qt.Qt.UserRole, row.region_id)
                table.setItem(r, c, item)
        self.ui.reviewProgressLabel.setText(review.progress_text())
        self.widget.updateButtons()

    def selectedRegion(self):
        row = self.ui.reviewTable.currentRow()
        return None if row < 0 else int(self.ui.reviewTable.item(row, 0).data(qt.Qt.UserRole))

    def onRegionClicked(self, row: int, column: int) -> None:
        self.widget.logic.view.jump_to_region(int(self.ui.reviewTable.item(row, 0).data(qt.Qt.UserRole)))

    def onSetState(self, state: str) -> None:
        regionId = self.selectedRegion()
        if regionId is None:
            slicer.util.warningDisplay(_("Select a region in the review table first."), windowTitle="UQSeg")
            return
        self.widget.logic.view.set_region_state(regionId, state)
        row = self.ui.reviewTable.currentRow()
        self.fillReviewTable()
        self.ui.reviewTable.selectRow(min(row + 1, self.ui.reviewTable.rowCount - 1))  # on to the next region

    def onSubmit(self) -> None:
        view, session = self.widget.logic.view, self.widget.logic.session
        with slicer.util.tryWithErrorDisplay(_("Cannot read the edited segmentation."), waitCursor=True):
            label, matrix = view.correction()
            result, review = view.review.result, view.review.ranking
            work = lambda progress: session.submit_correction(result, label, matrix, review)  # noqa: E731
            stored = lambda cid: self.ui.statusLabel.setText(_("Correction {c} stored.").format(c=cid))  # noqa: E731
            self.widget.run(_("Submitting"), work, stored)
