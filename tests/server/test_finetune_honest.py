"""Honest fine-tuning: held-back corrections are never trained on, replay patches are in every batch."""

from __future__ import annotations

import numpy as np
import pytest

from napari_uqseg.core.finetune_verdict import is_held_back
from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.engine import data as data_module
from napari_uqseg.engine.data import Case
from napari_uqseg.engine.finetune import CorrectedCase, FinetuneOptions, finetune
from napari_uqseg.engine.model_folder import read_card
from napari_uqseg.engine.replay import ReplayPatchSampler, replay_count


def _flat(case_id: str, value: float, label: int) -> Case:
    return Case(case_id, np.full((20, 20, 20), value, np.float32), np.full((20, 20, 20), label, np.uint8), np.eye(4))


def test_replay_patches_are_in_every_batch():
    own = [_flat("own", 1.0, 1)]
    replay = [_flat("old_a", -1.0, 2), _flat("old_b", -2.0, 2)]
    sampler = ReplayPatchSampler(own, replay, (8, 8, 8), replay_fraction=0.5, seed=3)
    for _ in range(5):
        x, y = sampler.sample(4)
        assert x.shape == (4, 1, 8, 8, 8)
        assert (x[:2] == 1.0).all() and (y[:2] == 1).all()  # two patches of the corrections
        assert (x[2:] < 0).all() and (y[2:] == 2).all()  # two of the replayed training cases
    assert [replay_count(b, 0.25) for b in (1, 2, 4, 8)] == [0, 1, 1, 2]
    state = sampler.state()
    first = sampler.sample(4)[0]
    sampler.set_state(state)
    assert np.array_equal(sampler.sample(4)[0], first)  # a resumed fine-tune draws the same patches


def _ids(count: int, held: bool) -> list[str]:
    found, i = [], 0
    while len(found) < count:
        if is_held_back(f"corr{i}", 0.2) == held:
            found.append(f"corr{i}")
        i += 1
    return found


def test_held_back_corrections_are_never_trained_on(tiny_models, tmp_path, monkeypatch):
    held_ids, train_ids = _ids(2, True), _ids(3, False)
    cases = []
    for k, cid in enumerate(train_ids + held_ids):
        image, label = synthetic_case((24, 24, 24), seed=90 + k)
        cases.append(CorrectedCase(cid, image, label))
    sampled_from: list[set[str]] = []
    original = data_module.PatchSampler.__init__

    def recording(self, cases, *args, **kwargs):  # every patch of the fine-tune comes from one of these samplers
        sampled_from.append({c.case_id for c in cases})
        original(self, cases, *args, **kwargs)

    monkeypatch.setattr(data_module.PatchSampler, "__init__", recording)
    options = FinetuneOptions(iterations=3, checkpoint_every=3, batch_size=2, replay_fraction=0.5)
    report = finetune(tiny_models["tiny_det"], cases, tmp_path / "out", tmp_path / "work", options)

    assert sorted(report["held_back"]) == sorted(held_ids) and sorted(report["trained_on"]) == sorted(train_ids)
    trained = set().union(*sampled_from)
    assert not trained & set(held_ids)
    assert set(train_ids) <= trained
    # replay: the original training cases from the tiny model's card, drawn by their own sampler
    card_train = set(read_card(tiny_models["tiny_det"]).training["data"]["train_cases"])
    assert report["replay"]["cases"] and set(report["replay"]["cases"]) <= card_train
    assert set(report["replay"]["cases"]) in sampled_from
    # before/after figures are on the held-back cases only; regression on the card's validation cases
    assert set(report["before"]["dice"]) == set(report["after"]["dice"]) == set(held_ids)
    assert set(report["trained_after"]["dice"]) == set(train_ids)
    assert report["regression"]["cases"] and 0 <= report["regression"]["after"]["mean_dice"] <= 1
    assert isinstance(report["recommendation"]["promote"], bool) and report["recommendation"]["reason"]
    assert read_card(tmp_path / "out").training["held_back"] == report["held_back"]


def test_no_replay_when_the_training_data_is_gone(tiny_models, tmp_path):
    import json
    import shutil

    folder = tmp_path / "moved"
    shutil.copytree(tiny_models["tiny_det"], folder)
    card = json.loads((folder / "model.json").read_text())
    card["training"]["data"]["dir"] = str(tmp_path / "nowhere")
    (folder / "model.json").write_text(json.dumps(card))
    image, label = synthetic_case((24, 24, 24), seed=97)
    report = finetune(folder, [CorrectedCase("c1", image, label)], tmp_path / "o", tmp_path / "w", FinetuneOptions(2))
    assert report["replay"]["cases"] == [] and "cannot be read" in report["replay"]["note"]
    assert report["regression"]["after"] == {} and not report["recommendation"]["promote"]


@pytest.mark.parametrize("bad", [{"held_back_fraction": 1.0}, {"replay_fraction": -0.1}, {"replay_cases": -1}])
def test_honesty_options_are_validated(bad):
    from napari_uqseg.core.errors import InputError

    with pytest.raises(InputError):
        FinetuneOptions.from_dict(bad)
