"""Torch-free, Qt-free client: one ``Backend`` interface, remote (HTTP) and local (in-process) implementations."""

from napari_uqseg.client.backend import Backend, PredictionResult

__all__ = ["Backend", "PredictionResult"]
