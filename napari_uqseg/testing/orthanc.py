"""A real Orthanc PACS with its DICOMweb plugin on a free loopback port, for tests.

Debian packages ``orthanc`` and ``orthanc-dicomweb`` (installed by ``scripts/setup_env.sh``). The fixture writes
its own configuration (temporary storage, DICOMweb on, authentication off, loopback only, no DICOM port)
and never touches a system service. Use from a ``conftest.py``::

    from napari_uqseg.testing.orthanc import orthanc, pacs_server  # noqa: F401  (pytest fixtures)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from napari_uqseg.server.launcher import free_port

PLUGIN_DIRS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc", "/usr/local/share/orthanc/plugins")


def find_dicomweb_plugin() -> Path | None:
    """Path of ``libOrthancDicomWeb.so*`` in the usual Debian folders, or ``None``."""
    for folder in map(Path, PLUGIN_DIRS):
        if folder.is_dir():
            found = sorted(folder.glob("libOrthancDicomWeb.so*"))
            if found:
                return found[0]
    return None


@dataclass
class OrthancHandle:
    """A running Orthanc: ``url`` (REST root) and ``dicomweb`` (DICOMweb root)."""

    url: str
    dicomweb: str
    process: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_orthanc(folder: Path, timeout: float = 60.0) -> OrthancHandle:
    """Start Orthanc with a generated configuration under ``folder``; wait until DICOMweb answers."""
    binary, plugin = shutil.which("Orthanc"), find_dicomweb_plugin()
    if binary is None or plugin is None:
        raise FileNotFoundError("Orthanc or its DICOMweb plugin is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = {
        "Name": "uqseg-tests",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "storage"),
        "HttpPort": port,
        "DicomServerEnabled": False,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpThreadsCount": 4,
        "ConcurrentJobs": 1,
        "Plugins": [str(plugin)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True},
    }
    (folder / "orthanc.json").write_text(json.dumps(config, indent=1))
    log_path = folder / "orthanc.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen([binary, str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    handle = OrthancHandle(url, f"{url}/dicom-web", process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Orthanc exited with code {process.returncode}:\n{log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{handle.dicomweb}/studies", timeout=2):
                return handle
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    handle.stop()
    raise RuntimeError(f"Orthanc at {url} did not answer within {timeout:.0f} s")


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory):
    """A real Orthanc with DICOMweb on loopback; skipped only when the Debian packages are missing."""
    if shutil.which("Orthanc") is None or find_dicomweb_plugin() is None:
        pytest.skip("Orthanc with its DICOMweb plugin is not installed (apt-get install orthanc orthanc-dicomweb)")
    handle = start_orthanc(tmp_path_factory.mktemp("orthanc"))
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def pacs_server(orthanc: OrthancHandle, tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """``uqseg serve --dicomweb <orthanc>`` serving the tiny models (needs the ``tiny_models`` fixture)."""
    from napari_uqseg.testing.server import start_server

    data = tmp_path_factory.mktemp("pacs_server") / "data"
    handle = start_server(data, tiny_models, extra_args=["--dicomweb", orthanc.dicomweb])
    try:
        yield handle
    finally:
        handle.stop()
