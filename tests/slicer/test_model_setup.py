"""Slicer's path from an empty server to a prediction (starter model, import) and a train job started and
cancelled, through ``UQSegLib`` on a real loopback ``uqseg serve`` whose data folder starts empty."""

from __future__ import annotations

import time

import numpy as np
import pytest
from UQSegLib.logic import UQSegSession
from UQSegLib.model_setup import ModelSetup

from napari_uqseg.core.archives import pack_model
from napari_uqseg.core.bundled_models import STARTER_MODEL_NAME
from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.testing.server import start_server


def _kji(volume) -> tuple[np.ndarray, np.ndarray]:
    return np.ascontiguousarray(volume.array.transpose(2, 1, 0)), volume.affine


def _wait(setup: ModelSetup, job_id: str, done, timeout: float = 300.0):
    watch = setup.session.watch_job(job_id)
    deadline = time.monotonic() + timeout
    status = watch.step()
    while not done(status) and time.monotonic() < deadline:
        time.sleep(0.5)
        status = watch.step()
    return status


@pytest.fixture(scope="module")
def empty_server(tmp_path_factory):
    handle = start_server(tmp_path_factory.mktemp("empty") / "data", {})
    yield handle
    handle.stop()


def test_empty_server_to_prediction_with_starter_and_import(empty_server, tiny_models, tmp_path):
    from napari_uqseg.core.sample_data import mni_brain

    session = UQSegSession.connect(empty_server.url, empty_server.token)
    setup = ModelSetup(session)
    assert session.info().models == ()  # an empty data folder: nothing to predict with yet
    starter = setup.use_starter()
    assert starter.name == STARTER_MODEL_NAME and starter.method_of() == "mc_dropout"
    brain_kji, matrix = _kji(mni_brain(downsample=2)[0])
    result = session.predict(brain_kji, matrix, STARTER_MODEL_NAME)
    assert set(np.unique(result.mask_kji)) == {0, 1, 2}
    assert result.class_names == {1: "grey matter", 2: "white matter"}

    archive = pack_model(tiny_models["tiny_det"], tmp_path / "tiny det.tar.gz")
    imported = setup.import_model(str(archive))
    assert imported.name == "tiny-det"
    image_kji, matrix = _kji(synthetic_case((24, 24, 24), seed=8)[0])
    assert session.predict(image_kji, matrix, "tiny-det").mask_kji.shape == image_kji.shape
    session.close()


def test_train_from_the_scene_starts_reports_and_cancels(empty_server):
    session = UQSegSession.connect(empty_server.url, empty_server.token)
    setup = ModelSetup(session)
    image, label = synthetic_case((24, 24, 24), seed=9)
    image_kji, matrix = _kji(image)
    label_kji, _ = _kji(label)
    status = setup.train_from_scene(image_kji, label_kji, matrix, "from-scene", iterations=100_000)
    assert status.kind == "train" and not status.finished
    running = _wait(setup, status.id, lambda s: s.state == "running" and s.progress > 0 or s.finished)
    assert running.state == "running", running
    setup.cancel(status.id)
    ended = _wait(setup, status.id, lambda s: s.finished)
    assert ended.state == "cancelled"
    assert setup.outcome(ended) == ("Training cancelled; no model was added.", False)
    assert "from-scene" not in {m.name for m in session.models()}
    session.close()
