"""Job section of the UQSeg panel: start a fine-tune, follow it with a timer, cancel it.

The timer never blocks the GUI thread: each tick runs one ``JobWatch.step()`` (a single status request,
answered at once) on the widget's worker thread, and only if that thread is free.
"""

from __future__ import annotations

import qt
from slicer.i18n import tr as _

JOB_POLL_MS = 2000  # how often a running job is polled


class JobSection:
    """Follows at most one job (``watch``, a ``client.job_wait.JobWatch``); ``widget`` is the ``UQSegWidget``."""

    def __init__(self, widget) -> None:
        self.widget, self.ui = widget, widget.ui
        self.watch = None
        self.timer = qt.QTimer()
        self.timer.setInterval(JOB_POLL_MS)
        self.timer.timeout.connect(self.onJobPoll)
        self.ui.finetuneButton.connect("clicked(bool)", self.onFinetune)
        self.ui.cancelJobButton.connect("clicked(bool)", self.onCancelJob)

    def stop(self) -> None:
        self.timer.stop()

    def updateButtons(self, connected: bool) -> None:
        self.ui.finetuneButton.enabled = connected and self.watch is None and self.ui.modelComboBox.count > 0
        self.ui.cancelJobButton.enabled = self.watch is not None

    def onFinetune(self) -> None:
        model, session = self.ui.modelComboBox.currentText, self.widget.logic.session
        self.widget.run(_("Starting fine-tune"), lambda progress: session.start_finetune(model), self.onJobStatus)

    def onJobPoll(self) -> None:
        if self.watch is not None and not self.widget.worker.busy:
            watch = self.watch
            self.widget.run(_("Polling job"), lambda progress: watch.step(), self.onJobStatus, quiet=True)

    def onCancelJob(self) -> None:
        jobId, session = self.watch.job_id, self.widget.logic.session
        self.widget.run(_("Cancelling job"), lambda progress: session.cancel_job(jobId), self.onJobStatus)

    def onJobStatus(self, status) -> None:
        from UQSegLib.logic import job_status_text

        self.ui.jobProgressBar.setValue(int(100 * status.progress))
        self.ui.jobStatusLabel.setText(job_status_text(status))
        if status.finished:
            self.watch = None
            self.timer.stop()
            self.widget.modelSection.refresh()
        else:
            if self.watch is None or self.watch.job_id != status.id:
                self.watch = self.widget.logic.session.watch_job(status.id)
            self.timer.start()
        self.widget.updateButtons()
