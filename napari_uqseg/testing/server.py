"""Pytest fixtures that start a real ``uqseg serve`` on a free loopback port (napari, Slicer, client, server tests).

Use from a ``conftest.py``::

    from napari_uqseg.testing.server import tiny_models, uqseg_server  # noqa: F401  (pytest fixtures)

    def test_x(uqseg_server):
        backend = RemoteBackend(uqseg_server.url, uqseg_server.token)

``uqseg_server`` is module-scoped and serves ``tiny_det`` (deterministic) and ``tiny_mcd`` (MC-Dropout);
for a private server (restarts, ``kill -9``) call ``start_server(data_dir, models)`` and ``stop()`` it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from napari_uqseg.bench.tiny_models import build_tiny_models
from napari_uqseg.core.nifti_io import nifti_bytes
from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.core.volume import Volume
from napari_uqseg.server.launcher import ServerHandle, free_port, start_server, wait_healthy

__all__ = ["ServerHandle", "free_port", "start_server", "tiny_models", "uqseg_server", "wait_healthy"]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"tiny_det": folder, "tiny_mcd": folder}``: tiny trained models, built once per session."""
    return build_tiny_models(tmp_path_factory.mktemp("tiny_models"))


@pytest.fixture(scope="module")
def uqseg_server(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """A real ``uqseg serve`` on a free loopback port, serving the tiny models; stopped after the module."""
    handle = start_server(tmp_path_factory.mktemp("server") / "data", tiny_models)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def uqseg_backend(uqseg_server: ServerHandle):
    """A ``RemoteBackend`` of the module's ``uqseg_server``, closed after the module."""
    from napari_uqseg.client.remote import RemoteBackend

    with RemoteBackend(uqseg_server.url, uqseg_server.token) as backend:
        yield backend


def upload_and_predict(
    http: Callable, seed: int, model: str = "tiny_det", uploaded: tuple[int, ...] = (201,)
) -> tuple[Volume, Volume, str, dict]:
    """Upload the synthetic 24^3 case ``seed`` through ``http(method, path, **kw)`` and predict it with ``model``.

    Asserts the upload answered a status in ``uploaded`` and the prediction 201. Returns ``(image, label,
    image sha256, prediction summary)``.
    """
    image, label = synthetic_case((24, 24, 24), seed=seed)
    data = nifti_bytes(image, dtype=np.float32)
    sha = hashlib.sha256(data).hexdigest()
    assert http("PUT", f"/v1/images/{sha}", data=data).status_code in uploaded
    r = http("POST", "/v1/predictions", json={"image": sha, "model": model})
    assert r.status_code == 201, r.text
    return image, label, sha, r.json()
