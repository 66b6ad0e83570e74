"""``uqseg predict``, the engine API and the server rank the same prediction the same way (one ``PredictOptions``).

The model is a two-member deep ensemble: deterministic at inference and with a mutual-information map, so the
default review map (mutual information, else entropy) is exercised; the server runs as a real subprocess.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_uqseg.bench.tiny_models import build_tiny_models
from napari_uqseg.cli import main
from napari_uqseg.client.remote import RemoteBackend
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.nifti_io import save_volume
from napari_uqseg.core.predict_options import DEFAULT_REVIEW_MAPS, PredictOptions
from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.engine.prediction_files import predict_file
from napari_uqseg.server.launcher import start_server


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    root = tmp_path_factory.mktemp("agree")
    models = build_tiny_models(root, {"tiny_ens": "deep_ensemble"}, {"tiny_ens": {"members": 2}})
    image, _ = synthetic_case((24, 24, 24), seed=31)
    path = save_volume(image, root / "image.nii.gz")
    return models["tiny_ens"], image, path


def _same_ranking(a: dict, b: dict) -> None:
    assert a["map_name"] == b["map_name"] and a["axis"] == b["axis"]
    np.testing.assert_allclose(a["slice_scores"], b["slice_scores"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(a["case_score"], b["case_score"], rtol=1e-4, atol=1e-6)
    assert [(r["voxels"], r["bbox"]) for r in a["regions"]] == [(r["voxels"], r["bbox"]) for r in b["regions"]]
    np.testing.assert_allclose([r["score"] for r in a["regions"]], [r["score"] for r in b["regions"]], rtol=1e-4)


def test_cli_engine_and_server_give_the_same_review_ranking(ensemble, tmp_path):
    model, image, image_path = ensemble
    assert main(["predict", "--model", str(model), "--image", str(image_path), "--out", str(tmp_path / "cli")]) == 0
    cli = json.loads((tmp_path / "cli" / "review.json").read_text())
    engine = json.loads(predict_file(model, image_path, tmp_path / "api", device="cpu")["review"].read_text())
    server = start_server(tmp_path / "server", {"tiny_ens": model})
    try:
        with RemoteBackend(server.url, server.token) as backend:
            remote = backend.predict(image, "tiny_ens").review.to_dict()
    finally:
        server.stop()
    assert cli["map_name"] == DEFAULT_REVIEW_MAPS[0] == "mutual_information"  # the ensemble has it
    assert cli["regions"], "a ranking without regions would make the comparison empty"
    _same_ranking(cli, engine)
    _same_ranking(cli, remote)


def test_an_unknown_review_map_is_refused_by_the_engine_too(ensemble, tmp_path):
    model, _, image_path = ensemble
    with pytest.raises(InputError, match="'nope' is not a map of deep_ensemble"):
        predict_file(model, image_path, tmp_path / "out", device="cpu", options=PredictOptions(review_map="nope"))
    assert not (tmp_path / "out").exists()  # nothing written


@pytest.mark.parametrize(
    ("options", "source"),
    [
        ({"review_map": "entropy", "colour": 1}, "options: unknown option(s) ['colour']"),
        ({"axis": 3}, "options.axis"),
        ({"overlap": 0.95}, "options.overlap"),
        ({"tta": "mirror"}, "options.tta: unknown TTA mode 'mirror'"),
        ({"sw_batch_size": 9}, "options.sw_batch_size: must be an integer in [1, 8]"),
        ([1], "options: must be an object"),
    ],
)
def test_bad_prediction_options_name_the_option(options, source):
    with pytest.raises(InputError) as caught:
        PredictOptions.from_dict(options, max_sw_batch_size=8)
    assert str(caught.value).startswith(source)
