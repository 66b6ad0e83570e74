"""Connection section: Local (in-process engine) or Remote (URL + token), tested in a worker and remembered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QButtonGroup,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QWidget,
)

from napari_uqseg.client.backend import Backend
from napari_uqseg.client.errors import describe_error
from napari_uqseg.core.errors import InputError
from napari_uqseg.napari_ui.settings import Settings, save_settings
from napari_uqseg.napari_ui.workers import run_task


def make_backend(settings: Settings) -> Backend:
    """The client backend the settings describe (imported late: the local one loads the engine).

    Raises
    ------
    InputError
        Remote mode with an address that is not ``http(s)://``.
    """
    if settings.mode == "local":
        from napari_uqseg.client.local import LocalBackend

        return LocalBackend(settings.data_dir or None)
    url = settings.url.strip()
    if not url.startswith(("http://", "https://")):
        raise InputError("server address", f"{url!r} must start with http:// or https://")
    from napari_uqseg.client.output_download import ROI_MARGIN
    from napari_uqseg.client.remote import RemoteBackend

    # checks the protocol version on the way; outputs travel as the region of interest (docs/architecture.md)
    return RemoteBackend(url, token=settings.token or None, roi_margin=ROI_MARGIN)


def set_status(label: QLabel, text: str, error: bool = False) -> None:
    """Show ``text`` under a section, red for errors (selectable so users can copy it into a report)."""
    label.setText(text)
    label.setStyleSheet("color: #e0603a;" if error else "")
    label.setProperty("error", error)


class ConnectionPanel(QGroupBox):
    """Choose Local or Remote, connect (which tests the connection) and remember the choice.

    Signals
    -------
    connected(object, dict)
        A working backend and its capabilities (emitted on the GUI thread).
    """

    connected = Signal(object, dict)

    def __init__(self, settings: Settings, factory: Callable[[Settings], Backend] = make_backend) -> None:
        super().__init__("Connection")
        self._factory = factory
        self._settings = settings
        self.backend: Backend | None = None
        self.worker: Any = None

        self.local = QRadioButton("Local (this computer)")
        self.remote = QRadioButton("Remote server")
        group = QButtonGroup(self)
        group.addButton(self.local)
        group.addButton(self.remote)
        (self.local if settings.mode == "local" else self.remote).setChecked(True)
        self.data_dir = QLineEdit(settings.data_dir)
        self.data_dir.setPlaceholderText("default: your napari-uqseg data folder")
        browse = QPushButton("…")
        browse.setMaximumWidth(30)
        browse.clicked.connect(self._browse)
        self.url = QLineEdit(settings.url)
        self.token = QLineEdit(settings.token)
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("access token (if the server needs one)")
        self.connect_button = QPushButton("Connect")
        self.connect_button.clicked.connect(self.connect_backend)
        self.status = QLabel("Not connected.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(
            self.status.textInteractionFlags() | Qt.TextInteractionFlag.TextSelectableByMouse
        )

        form = QFormLayout(self)
        modes = QHBoxLayout()
        modes.addWidget(self.local)
        modes.addWidget(self.remote)
        form.addRow(modes)
        store = QHBoxLayout()
        store.addWidget(self.data_dir)
        store.addWidget(browse)
        self._store_row = _row(store)
        form.addRow("Data folder", self._store_row)
        form.addRow("Server", self.url)
        form.addRow("Token", self.token)
        form.addRow(self.connect_button)
        form.addRow(self.status)
        self.local.toggled.connect(self._mode_changed)
        self._mode_changed()

    def current_settings(self) -> Settings:
        """The settings the fields show (model/method choices carried over)."""
        s = self._settings
        return Settings(
            mode="local" if self.local.isChecked() else "remote",
            url=self.url.text().strip(),
            token=self.token.text().strip(),
            data_dir=self.data_dir.text().strip(),
            model=s.model,
            method=s.method,
        )

    def connect_backend(self) -> None:
        """Build the backend and ask it for its capabilities in a worker; remember the settings on success."""
        if self.worker is not None:
            return
        settings = self.current_settings()
        set_status(self.status, "Connecting…")
        self.connect_button.setEnabled(False)

        def work(progress: Any) -> tuple[Backend, dict]:
            backend = self._factory(settings)
            try:
                return backend, backend.capabilities()
            except BaseException:
                backend.close()
                raise

        def returned(value: tuple[Backend, dict]) -> None:
            backend, caps = value
            if self.backend is not None and self.backend is not backend:
                self.backend.close()
            self.backend = backend
            self._settings = settings
            save_settings(settings)
            where = "this computer" if settings.mode == "local" else settings.url
            set_status(self.status, f"Connected to {where} ({caps.get('device', 'unknown device')}).")
            self.connected.emit(backend, caps)

        def errored(exc: BaseException) -> None:
            set_status(self.status, describe_error(exc, "Connection"), error=True)

        def finished() -> None:
            self.worker = None
            self.connect_button.setEnabled(True)

        self.worker = run_task(work, on_returned=returned, on_errored=errored, on_finished=finished)

    def remember(self, **changes: str) -> None:
        """Update remembered choices (e.g. ``model=...``) and save them."""
        for key, value in changes.items():
            setattr(self._settings, key, value)
        save_settings(self._settings)

    def close_backend(self) -> None:
        """Release the backend (widget closing)."""
        if self.backend is not None:
            self.backend.close()
            self.backend = None

    def _mode_changed(self) -> None:
        local = self.local.isChecked()
        self._store_row.setEnabled(local)
        self.url.setEnabled(not local)
        self.token.setEnabled(not local)
        self.connect_button.setText("Connect" if local else "Test connection")

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Data folder", self.data_dir.text())
        if folder:
            self.data_dir.setText(folder)


def _row(layout: QHBoxLayout) -> QWidget:
    widget = QWidget()
    layout.setContentsMargins(0, 0, 0, 0)
    widget.setLayout(layout)
    return widget
