"""A model's default review map: chosen on validation, stored in its card, used by every prediction of it."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.predict_options import DEFAULT_REVIEW_MAPS, PredictOptions
from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.engine.inference import predict_volume
from napari_uqseg.engine.model_folder import load_model, read_card, save_model, store_review_map
from napari_uqseg.engine.tta import with_tta


def test_review_map_of_prefers_the_asked_map_then_the_models_own():
    maps = dict.fromkeys(("entropy", "expected_entropy", "mutual_information"))
    assert PredictOptions().review_map_of(maps, "mc_dropout") == DEFAULT_REVIEW_MAPS[0]
    assert PredictOptions().review_map_of(maps, "mc_dropout", "expected_entropy") == "expected_entropy"
    assert PredictOptions(review_map="entropy").review_map_of(maps, "mc_dropout", "expected_entropy") == "entropy"
    # a default the prediction lacks (a map of another method) falls back to the global order
    assert PredictOptions().review_map_of({"entropy": None}, "deterministic", "mutual_information") == "entropy"


def test_a_stored_review_map_ranks_every_prediction_and_survives_a_resave(tiny_models, tmp_path):
    folder = shutil.copytree(tiny_models["tiny_mcd"], tmp_path / "mcd")
    image, _ = synthetic_case((24, 24, 24), seed=7)
    before = predict_volume(load_model(folder), image)
    assert "review_map" not in before.info
    assert PredictOptions().review_ranking(before).map_name == "mutual_information"

    store_review_map(folder, "expected_entropy")
    method = load_model(folder)
    assert method.review_map == "expected_entropy"
    for model in (method, with_tta(method, "flips")):  # the TTA wrapper passes the model's choice on
        prediction = predict_volume(model, image)
        assert prediction.info["review_map"] == "expected_entropy"
        ranking = PredictOptions().review_ranking(prediction)
        assert ranking.map_name == "expected_entropy"
        assert PredictOptions(review_map="entropy").review_ranking(prediction).map_name == "entropy"
    np.testing.assert_array_equal(prediction.mask.array.shape, image.shape)

    card = read_card(folder)
    resaved = save_model(method, tmp_path / "resaved", dict(card.labels), card.training)  # as a fine-tune saves
    assert read_card(resaved).extra["review_map"] == "expected_entropy"


def test_storing_a_map_the_method_lacks_is_refused_by_name(tiny_models, tmp_path):
    folder = shutil.copytree(tiny_models["tiny_det"], tmp_path / "det")
    with pytest.raises(InputError, match="'mutual_information' is not a map of deterministic"):
        store_review_map(folder, "mutual_information")
    assert "review_map" not in read_card(folder).extra  # the card is untouched
