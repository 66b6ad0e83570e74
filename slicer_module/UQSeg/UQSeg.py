"""UQSeg: uncertainty-aware segmentation from a napari-uqseg server, reviewed and corrected in 3D Slicer.

Slicer naming (camelCase methods) wins over PEP 8 in this file, as in Slicer's own modules. All work that needs no
Slicer lives in ``UQSegLib`` (tested outside Slicer); MRML access goes through ``UQSegLib.mrml_adapter``.
``UQSegLib`` needs the light ``napari-uqseg`` client, which is installed on first use, so it is imported late.
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import Annotated

import numpy as np
import qt
import slicer
from slicer import vtkMRMLScalarVolumeNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

POLL_MS = 150  # how often the main thread collects finished network calls
JOB_POLL_MS = 2000  # how often a running fine-tune job is polled


class UQSeg(ScriptedLoadableModule):
    """Module description shown in Slicer."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("UQSeg")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["napari-uqseg developers"]
        self.parent.helpText = _(
            "Segment a volume on a napari-uqseg server, see where the model is uncertain (heatmap), review the most "
            "uncertain regions first, submit corrections and fine-tune a new model version."
        )
        self.parent.acknowledgementText = _("Built on the napari-uqseg engine, server and torch-free client.")


@parameterNodeWrapper
class UQSegParameterNode:
    """Saved with the scene (the token is deliberately not)."""

    inputVolume: vtkMRMLScalarVolumeNode
    serverUrl: str = "http://127.0.0.1:8765"
    opacity: Annotated[float, WithinRange(0.0, 1.0)] = 0.5


def ensureClient(requirementsPath: str) -> bool:
    """Install the light napari-uqseg client into Slicer's Python if missing (main thread: pip makes Qt objects)."""
    try:
        importlib.import_module("napari_uqseg.client.backend")
        return True
    except ImportError:
        pass
    for name in ("slicer.packaging", "slicer.pydeps"):  # Slicer >= 5.12 / the 5.11 preview name
        try:
            helpers = importlib.import_module(name)
        except ImportError:
            continue
        helpers.pip_ensure(helpers.load_requirements(requirementsPath), requester="UQSeg")
        break
    else:
        if not slicer.util.confirmOkCancelDisplay(
            _("UQSeg needs the light napari-uqseg client (no PyTorch). Install?")
        ):
            return False
        slicer.util.pip_install(["-r", requirementsPath])
    importlib.invalidate_caches()
    importlib.import_module("napari_uqseg.client.backend")
    return True


class UQSegWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Panel: server, segment, uncertainty, review, fine-tune. Network calls run on one worker thread."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self.worker = None
        self.task = None
        self.jobWatch = None  # client.job_wait.JobWatch of the running job

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/UQSeg.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = UQSegLogic()

        self.pollTimer = qt.QTimer()
        self.pollTimer.setInterval(POLL_MS)
        self.pollTimer.timeout.connect(self.onPoll)
        self.jobTimer = qt.QTimer()
        self.jobTimer.setInterval(JOB_POLL_MS)
        self.jobTimer.timeout.connect(self.onJobPoll)

        self.ui.reviewTable.setColumnCount(7)
        self.ui.reviewTable.setHorizontalHeaderLabels(
            ["#", _("Segment"), _("Wrong"), _("Mean"), _("Peak"), _("mL"), _("State")]
        )
        self.ui.connectButton.connect("clicked(bool)", self.onConnect)
        self.ui.modelComboBox.connect("currentIndexChanged(int)", self.onModelChanged)
        self.ui.segmentButton.connect("clicked(bool)", self.onSegment)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancel)
        self.ui.mapComboBox.connect("currentIndexChanged(int)", self.onMapChanged)
        self.ui.opacitySlider.connect("valueChanged(double)", self.onOpacity)
        self.ui.reviewTable.connect("cellClicked(int,int)", self.onRegionClicked)
        self.ui.doneButton.connect("clicked(bool)", lambda: self.onSetState("done"))
        self.ui.flagButton.connect("clicked(bool)", lambda: self.onSetState("flagged"))
        self.ui.todoButton.connect("clicked(bool)", lambda: self.onSetState("todo"))
        self.ui.submitButton.connect("clicked(bool)", self.onSubmit)
        self.ui.finetuneButton.connect("clicked(bool)", self.onFinetune)
        self.ui.cancelJobButton.connect("clicked(bool)", self.onCancelJob)
        self.ui.promoteButton.connect("clicked(bool)", self.onPromote)
        self.ui.rollbackButton.connect("clicked(bool)", self.onRollback)
        self.setupWorklist()
        self.setupModelButtons()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.initializeParameterNode()
        self.updateButtons()

    def cleanup(self) -> None:
        self.removeObservers()
        self.pollTimer.stop()
        self.jobTimer.stop()
        if self.worker is not None:
            self.worker.shutdown(timeout=0.5)

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)
        self.logic.forgetResult()

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            firstVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolume:
                self._parameterNode.inputVolume = firstVolume

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)

    # --- background work -------------------------------------------------------------------------------------

    def run(self, label: str, work, onDone, cancellable: bool = False, quiet: bool = False) -> None:
        """Run ``work(progress)`` on the worker thread; ``onDone(result)`` later on this (main) thread."""
        if self.worker is None:
            from UQSegLib.background import BackgroundWorker

            self.worker = BackgroundWorker()
        task = self.worker.submit(work, onDone, self.onError, self.onProgress, label)
        if cancellable:
            self.task = task
            self.ui.progressBar.setValue(0)
        if not quiet:
            self.ui.statusLabel.setText(_("{label}…").format(label=label))
        self.pollTimer.start()
        self.updateButtons()

    def onPoll(self) -> None:
        self.worker.poll()
        if not self.worker.busy:
            self.pollTimer.stop()
            self.task = None
            self.updateButtons()

    def onProgress(self, done: float, total: float, message: str) -> None:
        self.ui.progressBar.setValue(int(100 * done / total) if total else 0)
        self.ui.statusLabel.setText(message)

    def onError(self, exc: BaseException) -> None:
        from napari_uqseg.client.errors import describe_error

        message = describe_error(exc)
        self.ui.statusLabel.setText(message)
        if message != "Cancelled.":
            logging.error("UQSeg: %s", message)
            slicer.util.errorDisplay(message, windowTitle="UQSeg")

    def onCancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.ui.statusLabel.setText(_("Cancelling…"))

    def updateButtons(self) -> None:
        connected = self.logic.session is not None
        busy = self.worker is not None and self.worker.busy
        hasResult = self.logic.hasResult()
        self.ui.segmentButton.enabled = connected and not busy and self.ui.modelComboBox.count > 0
        self.ui.cancelButton.enabled = self.task is not None
        for button in (self.ui.doneButton, self.ui.flagButton, self.ui.todoButton):
            button.enabled = hasResult
        self.ui.submitButton.enabled = connected and hasResult and not busy
        self.ui.finetuneButton.enabled = connected and self.jobWatch is None and self.ui.modelComboBox.count > 0
        self.ui.cancelJobButton.enabled = self.jobWatch is not None
        for button in getattr(self, "modelButtons", {}).values():
            button.enabled = connected and not busy
        self.ui.promoteButton.enabled = self.ui.rollbackButton.enabled = connected and not busy

    # --- server, models --------------------------------------------------------------------------------------

    def onConnect(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Cannot install the napari-uqseg client."), waitCursor=True):
            if not ensureClient(self.resourcePath("requirements.txt")):
                return
        url, token = self.ui.serverUrlLineEdit.text, self.ui.tokenLineEdit.text
        self.run(_("Connecting"), lambda progress: self.logic.connect(url, token), self.onConnected)

    def onConnected(self, info) -> None:
        self.ui.serverStatusLabel.setText(info.describe())
        self.ui.methodsLabel.setText(", ".join(f"{m.name} ({m.forward_passes:g} passes)" for m in info.methods))
        self.fillModels(info.models)

    def fillModels(self, models) -> None:
        current = self.ui.modelComboBox.currentText
        self.models = {m.name: m for m in models}
        self.ui.modelComboBox.clear()
        for name in self.models:
            self.ui.modelComboBox.addItem(name)
        if current in self.models:
            self.ui.modelComboBox.setCurrentText(current)
        self.onModelChanged()

    def onModelChanged(self, index: int = 0) -> None:
        self.ui.versionComboBox.clear()
        model = getattr(self, "models", {}).get(self.ui.modelComboBox.currentText)
        for version in model.versions if model else ():
            served = _(" (served)") if version.version == model.serving else ""
            self.ui.versionComboBox.addItem(f"{version.version} · {version.method}{served}", version.version)
        if model:
            self.ui.versionComboBox.setCurrentIndex(self.ui.versionComboBox.findData(model.serving))
        self.updateButtons()

    def setupModelButtons(self) -> None:
        """A "Get a model" row: the shipped starter model, Import model..., Train a model... (UQSegLib.model_setup)."""
        row = qt.QHBoxLayout()
        self.modelButtons = {}
        for key, text, slot in (
            ("starter", _("Use the starter model"), self.onUseStarter),
            ("import", _("Import model..."), self.onImportModel),
            ("train", _("Train a model..."), self.onTrainModel),
        ):
            button = qt.QPushButton(text)
            button.connect("clicked(bool)", slot)
            row.addWidget(button)
            self.modelButtons[key] = button
        self.layout.insertLayout(1, row)

    def onUseStarter(self) -> None:
        self.run(
            _("Adding the starter model"), lambda progress: self.logic.modelSetup().use_starter(), self.onModelAdded
        )

    def onImportModel(self) -> None:
        path = qt.QFileDialog.getOpenFileName(
            None, _("Import model: its model.json or a .tar.gz"), "", "Models (model.json *.tar.gz *.tgz)"
        )
        if path:
            path = os.path.dirname(path) if os.path.basename(path) == "model.json" else path
            self.run(
                _("Importing model"), lambda progress: self.logic.modelSetup().import_model(path), self.onModelAdded
            )

    def onTrainModel(self) -> None:
        folder = qt.QFileDialog.getExistingDirectory(
            None, _("Labelled dataset folder (dataset.json, imagesTr, labelsTr)")
        )
        if folder:
            name = os.path.basename(os.path.normpath(folder))
            work = lambda progress: self.logic.modelSetup().train_from_folder(folder, name)  # noqa: E731
            self.run(_("Starting training"), work, self.onJobStatus)

    def onModelAdded(self, summary) -> None:
        self.ui.statusLabel.setText(
            _("{m} {v} is ready: press Segment.").format(m=summary.name, v=summary.versions[-1].version)
        )
        self.run(_("Refreshing models"), lambda progress: self.logic.session.models(), self.fillModels)

    # --- segment, show ---------------------------------------------------------------------------------------

    def onSegment(self) -> None:
        from UQSegLib import mrml_adapter

        with slicer.util.tryWithErrorDisplay(_("Cannot read the input volume."), waitCursor=True):
            node = self._parameterNode.inputVolume
            image, matrix = mrml_adapter.image_of(node)  # read MRML here, on the main thread
            model, version = self.ui.modelComboBox.currentText, self.ui.versionComboBox.currentData
            work = lambda progress: self.logic.session.predict(  # noqa: E731
                image, matrix, model, version, progress=progress, source=node.GetName()
            )
            self.run(_("Segmenting"), work, lambda result: self.onSegmented(result, node), cancellable=True)

    def onSegmented(self, result, node) -> None:
        with slicer.util.tryWithErrorDisplay(_("Cannot show the result."), waitCursor=True):
            self.logic.view.show(result, node, opacity=self._parameterNode.opacity)
            self.ui.mapComboBox.blockSignals(True)
            self.ui.mapComboBox.clear()
            for name in result.maps_kji:
                self.ui.mapComboBox.addItem(name)
            self.ui.mapComboBox.setCurrentText(self.logic.view.review.ranking.map_name)
            self.ui.mapComboBox.blockSignals(False)
            self.fillReviewTable()
            self.ui.progressBar.setValue(100)
            seconds = sum(result.timings.values())
            self.ui.statusLabel.setText(
                _("Segmented with {m} {v} in {s:.1f} s.").format(m=result.model, v=result.version, s=seconds)
            )

    def onMapChanged(self, index: int) -> None:
        if self.logic.hasResult() and self.ui.mapComboBox.currentText:
            with slicer.util.tryWithErrorDisplay(_("Cannot show this map."), waitCursor=True):
                self.logic.view.show_map(self.ui.mapComboBox.currentText, self._parameterNode.opacity)
                self.fillReviewTable()

    def onOpacity(self, value: float) -> None:
        if self.logic.hasResult():
            from UQSegLib import mrml_adapter

            mrml_adapter.set_foreground_opacity(value)

    # --- worklist (a triage's cases, most uncertain first) --------------------------------------------------------

    def setupWorklist(self) -> None:
        """A "Worklist" section built in code: open a triage folder or job; clicking a row loads that case."""
        section = qt.QGroupBox(_("Worklist"))
        layout = qt.QVBoxLayout(section)
        buttons = qt.QHBoxLayout()
        folderButton = qt.QPushButton(_("Open triage folder…"))
        folderButton.connect("clicked(bool)", self.onOpenWorklistFolder)
        jobButton = qt.QPushButton(_("Triage job…"))
        jobButton.connect("clicked(bool)", self.onOpenWorklistJob)
        buttons.addWidget(folderButton)
        buttons.addWidget(jobButton)
        layout.addLayout(buttons)
        self.worklistTable = qt.QTableWidget()
        self.worklistTable.setEditTriggers(qt.QAbstractItemView.NoEditTriggers)
        self.worklistTable.setSelectionBehavior(qt.QAbstractItemView.SelectRows)
        self.worklistTable.connect("cellClicked(int,int)", self.onWorklistCaseClicked)
        layout.addWidget(self.worklistTable)
        self.layout.insertWidget(self.layout.count() - 1, section)
        self.worklistSource = None

    def onOpenWorklistFolder(self) -> None:
        folder = qt.QFileDialog.getExistingDirectory(None, _("Folder written by uqseg triage"))
        if folder:
            from napari_uqseg.client.worklist_source import LocalWorklist

            with slicer.util.tryWithErrorDisplay(_("Cannot open the worklist."), waitCursor=True):
                self.fillWorklistTable(LocalWorklist(folder))

    def onOpenWorklistJob(self) -> None:
        if self.logic.session is None:
            slicer.util.warningDisplay(_("Connect to the server first."), windowTitle="UQSeg")
            return
        jobId = qt.QInputDialog.getText(None, "UQSeg", _("Job id of a finished triage job:")).strip()
        if jobId:
            from napari_uqseg.client.worklist_source import RemoteWorklist

            with slicer.util.tryWithErrorDisplay(_("Cannot open the worklist."), waitCursor=True):
                self.fillWorklistTable(RemoteWorklist(self.logic.session.backend, jobId))

    def fillWorklistTable(self, source) -> None:
        from UQSegLib.worklist_table import WORKLIST_COLUMNS, table_rows

        self.worklistSource = source
        table = self.worklistTable
        table.setColumnCount(len(WORKLIST_COLUMNS))
        table.setHorizontalHeaderLabels([_(c) for c in WORKLIST_COLUMNS])
        rows = table_rows(source.rows)
        table.setRowCount(len(rows))
        for r, cells in enumerate(rows):
            for c, text in enumerate(cells):
                table.setItem(r, c, qt.QTableWidgetItem(text))

    def onWorklistCaseClicked(self, row: int, column: int) -> None:
        from UQSegLib.worklist_table import open_case

        source, case = self.worklistSource, self.worklistTable.item(row, 1).text()
        self.run(
            _("Opening {case}").format(case=case),
            lambda progress: open_case(source, case),
            lambda loaded: self.onWorklistCaseLoaded(case, *loaded),
        )

    def onWorklistCaseLoaded(self, case: str, imageKji, result) -> None:
        from UQSegLib import mrml_adapter

        with slicer.util.tryWithErrorDisplay(_("Cannot show the case."), waitCursor=True):
            node = mrml_adapter.show_worklist_case(self.logic.view, case, imageKji, result)
            self._parameterNode.inputVolume = node
            self.onSegmented(result, node)
            self.ui.statusLabel.setText(self.worklistSource.row(case).reason)

    # --- review ------------------------------------------------------------------------------------------------

    def fillReviewTable(self) -> None:
        review = self.logic.view.review
        rows = review.rows()
        table = self.ui.reviewTable
        table.setRowCount(len(rows))
        names = review.result.class_names
        for r, row in enumerate(rows):
            cells = (
                str(row.region_id),
                names.get(row.label, "-"),
                f"{row.expected_errors:.1f}",
                f"{row.score:.3f}",
                f"{row.peak:.3f}",
                f"{row.volume_ml:.2f}",
                row.state,
            )
            for c, text in enumerate(cells):
                item = qt.QTableWidgetItem(text)
                item.setData(qt.Qt.UserRole, row.region_id)
                table.setItem(r, c, item)
        self.ui.reviewProgressLabel.setText(review.progress_text())
        self.updateButtons()

    def selectedRegion(self):
        row = self.ui.reviewTable.currentRow()
        return None if row < 0 else int(self.ui.reviewTable.item(row, 0).data(qt.Qt.UserRole))

    def onRegionClicked(self, row: int, column: int) -> None:
        self.logic.view.jump_to_region(int(self.ui.reviewTable.item(row, 0).data(qt.Qt.UserRole)))

    def onSetState(self, state: str) -> None:
        regionId = self.selectedRegion()
        if regionId is None:
            slicer.util.warningDisplay(_("Select a region in the review table first."), windowTitle="UQSeg")
            return
        self.logic.view.set_region_state(regionId, state)
        row = self.ui.reviewTable.currentRow()
        self.fillReviewTable()
        self.ui.reviewTable.selectRow(min(row + 1, self.ui.reviewTable.rowCount - 1))  # walk the queue

    def onSubmit(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Cannot read the edited segmentation."), waitCursor=True):
            label, matrix = self.logic.view.correction()
            result, review = self.logic.view.review.result, self.logic.view.review.ranking
            work = lambda progress: self.logic.session.submit_correction(result, label, matrix, review)  # noqa: E731
            self.run(
                _("Submitting"),
                work,
                lambda cid: self.ui.statusLabel.setText(_("Correction {c} stored.").format(c=cid)),
            )

    # --- fine-tune, versions -------------------------------------------------------------------------------------

    def onFinetune(self) -> None:
        model = self.ui.modelComboBox.currentText
        self.run(_("Starting fine-tune"), lambda progress: self.logic.session.start_finetune(model), self.onJobStatus)

    def onJobPoll(self) -> None:
        if self.jobWatch is not None and not self.worker.busy:
            watch = self.jobWatch  # step(): one status request, in the worker thread; the GUI thread never waits
            self.run(_("Polling job"), lambda progress: watch.step(), self.onJobStatus, quiet=True)

    def onCancelJob(self) -> None:
        jobId = self.jobWatch.job_id
        self.run(_("Cancelling job"), lambda progress: self.logic.session.cancel_job(jobId), self.onJobStatus)

    def onJobStatus(self, status) -> None:
        self.ui.jobProgressBar.setValue(int(100 * status.progress))
        eta = f", {status.eta_s:.0f} s left" if status.eta_s else ""
        self.ui.jobStatusLabel.setText(
            f"{status.kind} {status.id}: {status.state}{eta} {status.message or status.error}"
        )
        if status.state == "succeeded" and status.kind == "finetune":
            from UQSegLib.logic import finetune_report

            self.ui.jobStatusLabel.setText(f"{self.ui.jobStatusLabel.text} {finetune_report(status.result)}")
        if status.finished:
            self.jobWatch = None
        elif self.jobWatch is None or self.jobWatch.job_id != status.id:
            self.jobWatch = self.logic.session.watch_job(status.id)
        if status.finished:
            self.jobTimer.stop()
            self.run(_("Refreshing models"), lambda progress: self.logic.session.models(), self.fillModels)
        else:
            self.jobTimer.start()
        self.updateButtons()

    def onPromote(self) -> None:
        model, version = self.ui.modelComboBox.currentText, self.ui.versionComboBox.currentData
        self.run(_("Switching version"), lambda progress: self.logic.switchVersion(model, version), self.fillModels)

    def onRollback(self) -> None:
        model = self.ui.modelComboBox.currentText
        self.run(_("Rolling back"), lambda progress: self.logic.rollback(model), self.fillModels)


class UQSegLogic(ScriptedLoadableModuleLogic):
    """One server session and the scene side of its latest result. Usable without the widget (self-test).

    ``connect`` and ``session.*`` block and may run on a worker thread; ``view`` (``UQSegLib.mrml_adapter.ResultView``)
    touches MRML and runs on the main thread only.
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.session = None
        self._view = None

    @property
    def view(self):
        """The ``ResultView``; created on first use because UQSegLib needs the client installed first."""
        if self._view is None:
            from UQSegLib.mrml_adapter import ResultView

            self._view = ResultView()
        return self._view

    def hasResult(self) -> bool:
        return self._view is not None and self._view.review is not None

    def forgetResult(self) -> None:
        if self._view is not None:
            self._view.clear()

    def getParameterNode(self):
        return UQSegParameterNode(super().getParameterNode())

    def connect(self, url: str, token: str | None = None):
        """Open a session (replacing the previous one); returns its ``ServerInfo``."""
        from UQSegLib.logic import UQSegSession

        session = UQSegSession.connect(url, token or None)
        if self.session is not None:
            self.session.close()
        self.session = session
        return session.info()

    def modelSetup(self):
        """``UQSegLib.model_setup.ModelSetup`` on the current session (starter, import, train)."""
        from UQSegLib.model_setup import ModelSetup

        return ModelSetup(self.session)

    def switchVersion(self, model: str, version: str):
        """Serve ``version`` of ``model``; returns the refreshed model list."""
        self.session.switch_version(model, version)
        return self.session.models()

    def rollback(self, model: str):
        """Serve the previous version of ``model``; returns the refreshed model list."""
        self.session.rollback(model)
        return self.session.models()

    def process(self, inputNode, model: str, version: str | None = None, opacity: float = 0.5):
        """Headless, blocking: segment ``inputNode`` and show the result (scripts and the self-test)."""
        from UQSegLib import mrml_adapter

        image, matrix = mrml_adapter.image_of(inputNode)
        result = self.session.predict(image, matrix, model, version, source=inputNode.GetName())
        self.view.show(result, inputNode, opacity)
        return result


class UQSegTest(ScriptedLoadableModuleTest):
    """In-Slicer self-test: geometry through real MRML; a server round trip when UQSEG_TEST_SERVER_URL is set."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        requirements = os.path.join(os.path.dirname(__file__), "Resources", "requirements.txt")
        self.assertTrue(ensureClient(requirements), "install napari-uqseg into Slicer's Python to run UQSegTest")
        self.setUp()
        self.test_UQSeg_geometry()
        self.setUp()
        self.test_UQSeg_server()

    def test_UQSeg_geometry(self) -> None:
        """A KJI array and an oblique IJK-to-RAS go to a Volume and come back as segments on the same voxels."""
        self.delayDisplay("Geometry round trip")
        from UQSegLib import geometry, mrml_adapter

        angle = np.deg2rad(20.0)  # oblique, anisotropic, flipped x: what an LPS file becomes after loading
        rotation = np.array([[-np.cos(angle), np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
        matrix = np.eye(4)
        matrix[:3, :3] = rotation @ np.diag([0.8, 1.1, 2.5])
        matrix[:3, 3] = [30.0, -12.0, 40.0]
        image = np.zeros((5, 9, 7), np.float32)  # K, J, I
        image[3, 2, 5] = 1000.0
        node = slicer.util.addVolumeFromArray(image, ijkToRAS=matrix, name="UQSegTestVolume")
        volume = mrml_adapter.volume_of(node)
        self.assertEqual(volume.shape, (7, 9, 5))
        self.assertEqual(float(volume.array[5, 2, 3]), 1000.0)
        np.testing.assert_allclose(volume.affine, matrix, atol=1e-6)
        mask_kji = geometry.kji_from_volume(
            volume.with_array((volume.array > 500).astype(np.uint8)), matrix, image.shape
        )
        seg, ids = mrml_adapter.show_segmentation(mask_kji, {1: "marker"}, node, "UQSegTestSegmentation")
        np.testing.assert_array_equal(mrml_adapter.label_of(seg, node), mask_kji)
        center = seg.GetSegmentCenterRAS(ids[1])
        np.testing.assert_allclose(center, (matrix @ [5, 2, 3, 1])[:3], atol=1e-3)
        self.delayDisplay("Geometry test passed")

    def test_UQSeg_server(self) -> None:
        """Segment a synthetic volume on a running server (skipped without ``UQSEG_TEST_SERVER_URL``)."""
        url = os.environ.get("UQSEG_TEST_SERVER_URL")
        if not url:
            self.delayDisplay("Server test skipped: set UQSEG_TEST_SERVER_URL (and UQSEG_TEST_TOKEN) to run it")
            return
        logic = UQSegLogic()
        info = logic.connect(url, os.environ.get("UQSEG_TEST_TOKEN"))
        self.assertTrue(info.models, "the server has no model")
        grid = np.mgrid[0:24, 0:24, 0:24]
        image = (((grid - 12) ** 2).sum(axis=0) < 36).astype(np.float32) * 100 + 300
        node = slicer.util.addVolumeFromArray(image, ijkToRAS=np.diag([1.5, 1.2, 1.0, 1.0]), name="UQSegTestBlob")
        result = logic.process(node, info.models[0].name)
        self.assertEqual(result.mask_kji.shape, image.shape)
        self.assertIsNotNone(logic.view.heat_node)
        self.assertEqual(logic.view.segmentation_node.GetSegmentation().GetNumberOfSegments(), len(result.class_names))
        self.delayDisplay("Server test passed")
