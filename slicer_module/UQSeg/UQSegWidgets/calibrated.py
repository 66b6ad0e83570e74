"""Volumes-and-contours section of the UQSeg panel: test-time augmentation for the next segmentation, and the
current result's structure volumes with calibrated intervals (a Segment Statistics-like table, mL) and the conformal
contours' guarantee in words. The rows and texts come from ``UQSegLib.calibrated``."""

from __future__ import annotations

import qt
from slicer.i18n import tr as _

#: (mode, title) of the TTA choices; the modes are ``napari_uqseg.core.wire.TTA_MODES`` (checked by the tests; the
#: client may not be installed yet when the panel is built, so they cannot be imported here)
TTA_CHOICES = (
    ("none", "none"),
    ("flips", "flips (one per axis; averages the mirrored predictions)"),
    ("flips+intensity", "flips + contrast x1.1 / x0.9"),
)


class CalibratedSection:
    """A "Volumes and contours" group built in code (not in the .ui file); ``widget`` is the ``UQSegWidget``."""

    def __init__(self, widget) -> None:
        section = qt.QGroupBox(_("Volumes and contours"))
        form = qt.QFormLayout(section)
        self.ttaComboBox = qt.QComboBox()
        for mode, title in TTA_CHOICES:
            self.ttaComboBox.addItem(_(title), mode)
        self.ttaComboBox.toolTip = _("Test-time augmentation: the model also sees flipped copies; more samples, slower")
        form.addRow(_("Test-time augmentation"), self.ttaComboBox)
        self.table = qt.QTableWidget()
        self.table.setEditTriggers(qt.QAbstractItemView.NoEditTriggers)
        form.addRow(self.table)
        self.riskLabel = qt.QLabel(_("Segment to see each structure's volume (mL) with its calibrated interval."))
        self.riskLabel.setWordWrap(True)
        form.addRow(self.riskLabel)
        widget.layout.insertWidget(widget.layout.count() - 1, section)

    def predictOptions(self) -> dict:
        """Prediction options of the chosen TTA mode (``{}`` for none)."""
        from UQSegLib.calibrated import predict_options

        return predict_options(self.ttaComboBox.currentData)

    def fill(self, result) -> None:
        """Show a ``SegmentationResult``'s volumes with their 80/90/95 % intervals and the contours' guarantee."""
        from UQSegLib.calibrated import TABLE_COLUMNS, summary_text, volume_table_rows

        outputs = result.calibrated
        rows = volume_table_rows(outputs, result.class_names) if outputs is not None else []
        self.table.setColumnCount(len(TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels([_(c) for c in TABLE_COLUMNS])
        self.table.setRowCount(len(rows))
        for r, cells in enumerate(rows):
            for c, text in enumerate(cells):
                self.table.setItem(r, c, qt.QTableWidgetItem(text))
        self.riskLabel.setText(summary_text(outputs))
