"""The four baseline methods train, save, load and predict through the Python API on tiny data."""

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.engine.inference import predict_volume
from napari_uqseg.engine.make_model import train
from napari_uqseg.engine.model_folder import load_model, read_card
from napari_uqseg.engine.prediction_files import predict_file

BASELINES = ["deterministic", "mc_dropout", "deep_ensemble", "masksembles"]
OPTIONS = {"mc_dropout": {"samples": 3}, "deep_ensemble": {"members": 2}, "masksembles": {"n_masks": 2}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic_dataset):
    from napari_uqseg.bench.tiny_models import TINY_CONFIG

    root = tmp_path_factory.mktemp("models")
    models = {}
    for name in BASELINES:
        config = {**TINY_CONFIG, "method": OPTIONS.get(name, {})}
        models[name] = train(name, synthetic_dataset, root / name, config, device="cpu")
    return models


@pytest.mark.parametrize("name", BASELINES)
def test_predict_writes_every_output_on_the_input_affine(trained, tmp_path, name):
    image, _ = synthetic_case((20, 22, 18), seed=42)
    image_path = tmp_path / "image.nii.gz"
    nib.save(nib.Nifti1Image(image.array, image.affine), image_path)
    written = predict_file(trained[name], image_path, tmp_path / "out", device="cpu")
    card = read_card(trained[name])
    expected = {"mask", "probabilities", "review", "entropy"}
    if name != "deterministic":
        expected |= {"expected_entropy", "mutual_information", "class_std"}
    assert set(written) == expected
    for key, path in written.items():
        if key == "review":
            review = json.loads(path.read_text())
            default_map = "entropy" if name == "deterministic" else "mutual_information"  # core.predict_options
            assert review["map_name"] == default_map and len(review["slice_scores"]) == 20
            continue
        img = nib.load(path)
        np.testing.assert_allclose(img.affine, image.affine, atol=1e-6)
        assert img.shape[:3] == (20, 22, 18)
    probabilities = nib.load(written["probabilities"]).get_fdata()
    assert probabilities.shape == (20, 22, 18, 3)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-3)  # float16 probabilities
    assert card.method == name and card.training["seconds"] > 0
    if name == "deterministic":
        assert "member_check" not in card.training
    else:  # the sampled methods are checked member by member on the held-out validation cases
        check = card.training["member_check"]
        samples = OPTIONS[name].get("samples") or OPTIONS[name].get("members") or OPTIONS[name].get("n_masks")
        assert check["cases"] >= 1 and np.shape(check["dice_per_sample_and_class"]) == (samples, 2)


@pytest.mark.parametrize("name", BASELINES)
def test_save_load_reproduces_predictions_exactly(trained, name):
    image, _ = synthetic_case((16, 16, 16), seed=7)
    results = []
    for _ in range(2):
        method = load_model(trained[name], "cpu")
        torch.manual_seed(0)  # MC-Dropout draws masks: same seed, same draws
        results.append(predict_volume(method, image))
    first, second = results
    np.testing.assert_array_equal(first.mask.array, second.mask.array)
    np.testing.assert_array_equal(first.probabilities.array, second.probabilities.array)
    for key in first.maps:
        np.testing.assert_array_equal(first.maps[key].array, second.maps[key].array)


def test_temperature_is_fitted_and_stored(trained):
    card = read_card(trained["deterministic"])
    assert card.extra["temperature"] > 0
    assert card.extra["temperature"] != 1.0


def test_deep_ensemble_member_0_is_the_deterministic_model(synthetic_dataset, tmp_path):
    # why it matters: the hippocampus configs take member_0 as the deterministic model (from_model)
    from napari_uqseg.bench.tiny_models import TINY_CONFIG

    # the hippocampus recipe in small: plateau checks, a learning-rate drop from the best weights, augmentations
    rule = {"stop_rule": "plateau", "val_every": 2, "patience": 1, "min_delta": 0.5, "lr_drops": 1, "augment": "nnunet"}
    config = {**TINY_CONFIG, "train": {**TINY_CONFIG["train"], **rule}}
    det = train("deterministic", synthetic_dataset, tmp_path / "det", config)
    ensemble = train("deep_ensemble", synthetic_dataset, tmp_path / "ens", {**config, "method": {"members": 2}})
    net, members = load_model(det).nets["net"].state_dict(), load_model(ensemble).nets
    first, second = members["member_0"].state_dict(), members["member_1"].state_dict()
    assert first.keys() == net.keys() and all(torch.equal(first[k], net[k]) for k in net)
    assert not all(torch.equal(second[k], net[k]) for k in net)
    histories = read_card(det).training["history"]["net"], read_card(ensemble).training["history"]["member_0"]
    assert histories[0] == histories[1] | {"seconds": histories[0]["seconds"]}
    assert histories[0]["stopped_by"] == "plateau" and histories[0]["lr_drop_steps"]  # a drop reloaded the best


def test_deterministic_from_an_ensemble_member_takes_its_weights(trained, synthetic_dataset, tmp_path):
    from napari_uqseg.bench.tiny_models import TINY_CONFIG

    ensemble = trained["deep_ensemble"]
    options = {"from_model": str(ensemble), "from_net": "member_1"}
    det = train("deterministic", synthetic_dataset, tmp_path / "det", {**TINY_CONFIG, "method": options})
    net, member = load_model(det).nets["net"].state_dict(), load_model(ensemble).nets["member_1"].state_dict()
    assert all(torch.equal(net[k], member[k]) for k in member)
    history = read_card(det).training["history"]
    assert history["net"]["history"] == read_card(ensemble).training["history"]["member_1"]
    assert history["temperature"] != 1.0  # still fitted on the validation voxels
