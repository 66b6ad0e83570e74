"""Model section of the UQSeg panel: model and version choice, "Get a model" buttons, promote and rollback."""

from __future__ import annotations

import os

import qt
from slicer.i18n import tr as _


class ModelSection:
    """Keeps ``models`` (name -> ``ModelSummary``) and the buttons that add one; ``widget`` is the ``UQSegWidget``."""

    def __init__(self, widget) -> None:
        self.widget, self.ui = widget, widget.ui
        self.models = {}
        self.buttons = {}
        self.ui.modelComboBox.connect("currentIndexChanged(int)", self.onModelChanged)
        self.ui.promoteButton.connect("clicked(bool)", self.onPromote)
        self.ui.rollbackButton.connect("clicked(bool)", self.onRollback)
        self.addButtonRow()

    def addButtonRow(self) -> None:
        """A "Get a model" row: the shipped starter model, Import model..., Train a model... (UQSegLib.model_setup)."""
        row = qt.QHBoxLayout()
        for key, text, slot in (
            ("starter", _("Use the starter model"), self.onUseStarter),
            ("import", _("Import model..."), self.onImportModel),
            ("train", _("Train a model..."), self.onTrainModel),
        ):
            button = qt.QPushButton(text)
            button.connect("clicked(bool)", slot)
            row.addWidget(button)
            self.buttons[key] = button
        self.widget.layout.insertLayout(1, row)

    def updateButtons(self, connected: bool, busy: bool) -> None:
        for button in self.buttons.values():
            button.enabled = connected and not busy
        self.ui.promoteButton.enabled = self.ui.rollbackButton.enabled = connected and not busy

    def fillModels(self, models) -> None:
        current = self.ui.modelComboBox.currentText
        self.models = {m.name: m for m in models}
        self.ui.modelComboBox.clear()
        for name in self.models:
            self.ui.modelComboBox.addItem(name)
        if current in self.models:
            self.ui.modelComboBox.setCurrentText(current)
        self.onModelChanged()

    def refresh(self) -> None:
        """Ask the server for the models again (after one was added or a job finished)."""
        self.widget.run(_("Refreshing models"), lambda progress: self.widget.logic.session.models(), self.fillModels)

    def onModelChanged(self, index: int = 0) -> None:
        self.ui.versionComboBox.clear()
        model = self.models.get(self.ui.modelComboBox.currentText)
        for version in model.versions if model else ():
            from napari_uqseg.core.recalibration import version_calibration_tag  # models come from the client

            served = _(" (served)") if version.version == model.serving else ""
            tag = version_calibration_tag(version.metrics)  # a fine-tune that could not recalibrate
            self.ui.versionComboBox.addItem(f"{version.version} · {version.method}{served}{tag}", version.version)
        if model:
            self.ui.versionComboBox.setCurrentIndex(self.ui.versionComboBox.findData(model.serving))
        self.widget.updateButtons()

    def onUseStarter(self) -> None:
        setup = self.widget.logic.modelSetup()
        self.widget.run(_("Adding the starter model"), lambda progress: setup.use_starter(), self.onModelAdded)

    def onImportModel(self) -> None:
        path = qt.QFileDialog.getOpenFileName(
            None, _("Import model: its model.json or a .tar.gz"), "", "Models (model.json *.tar.gz *.tgz)"
        )
        if path:
            path = os.path.dirname(path) if os.path.basename(path) == "model.json" else path
            setup = self.widget.logic.modelSetup()
            self.widget.run(_("Importing model"), lambda progress: setup.import_model(path), self.onModelAdded)

    def onTrainModel(self) -> None:
        folder = qt.QFileDialog.getExistingDirectory(
            None, _("Labelled dataset folder (dataset.json, imagesTr, labelsTr)")
        )
        if folder:
            name = os.path.basename(os.path.normpath(folder))
            setup = self.widget.logic.modelSetup()
            work = lambda progress: setup.train_from_folder(folder, name)  # noqa: E731
            self.widget.run(_("Starting training"), work, self.widget.jobSection.onJobStatus)

    def onModelAdded(self, summary) -> None:
        self.ui.statusLabel.setText(
            _("{m} {v} is ready: press Segment.").format(m=summary.name, v=summary.versions[-1].version)
        )
        self.refresh()

    def onPromote(self) -> None:
        model, version = self.ui.modelComboBox.currentText, self.ui.versionComboBox.currentData
        work = lambda progress: self.widget.logic.switchVersion(model, version)  # noqa: E731
        self.widget.run(_("Switching version"), work, self.fillModels)

    def onRollback(self) -> None:
        model = self.ui.modelComboBox.currentText
        self.widget.run(_("Rolling back"), lambda progress: self.widget.logic.rollback(model), self.fillModels)
