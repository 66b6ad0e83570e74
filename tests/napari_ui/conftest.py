"""napari UI tests: isolated settings, a local data folder with the tiny models, and a driver for the widget."""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_uqseg.testing.server import tiny_models, uqseg_server  # noqa: F401  (fixtures)

PLUGIN = "napari-uqseg"
LONG_MS = 120_000  # CI machines are slow and shared; waits end as soon as the condition holds


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, monkeypatch):
    """Settings go to a temporary folder so no test reads or writes the user's own."""
    from napari_uqseg.napari_ui.settings import CONFIG_DIR_ENV

    monkeypatch.setenv(CONFIG_DIR_ENV, str(tmp_path / "config"))
    return tmp_path / "config"


@pytest.fixture(scope="session")
def local_data_dir(request, tmp_path_factory) -> Path:
    """A local-backend data folder holding the tiny models (as a user's folder after importing them)."""
    from napari_uqseg.client.local import LocalBackend

    folder = tmp_path_factory.mktemp("local") / "data"
    LocalBackend(folder, "cpu", models=request.getfixturevalue("tiny_models")).close()
    return folder


class Driver:
    """Clicks through the segment widget the way a user does."""

    def __init__(self, make_napari_viewer, qtbot) -> None:
        self.make_viewer, self.qtbot = make_napari_viewer, qtbot

    def open(self, sample: bool = True):
        """A viewer (with the synthetic sample) and the widget docked through the manifest."""
        viewer = self.make_viewer()
        if sample:
            viewer.open_sample(PLUGIN, "synthetic")
        _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Segment with uncertainty")
        return viewer, widget

    def connect_remote(self, widget, url: str, token: str) -> None:
        widget.connection.remote.setChecked(True)
        widget.connection.url.setText(url)
        widget.connection.token.setText(token)
        self._connect(widget)

    def connect_local(self, widget, data_dir: Path) -> None:
        widget.connection.local.setChecked(True)
        widget.connection.data_dir.setText(str(data_dir))
        self._connect(widget)

    def _connect(self, widget) -> None:
        widget.connection.connect_button.click()
        self.qtbot.waitUntil(lambda: widget.connection.worker is None, timeout=LONG_MS)

    def predict(self, widget, model: str, image: str | None = None) -> None:
        if image is not None:
            widget.image_combo.setCurrentText(image)
        widget.model_combo.setCurrentText(model)
        widget.predict_button.click()
        self.qtbot.waitUntil(lambda: widget.predict_worker is None, timeout=LONG_MS)
        assert "uncertain regions" in widget.predict_status.text(), widget.predict_status.text()


@pytest.fixture()
def driver(make_napari_viewer, qtbot) -> Driver:
    return Driver(make_napari_viewer, qtbot)
