"""A model's defaults (review map, case score): chosen on validation, stored in its card, used by every
prediction of it."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from napari_uqseg.core.case_scores import default_case_score
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.predict_options import DEFAULT_REVIEW_MAPS, PredictOptions
from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.engine.inference import predict_volume
from napari_uqseg.engine.model_folder import load_model, read_card, save_model, store_choices
from napari_uqseg.engine.tta import with_tta


def test_review_map_of_prefers_the_asked_map_then_the_models_own():
    maps = dict.fromkeys(("entropy", "expected_entropy", "mutual_information"))
    assert PredictOptions().review_map_of(maps, "mc_dropout") == DEFAULT_REVIEW_MAPS[0]
    assert PredictOptions().review_map_of(maps, "mc_dropout", "expected_entropy") == "expected_entropy"
    assert PredictOptions(review_map="entropy").review_map_of(maps, "mc_dropout", "expected_entropy") == "entropy"
    # a default the prediction lacks (a map of another method) falls back to the global order
    assert PredictOptions().review_map_of({"entropy": None}, "deterministic", "mutual_information") == "entropy"


def test_stored_choices_rank_every_prediction_and_survive_a_resave(tiny_models, tmp_path):
    folder = shutil.copytree(tiny_models["tiny_mcd"], tmp_path / "mcd")
    image, _ = synthetic_case((24, 24, 24), seed=7)
    before = predict_volume(load_model(folder), image)
    assert "review_map" not in before.info and "case_score" not in before.info
    ranking = PredictOptions().review_ranking(before)
    assert ranking.map_name == "mutual_information" and ranking.case_score_name == default_case_score("mc_dropout")

    store_choices(folder, "expected_entropy", "volume_spread")
    method = load_model(folder)
    assert (method.review_map, method.case_score) == ("expected_entropy", "volume_spread")
    for model in (method, with_tta(method, "flips")):  # the TTA wrapper passes the model's choices on
        prediction = predict_volume(model, image)
        assert prediction.info["review_map"] == "expected_entropy"
        ranking = PredictOptions().review_ranking(prediction)
        assert ranking.map_name == "expected_entropy"
        assert ranking.case_score_name == "volume_spread"
        assert ranking.case_score == ranking.case_scores["volume_spread"]
        assert PredictOptions(review_map="entropy").review_ranking(prediction).map_name == "entropy"
    np.testing.assert_array_equal(prediction.mask.array.shape, image.shape)

    store_choices(folder, review_map="entropy")  # None leaves the other choice as it was
    assert read_card(folder).extra["case_score"] == "volume_spread"
    method = load_model(folder)
    card = read_card(folder)
    resaved = save_model(method, tmp_path / "resaved", dict(card.labels), card.training)  # as a fine-tune saves
    assert {k: read_card(resaved).extra[k] for k in ("review_map", "case_score")} == {
        "review_map": "entropy",
        "case_score": "volume_spread",
    }


def test_storing_a_map_the_method_lacks_or_an_unknown_score_is_refused_by_name(tiny_models, tmp_path):
    folder = shutil.copytree(tiny_models["tiny_det"], tmp_path / "det")
    with pytest.raises(InputError, match="'mutual_information' is not a map of deterministic"):
        store_choices(folder, "mutual_information", "expected_dice")
    with pytest.raises(InputError, match="'dice_guess' is not a case score"):
        store_choices(folder, "entropy", "dice_guess")
    extra = read_card(folder).extra
    assert "review_map" not in extra and "case_score" not in extra  # the card is untouched
