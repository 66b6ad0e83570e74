"""Worklist section of the UQSeg panel: a triage's cases, most uncertain first; clicking a row loads that case."""

from __future__ import annotations

import qt
import slicer
from slicer.i18n import tr as _


class WorklistSection:
    """A "Worklist" group built in code (not in the .ui file); ``widget`` is the ``UQSegWidget``."""

    def __init__(self, widget) -> None:
        self.widget = widget
        self.source = None  # client.worklist_source.WorklistSource shown in the table
        section = qt.QGroupBox(_("Worklist"))
        layout = qt.QVBoxLayout(section)
        buttons = qt.QHBoxLayout()
        for text, slot in ((_("Open triage folder…"), self.onOpenFolder), (_("Triage job…"), self.onOpenJob)):
            button = qt.QPushButton(text)
            button.connect("clicked(bool)", slot)
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.table = qt.QTableWidget()
        self.table.setEditTriggers(qt.QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(qt.QAbstractItemView.SelectRows)
        self.table.connect("cellClicked(int,int)", self.onCaseClicked)
        layout.addWidget(self.table)
        widget.layout.insertWidget(widget.layout.count() - 1, section)

    def onOpenFolder(self) -> None:
        folder = qt.QFileDialog.getExistingDirectory(None, _("Folder written by uqseg triage"))
        if folder:
            from napari_uqseg.client import LocalWorklist

            with slicer.util.tryWithErrorDisplay(_("Cannot open the worklist."), waitCursor=True):
                self.fill(LocalWorklist(folder))

    def onOpenJob(self) -> None:
        session = self.widget.logic.session
        if session is None:
            slicer.util.warningDisplay(_("Connect to the server first."), windowTitle="UQSeg")
            return
        jobId = qt.QInputDialog.getText(None, "UQSeg", _("Job id of a finished triage job:")).strip()
        if jobId:
            from napari_uqseg.client import RemoteWorklist

            with slicer.util.tryWithErrorDisplay(_("Cannot open the worklist."), waitCursor=True):
                self.fill(RemoteWorklist(session.backend, jobId))

    def fill(self, source) -> None:
        from UQSegLib.worklist_table import WORKLIST_COLUMNS, table_rows

        self.source = source
        self.table.setColumnCount(len(WORKLIST_COLUMNS))
        self.table.setHorizontalHeaderLabels([_(c) for c in WORKLIST_COLUMNS])
        rows = table_rows(source.rows)
        self.table.setRowCount(len(rows))
        for r, cells in enumerate(rows):
            for c, text in enumerate(cells):
                self.table.setItem(r, c, qt.QTableWidgetItem(text))

    def onCaseClicked(self, row: int, column: int) -> None:
        from UQSegLib.worklist_table import open_case

        source, case = self.source, self.table.item(row, 1).text()
        self.widget.run(
            _("Opening {case}").format(case=case),
            lambda progress: open_case(source, case),
            lambda loaded: self.onCaseLoaded(case, *loaded),
        )

    def onCaseLoaded(self, case: str, imageKji, result) -> None:
        from UQSegLib import mrml_adapter

        with slicer.util.tryWithErrorDisplay(_("Cannot show the case."), waitCursor=True):
            node = mrml_adapter.show_worklist_case(self.widget.logic.view, case, imageKji, result)
            self.widget._parameterNode.inputVolume = node
            self.widget.onSegmented(result, node)
            self.widget.ui.statusLabel.setText(self.source.row(case).reason)
