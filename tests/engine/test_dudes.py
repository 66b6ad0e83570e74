"""DUDES: the teacher's target, the ROI, the student's single forward pass, training end to end, save/load."""

import json

import numpy as np
import pytest
import torch

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.uncertainty import uncertainty_maps
from napari_uqseg.engine.make_model import train
from napari_uqseg.engine.methods.base import method_class
from napari_uqseg.engine.methods.dudes import rmsle, roi_weights, teacher_class_std
from napari_uqseg.engine.model_folder import load_model, save_model
from napari_uqseg.engine.prediction_files import predict_file
from napari_uqseg.engine.statistics import SampleStatistics
from napari_uqseg.engine.unet import UNetConfig


@pytest.mark.parametrize("ddof", [0, 1])
def test_teacher_target_is_the_std_of_the_predicted_class(ddof):
    torch.manual_seed(0)
    probs = torch.softmax(torch.randn(4, 2, 3, 5, 5), dim=2)  # 4 members, batch 2, 3 classes
    stats = SampleStatistics()
    stats.add(probs, stacked=True)
    target, predicted = teacher_class_std(stats.result(), 4, ddof)
    expected = probs.gather(2, predicted[None].expand(4, -1, -1, -1, -1)).std(dim=0, correction=ddof)
    assert torch.allclose(target, expected, atol=1e-5)
    core = uncertainty_maps(
        stats.result()["mean_prob"][0].numpy(), stats.result()["mean_sq_prob"][0].numpy(), None, 4, ddof
    )
    np.testing.assert_allclose(target[0, 0].numpy(), core["class_std"], atol=1e-5)


def test_roi_covers_label_and_teacher_foreground():
    label = torch.zeros(1, 1, 9, 9, 9, dtype=torch.long)
    label[0, 0, 4, 4, 4] = 1
    predicted = torch.zeros_like(label)
    predicted[0, 0, 0, 0, 0] = 2
    w = roi_weights(label, predicted, margin=1, background=0.01, mode="dilated_foreground")
    assert float(w[0, 0, 3:6, 3:6, 3:6].min()) == 1.0 and float(w[0, 0, :2, :2, :2].min()) == 1.0
    assert int((w == 1.0).sum()) == 27 + 8 and float(w[0, 0, 8, 8, 8]) == pytest.approx(0.01)
    # the default box: from the teacher's voxel at the corner to the label's voxel, grown by 1
    box = roi_weights(label, predicted, margin=1, background=0.01)
    assert int((box == 1.0).sum()) == 6**3 and float(box[0, 0, 5, 5, 5]) == 1.0
    assert float(box[0, 0, 6, 0, 0]) == pytest.approx(0.01)
    # per patch of the batch: an empty patch has no ROI at all
    both = roi_weights(torch.cat([label, torch.zeros_like(label)]), torch.zeros(2, 1, 9, 9, 9), 0, 0.0)
    assert int(both[0].sum()) == 1 and int(both[1].sum()) == 0
    u, t = torch.full((1, 1, 9, 9, 9), 0.2), torch.zeros(1, 1, 9, 9, 9)
    assert float(rmsle(u, t)) == pytest.approx(float(torch.log1p(torch.tensor(0.2))))
    assert float(rmsle(u, t, w)) == pytest.approx(float(rmsle(u, t)))  # constant error: weights do not matter


def test_student_is_one_forward_pass():
    method = method_class("dudes")(UNetConfig(spatial_dims=2, channels=(4, 8)), {"teacher_members": 2})
    calls = []
    method.nets["net"].encoders[0].register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        stats = method.window_statistics(torch.randn(3, 1, 16, 16))
    assert len(calls) == 1 and method.info().forward_passes == 1
    assert stats["class_std"].shape == (3, 1, 16, 16) and 0 < float(stats["class_std"].min()) < 1
    assert set(stats) == {"mean_prob", "mean_sq_prob", "expected_entropy", "class_std"}


def test_bad_options_are_rejected(tmp_path):
    with pytest.raises(InputError, match="teacher_members"):
        method_class("dudes")(UNetConfig(channels=(4, 8)), {"teacher_members": 1})
    with pytest.raises(InputError, match="roi"):
        method_class("dudes")(UNetConfig(channels=(4, 8)), {"roi": "bbox"})


def test_train_with_own_and_external_teacher(synthetic_dataset, tiny_config, tmp_path):
    tiny_config["method"] = {"teacher_members": 2}
    model = train("dudes", synthetic_dataset, tmp_path / "model", tiny_config)
    card = json.loads((model / "model.json").read_text())
    assert card["extra"]["teacher_method"] == "deep_ensemble" and card["extra"]["teacher_samples"] == 2
    loaded = load_model(model)
    save_model(loaded, tmp_path / "again", {"0": "bg"}, {})
    x = torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad():
        a, b = loaded.window_statistics(x), load_model(tmp_path / "again").window_statistics(x)
    assert all(torch.equal(a[k], b[k]) for k in a)
    written = predict_file(model, synthetic_dataset / "imagesTr" / "synth_005.nii.gz", tmp_path / "pred")
    assert set(written) == {"mask", "probabilities", "entropy", "class_std", "review"}
    # any trained sampling model can teach: here the mc_dropout baseline, saved to disk
    tiny_config["method"] = {"samples": 3}
    teacher = train("mc_dropout", synthetic_dataset, tmp_path / "teacher", tiny_config)
    tiny_config["method"] = {"teacher": str(teacher)}
    student = train("dudes", synthetic_dataset, tmp_path / "student", tiny_config)
    extra = json.loads((student / "model.json").read_text())["extra"]
    assert extra["teacher_method"] == "mc_dropout" and extra["teacher_samples"] == 3
    tiny_config["method"] = {"teacher": str(model)}  # a DUDES student has one sample: no std to distil
    with pytest.raises(InputError, match="no std"):
        train("dudes", synthetic_dataset, tmp_path / "bad", tiny_config)
