"""Server tests run against real ``uqseg serve`` subprocesses on loopback ports."""

import pytest
import requests

from napari_uqseg.testing.server import tiny_models, uqseg_backend, uqseg_server  # noqa: F401  (pytest fixtures)


@pytest.fixture(scope="module")
def http(server, request):
    """``http(method, path, **kw)``: an authorised request to the module's ``server`` (its ``TIMEOUT``)."""
    timeout = getattr(request.module, "TIMEOUT", (5, 120))
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {server.token}"
    yield lambda method, path, **kw: session.request(method, server.url + path, timeout=timeout, **kw)
    session.close()
