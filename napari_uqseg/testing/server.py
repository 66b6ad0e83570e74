"""Pytest fixtures that start a real ``uqseg serve`` on a free loopback port (napari, Slicer, client, server tests).

Use from a ``conftest.py``::

    from napari_uqseg.testing.server import tiny_models, uqseg_server  # noqa: F401  (pytest fixtures)

    def test_x(uqseg_server):
        backend = RemoteBackend(uqseg_server.url, uqseg_server.token)

``uqseg_server`` is module-scoped and serves ``tiny_det`` (deterministic) and ``tiny_mcd`` (MC-Dropout);
for a private server (restarts, ``kill -9``) call ``start_server(data_dir, models)`` and ``stop()`` it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_uqseg.bench.tiny_models import build_tiny_models
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
