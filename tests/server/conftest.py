"""Server tests run against real ``uqseg serve`` subprocesses on loopback ports."""

from napari_uqseg.testing.server import tiny_models, uqseg_server  # noqa: F401  (pytest fixtures)
