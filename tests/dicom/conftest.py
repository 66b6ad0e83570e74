"""DICOM tests: synthetic series, a real Orthanc (DICOMweb) and a real ``uqseg serve --dicomweb`` on loopback."""

from napari_uqseg.testing.orthanc import orthanc, pacs_server  # noqa: F401  (pytest fixtures)
from napari_uqseg.testing.server import tiny_models, uqseg_server  # noqa: F401  (pytest fixtures)
