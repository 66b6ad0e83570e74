"""Transfer: outputs are not fsync'd before the answer (they can be recomputed), corrections are; wire bytes."""

from __future__ import annotations

import os

import numpy as np

from napari_uqseg.client.remote import RemoteBackend
from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.core.volume import Volume
from napari_uqseg.server.data_dir import DataDir


def _count_fsyncs(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return calls


def test_outputs_skip_fsync_corrections_keep_it(tmp_path, monkeypatch):
    store = DataDir(tmp_path / "data")
    calls = _count_fsyncs(monkeypatch)
    store.write_outputs("a" * 32, {"mask": b"x" * 100, "entropy": b"y" * 50})
    assert calls == []
    assert (store.prediction_dir("a" * 32) / "mask.nii.gz").read_bytes() == b"x" * 100
    store.write_outputs("b" * 32, {"mask": b"z"}, durable=True)
    assert len(calls) >= 2  # the file and the renamed folders
    calls.clear()
    store.write_correction("c" * 32, Volume(np.zeros((4, 4, 4), np.uint8), np.eye(4)))
    assert len(calls) >= 2 and store.correction_path("c" * 32).stat().st_size > 0


def test_remote_predict_reports_bytes_on_the_wire(uqseg_server):
    image, _ = synthetic_case((24, 24, 24), seed=62)
    with RemoteBackend(uqseg_server.url, uqseg_server.token) as backend:
        result = backend.predict(image, "tiny_det")
        wire = result.prediction.info["wire"]
        outputs = sum(
            len(backend.output(result.id, name)) for name in ["mask", "probabilities", *result.prediction.maps]
        )
    assert wire["sent_bytes"] > 24**3  # the image, at least one byte a voxel
    assert wire["received_bytes"] >= outputs > 0
