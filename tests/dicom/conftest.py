"""DICOM tests: synthetic series, a real Orthanc (DICOMweb) and a real ``uqseg serve --dicomweb`` on loopback."""

import pytest

from napari_uqseg.testing.orthanc import orthanc  # noqa: F401  (pytest fixture)
from napari_uqseg.testing.server import start_server, tiny_models, uqseg_server  # noqa: F401  (pytest fixtures)


@pytest.fixture(scope="module")
def pacs_server(orthanc, tiny_models, tmp_path_factory):  # noqa: F811
    """``uqseg serve --dicomweb <orthanc>`` serving the tiny models."""
    handle = start_server(
        tmp_path_factory.mktemp("pacs_server") / "data", tiny_models, extra_args=["--dicomweb", orthanc.dicomweb]
    )
    try:
        yield handle
    finally:
        handle.stop()
