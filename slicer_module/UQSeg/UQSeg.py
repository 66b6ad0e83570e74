"""UQSeg: uncertainty-aware segmentation from a napari-uqseg server, reviewed and corrected in 3D Slicer.

Slicer naming (camelCase methods) wins over PEP 8 in this file, as in Slicer's own modules. All work that needs no
Slicer lives in ``UQSegLib`` (tested outside Slicer); MRML access goes through ``UQSegLib.mrml_adapter``.
``UQSegLib`` needs the light ``napari-uqseg`` client, which is installed on first use, so it is imported late.
"""

from __future__ import annotations

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
from UQSegWidgets.calibrated import CalibratedSection
from UQSegWidgets.client_install import ensureClient
from UQSegWidgets.jobs import JobSection
from UQSegWidgets.models import ModelSection
from UQSegWidgets.review import ReviewSection
from UQSegWidgets.worklist import WorklistSection

POLL_MS = 150  # how often the main thread collects finished network calls


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


class UQSegWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Panel: server, segment, uncertainty; the model, review, job and worklist sections live in ``UQSegWidgets``.

    Network calls run on one worker thread (``run``); their results come back on this (main) thread.
    """

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self.worker = None
        self.task = None

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
        self.ui.connectButton.connect("clicked(bool)", self.onConnect)
        self.ui.segmentButton.connect("clicked(bool)", self.onSegment)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancel)
        self.ui.mapComboBox.connect("currentIndexChanged(int)", self.onMapChanged)
        self.ui.opacitySlider.connect("valueChanged(double)", self.onOpacity)
        self.modelSection = ModelSection(self)
        self.reviewSection = ReviewSection(self)
        self.jobSection = JobSection(self)
        self.calibratedSection = CalibratedSection(self)  # TTA choice, volumes with intervals, contours' guarantee
        self.worklistSection = WorklistSection(self)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.initializeParameterNode()
        self.updateButtons()

    def cleanup(self) -> None:
        self.removeObservers()
        self.pollTimer.stop()
        self.jobSection.stop()
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
        from napari_uqseg.client import describe_error

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
        self.ui.segmentButton.enabled = connected and not busy and self.ui.modelComboBox.count > 0
        self.ui.cancelButton.enabled = self.task is not None
        for section in ("modelSection", "reviewSection", "jobSection"):  # not yet there while setup() runs
            if not hasattr(self, section):
                return
        self.modelSection.updateButtons(connected, busy)
        self.reviewSection.updateButtons(connected, busy, self.logic.hasResult())
        self.jobSection.updateButtons(connected)

    # --- server, segment, show ---------------------------------------------------------------------------------

    def onConnect(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Cannot install the napari-uqseg client."), waitCursor=True):
            if not ensureClient(self.resourcePath("requirements.txt")):
                return
        url, token = self.ui.serverUrlLineEdit.text, self.ui.tokenLineEdit.text
        self.run(_("Connecting"), lambda progress: self.logic.connect(url, token), self.onConnected)

    def onConnected(self, info) -> None:
        self.ui.serverStatusLabel.setText(info.describe())
        self.ui.methodsLabel.setText(", ".join(f"{m.name} ({m.forward_passes:g} passes)" for m in info.methods))
        self.modelSection.fillModels(info.models)

    def onSegment(self) -> None:
        from UQSegLib import mrml_adapter

        with slicer.util.tryWithErrorDisplay(_("Cannot read the input volume."), waitCursor=True):
            node = self._parameterNode.inputVolume
            image, matrix = mrml_adapter.image_of(node)  # read MRML here, on the main thread
            model, version = self.ui.modelComboBox.currentText, self.ui.versionComboBox.currentData
            options = self.calibratedSection.predictOptions()
            work = lambda progress: self.logic.session.predict(  # noqa: E731
                image, matrix, model, version, options, progress=progress, source=node.GetName()
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
            self.reviewSection.fillReviewTable()
            self.calibratedSection.fill(result)
            self.ui.progressBar.setValue(100)
            seconds = sum(result.timings.values())
            self.ui.statusLabel.setText(
                _("Segmented with {m} {v} in {s:.1f} s.").format(m=result.model, v=result.version, s=seconds)
            )

    def onMapChanged(self, index: int) -> None:
        if self.logic.hasResult() and self.ui.mapComboBox.currentText:
            with slicer.util.tryWithErrorDisplay(_("Cannot show this map."), waitCursor=True):
                self.logic.view.show_map(self.ui.mapComboBox.currentText, self._parameterNode.opacity)
                self.reviewSection.fillReviewTable()

    def onOpacity(self, value: float) -> None:
        if self.logic.hasResult():
            from UQSegLib import mrml_adapter

            mrml_adapter.set_foreground_opacity(value)


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
