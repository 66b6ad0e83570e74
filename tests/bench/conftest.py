"""Benchmark tests run against real ``uqseg serve`` subprocesses and tiny trained models."""

from napari_uqseg.testing.server import tiny_models  # noqa: F401  (pytest fixture)
