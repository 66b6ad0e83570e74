"""The "Explore evaluation" dock widget: a thin Qt view over ``explorer_model.ExplorerModel``.

Open a report folder (button or drag and drop), sort the case table, click a case to load its image, ground truth,
prediction, error map and uncertainty as layers centred on the worst region, and see the case's reliability
diagram, risk-coverage curve and place in the case-score/Dice scatter. With a second report the table shows
B - A and the case opens side by side in napari's grid mode. Reading a case is a few small local NIfTI files,
so it runs in the event loop (no server, no model).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from napari.utils.colormaps import DirectLabelColormap
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_uqseg.core.errors import InputError, UQSegError
from napari_uqseg.core.report import read_report
from napari_uqseg.core.report_plots import draw_case_scatter, draw_reliability, draw_risk_coverage
from napari_uqseg.napari_ui.explorer_model import ExplorerModel, LayerSpec, volume_lines
from napari_uqseg.napari_ui.layers import viewer_camera

if TYPE_CHECKING:
    import napari


class ExplorerWidget(QWidget):
    """Dock widget exploring one evaluation report, or comparing two.

    Attributes
    ----------
    model : ExplorerModel or None
        The loaded report(s).
    plot_data : dict
        What the plot panel shows for the current case (see ``ExplorerModel.plot_data``); empty before a click.
    loaded_layers : list of napari layers
        Layers this widget added for the current case (replaced on the next click).
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.model: ExplorerModel | None = None
        self.plot_data: dict[str, Any] = {}
        self.loaded_layers: list[Any] = []
        self.current_case: str | None = None
        self.sort_key = "dice"
        self.sort_descending: bool | None = None
        self.setAcceptDrops(True)

        self.open_button = QPushButton("Open report…")
        self.compare_button = QPushButton("Compare with…")
        self.compare_button.setEnabled(False)
        self.open_button.clicked.connect(self._choose_report)
        self.compare_button.clicked.connect(self._choose_comparison)
        self.status = QLabel("Open a report folder made by `uqseg evaluate` (or drop it here).")
        self.status.setWordWrap(True)
        self.table = QTableWidget(0, 0)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().sectionClicked.connect(self._header_clicked)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.figure = Figure(figsize=(4, 7.5), layout="constrained")  # re-laid out at every canvas size
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(420)

        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.compare_button)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.table, stretch=1)
        layout.addWidget(self.canvas, stretch=2)

    # -- opening ------------------------------------------------------------------------------------
    def open_report(self, path: str | Path) -> None:
        """Show the report folder ``path`` (replaces any open report and comparison)."""
        self.model = ExplorerModel(read_report(path))
        self.compare_button.setEnabled(True)
        self._after_open()

    def open_comparison(self, path: str | Path) -> None:
        """Compare the open report (A) with the report folder ``path`` (B) on their common cases."""
        if self.model is None:
            raise UQSegError("open a report before comparing")
        self.model = ExplorerModel(self.model.report, read_report(path))
        self.sort_key = "delta_dice"
        self.sort_descending = None
        self._after_open()

    def _after_open(self) -> None:
        assert self.model is not None
        names = self.model.report.name + (f"  vs  B: {self.model.other.name}" if self.model.other else "")
        self.status.setText(f"A: {names}" if self.model.other else names)
        self.current_case = None
        self.refresh_table()

    def _choose_report(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open evaluation report folder")
        if folder:
            self._guarded(self.open_report, folder)

    def _choose_comparison(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Report to compare with (same cases, another method)")
        if folder:
            self._guarded(self.open_comparison, folder)

    def _guarded(self, action: Any, *args: Any) -> None:
        try:
            action(*args)
        except UQSegError as exc:
            self.status.setText(f"error: {exc}")

    def dragEnterEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        folders = [Path(u.toLocalFile()) for u in event.mimeData().urls()]
        if not folders:
            return
        self._guarded(self.open_report, folders[0])
        if len(folders) > 1:
            self._guarded(self.open_comparison, folders[1])

    # -- table --------------------------------------------------------------------------------------
    def sort_by(self, key: str, descending: bool | None = None) -> None:
        """Sort the table by a column key (``dice``, ``case_score``, ``ece``, ``silent_failure``, ``delta_*``);
        ``descending=None`` puts the worst cases first."""
        self.sort_key, self.sort_descending = key, descending
        self.refresh_table()

    def case_order(self) -> list[str]:
        """Case ids in table order."""
        return [self.table.item(r, 0).text() for r in range(self.table.rowCount())]

    def refresh_table(self) -> None:
        if self.model is None:
            return
        columns = self.model.columns
        rows = self.model.sorted_rows(self.sort_key, self.sort_descending)
        self.table.blockSignals(True)
        self.table.clear()
        self.table.setColumnCount(1 + len(columns))
        self.table.setHorizontalHeaderLabels(["case"] + [header for header, _ in columns.values()])
        self._column_keys = ["case_id", *columns]
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            self.table.setItem(r, 0, QTableWidgetItem(row["case_id"]))
            for c, key in enumerate(columns, start=1):
                value = row[key]
                item = QTableWidgetItem("–" if not np.isfinite(value) else f"{value:.3f}")
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        if self.current_case is not None and self.current_case in self.case_order():
            self.table.selectRow(self.case_order().index(self.current_case))
        self.table.blockSignals(False)

    def _header_clicked(self, column: int) -> None:
        key = self._column_keys[column]
        # a second click on the same header reverses the order
        if key == self.sort_key:
            current = self.sort_descending
            default = self.model.columns[key][1] if key in self.model.columns else False
            self.sort_descending = not (default if current is None else current)
        else:
            self.sort_key, self.sort_descending = key, None
        self.refresh_table()

    def _selection_changed(self) -> None:
        rows = {index.row() for index in self.table.selectedIndexes()}
        if rows:
            self._guarded(self.show_case, self.table.item(min(rows), 0).text())

    def select_case(self, case_id: str) -> None:
        """Select a case's row, which loads it (as a click does)."""
        order = self.case_order()
        if case_id not in order:
            raise InputError("case", f"{case_id!r} is not in the open report")
        self.table.selectRow(order.index(case_id))

    # -- viewer -------------------------------------------------------------------------------------
    def show_case(self, case_id: str) -> None:
        """Load a case's layers (both reports side by side in compare mode), jump to its worst region, plot it."""
        assert self.model is not None
        self.current_case = case_id
        for layer in self.loaded_layers:
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self.loaded_layers = []
        specs = self.model.layers(case_id, 0)
        compare = self.model.other is not None and self.model.common_case(case_id)
        if compare:
            specs += self.model.layers(case_id, 1)
        for spec in specs:
            self.loaded_layers.append(self._add_layer(spec))
        grid = _grid(self.viewer)
        grid.enabled = compare
        if compare:
            grid.stride = len(specs) // 2  # one grid cell per report: A left, B right
            grid.shape = (1, 2)
        point = tuple(float(p) for p in self.model.worst_point(case_id))
        self.viewer.dims.ndisplay = 2
        self.viewer.dims.set_point(range(3), point)
        viewer_camera(self.viewer).center = point
        self.plot_data = self.model.plot_data(case_id)
        self._draw_plots()
        labels = {str(k): str(v) for k, v in self.model.report.meta.get("labels", {}).items()}
        volumes = volume_lines(self.model.report.case_detail(case_id), labels)
        legend = f"{case_id}: error map vermillion = false positive, blue = false negative"
        self.status.setText("\n".join([legend, *volumes]))

    def _add_layer(self, spec: LayerSpec) -> Any:
        options = dict(spec.options)
        if spec.kind == "labels":
            colors = options.pop("colors", None)
            if colors is not None:
                options["colormap"] = DirectLabelColormap(color_dict={None: (0.0, 0.0, 0.0, 0.0), **colors})
            return self.viewer.add_labels(spec.data, name=spec.name, affine=spec.affine, **options)
        return self.viewer.add_image(spec.data, name=spec.name, affine=spec.affine, **options)

    def _draw_plots(self) -> None:
        data = self.plot_data
        self.figure.clear()
        axes = self.figure.subplots(3, 1)
        draw_reliability(axes[0], data["reliability"], f"{data['case_id']}: reliability")
        draw_risk_coverage(axes[1], data["risk_coverage"], title=f"{data['case_id']}: risk-coverage")
        scatter = data["scatter"]
        draw_case_scatter(axes[2], scatter["case_scores"], scatter["dice"], scatter["highlight"], data["failure_dice"])
        self.canvas.draw_idle()


def _grid(viewer: napari.Viewer) -> Any:
    """The grid model: ``viewer.canvas.grid`` since napari 0.9, ``viewer.grid`` before."""
    return viewer.canvas.grid if hasattr(viewer, "canvas") else viewer.grid
