"""The plateau rule (early stop, best weights kept) and the training augmentations (image and label aligned)."""

import json

import numpy as np
import pytest
import torch

from napari_uqseg.engine import training
from napari_uqseg.engine.augment import RECIPES, PatchAugmenter
from napari_uqseg.engine.data import PatchSampler, load_cases
from napari_uqseg.engine.make_model import train
from napari_uqseg.engine.plateau import PlateauRule
from napari_uqseg.engine.training import TrainConfig, fit_network, segmentation_loss
from napari_uqseg.engine.unet import UNet, UNetConfig


def test_plateau_rule_counts_checks_without_a_gain():
    rule = PlateauRule(patience=2, min_delta=0.01)
    assert rule.record(100, 0.5)
    assert not rule.record(200, 0.505)  # below min_delta: no new best
    assert not rule.exhausted
    assert not rule.record(300, 0.4)
    assert rule.exhausted and rule.best_step == 100 and rule.best_score == 0.5
    restored = PlateauRule(patience=2)
    restored.set_state(rule.state())
    assert restored.exhausted and restored.curve == rule.curve


def _fit(synthetic_dataset, scores, **train):
    cases = load_cases(synthetic_dataset, ["synth_001", "synth_002"])
    torch.manual_seed(0)
    net = UNet(UNetConfig(channels=(4, 8), num_classes=3))
    loss = segmentation_loss()
    cfg = TrainConfig(patch_size=(16, 16, 16), batch_size=2, iterations=40, val_every=2, patience=2, **train)
    seen: list[dict] = []

    def validate() -> float:  # a scripted curve: rises, peaks at the 2nd check, then stalls
        seen.append({k: v.clone() for k, v in net.state_dict().items()})
        return scores[len(seen) - 1]

    history = fit_network(
        net, lambda x, y, _: loss(net(x), y), PatchSampler(cases, cfg.patch_size, seed=1), cfg, validate=validate
    )
    return net, history, seen


def test_a_curve_that_plateaus_stops_early_with_the_best_weights(synthetic_dataset):
    net, history, seen = _fit(synthetic_dataset, [0.1, 0.5, 0.4, 0.45, 0.9, 0.9], lr_drops=0)
    assert history["stopped_by"] == "plateau"
    assert history["iterations"] == 8  # checks at 2, 4 (best), 6, 8: two checks without a gain
    assert history["best_step"] == 4 and history["best_val_dice"] == 0.5
    assert [c["step"] for c in history["validation"]] == [2, 4, 6, 8]
    best = seen[1]
    assert all(torch.equal(v, best[k]) for k, v in net.state_dict().items())
    last = seen[-1]
    assert any(not torch.equal(v, last[k]) for k, v in net.state_dict().items())  # not the last weights


def test_the_plateau_drops_the_rate_from_the_best_weights_before_it_stops(synthetic_dataset, monkeypatch):
    rates: list[float] = []
    after_drop: dict = {}
    original_step = training.optimisation_step

    def spy_step(module, step_loss, sampler, optimizer, cfg, lr, it):
        rates.append(lr)
        if it == 8:
            after_drop.update({k: v.clone() for k, v in module.state_dict().items()})
        return original_step(module, step_loss, sampler, optimizer, cfg, lr, it)

    monkeypatch.setattr(training, "optimisation_step", spy_step)
    # best at the 2nd check; plateau after the 4th: drop 1; the 5th is a new best; plateau after the 7th: stop
    net, history, seen = _fit(
        synthetic_dataset, [0.1, 0.5, 0.4, 0.45, 0.6, 0.55, 0.58, 0.9], lr_drops=1, lr_drop_factor=0.1
    )
    assert history["stopped_by"] == "plateau" and history["iterations"] == 14
    assert history["lr_drop_steps"] == [8] and history["best_step"] == 10 and history["best_val_dice"] == 0.6
    assert [c["lr_scale"] for c in history["validation"]] == pytest.approx([1.0] * 4 + [0.1] * 3)
    schedule = training.poly_lr(TrainConfig(iterations=40))
    assert rates[7] == pytest.approx(schedule(7)) and rates[8] == pytest.approx(0.1 * schedule(8))
    # the first step at the lower rate started from the weights of the best check (step 4), not the last ones
    assert all(torch.equal(v, seen[1][k]) for k, v in after_drop.items())
    assert any(not torch.equal(v, seen[3][k]) for k, v in after_drop.items())
    assert all(torch.equal(v, seen[4][k]) for k, v in net.state_dict().items())  # ends with the best weights


def test_a_run_saved_before_rate_drops_existed_resumes_without_one():
    rule = PlateauRule(patience=2, lr_drops=2)
    rule.set_state({"curve": [], "best_score": 0.5, "best_step": 100, "since": 2})
    assert rule.exhausted and not rule.finished and rule.lr_scale == 1.0


def test_fixed_rule_runs_every_step_for_equal_compute(synthetic_dataset):
    _, history, seen = _fit(synthetic_dataset, [0.1] * 40, stop_rule="fixed")
    assert history["iterations"] == 40 and history["stopped_by"] == "iterations"
    assert seen == [] and "validation" not in history


def test_training_records_the_curve_in_the_model_card(synthetic_dataset, tiny_config, tmp_path):
    tiny_config["train"].update(iterations=12, val_every=3, patience=2, stop_rule="plateau", augment="nnunet")
    out = train("deterministic", synthetic_dataset, tmp_path / "model", tiny_config)
    history = json.loads((out / "model.json").read_text())["training"]["history"]["net"]
    assert [c["step"] for c in history["validation"]][:2] == [3, 6]
    assert all(0.0 <= c["val_dice"] <= 1.0 for c in history["validation"])
    assert history["stopped_by"] in ("plateau", "iterations")
    assert history["best_step"] in [c["step"] for c in history["validation"]]


def _labelled_block(shape=(24, 24, 24)) -> tuple[np.ndarray, np.ndarray]:
    label = np.zeros(shape, np.uint8)
    label[4:14, 6:18, 8:20] = 1
    label[15:23, 1:9, 1:9] = 2
    image = label.astype(np.float32) * 2.0  # intensity encodes the label, so alignment can be read back
    return image, label


def test_spatial_augmentations_keep_image_and_label_aligned():
    image, label = _labelled_block()
    augmenter = PatchAugmenter({"rotate": 1.0, "scale": 1.0, "mirror": 1.0})
    changed = 0
    for seed in range(6):
        aug_image, aug_label = augmenter(image, label, seed)
        assert aug_image.shape == image.shape and aug_label.shape == label.shape
        assert set(np.unique(aug_label)) <= {0, 1, 2}
        changed += not np.array_equal(aug_label, label)
        for c in (1, 2):  # the image read back as labels matches the transformed label map
            from_image = np.abs(aug_image - 2.0 * c) < 1.0
            overlap = 2 * np.sum(from_image & (aug_label == c)) / (from_image.sum() + (aug_label == c).sum())
            assert overlap > 0.85, (seed, c, overlap)  # interpolation differs at borders only
    assert changed == 6


def test_intensity_augmentations_touch_the_image_only_and_are_reproducible():
    image, label = _labelled_block()
    intensity = {k: 1.0 for k in RECIPES["nnunet"] if k not in ("rotate", "scale", "mirror")}
    augmenter = PatchAugmenter(intensity)
    a_image, a_label = augmenter(image, label, 7)
    b_image, _ = augmenter(image, label, 7)
    assert np.array_equal(a_label, label)
    assert not np.allclose(a_image, image)
    assert np.array_equal(a_image, b_image)
    with pytest.raises(Exception, match="unknown option"):
        PatchAugmenter({"elastic": 1.0})


def test_sampler_draws_the_same_augmented_patches_after_a_resume(synthetic_dataset):
    cases = load_cases(synthetic_dataset, ["synth_001", "synth_002"])
    sampler = PatchSampler(cases, (16, 16, 16), seed=4, augment=PatchAugmenter.from_recipe("nnunet"))
    sampler.sample(2)
    state = sampler.state()
    x1, y1 = sampler.sample(3)
    sampler.set_state(state)
    x2, y2 = sampler.sample(3)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert PatchAugmenter.from_recipe("none") is None


def test_checkpoint_ensemble_warm_starts_to_the_plateau_then_runs_fixed_cycles(
    synthetic_dataset, tiny_config, tmp_path
):
    tiny_config["train"].update(iterations=6, val_every=2, patience=1, stop_rule="plateau")
    tiny_config["method"] = {"cycles": 2, "cycle_iterations": 4, "checkpoints_per_cycle": 1}
    out = train("checkpoint_ensemble", synthetic_dataset, tmp_path / "model", tiny_config)
    history = json.loads((out / "model.json").read_text())["training"]["history"]
    assert history["warm_start"]["validation"][0]["step"] == 2
    assert history["net"]["iterations"] == 8  # 2 cycles x 4 steps after the warm start
    assert history["checkpoint_steps"] == [4, 8]
