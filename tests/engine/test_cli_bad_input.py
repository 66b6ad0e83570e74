"""Bad input: a clear error naming the file and the problem, exit code 2, no partial output."""

import json
import shutil

import nibabel as nib
import numpy as np
import pytest

from napari_uqseg.bench.tiny_models import TINY_CONFIG
from napari_uqseg.cli import main
from napari_uqseg.core.sample_data import synthetic_case, write_synthetic_dataset


def _run(capsys, argv):
    code = main(argv)
    return code, capsys.readouterr().err


@pytest.fixture()
def dataset(tmp_path):
    return write_synthetic_dataset(tmp_path / "data", n_cases=4, shape=(16, 16, 16))


@pytest.fixture()
def config_file(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY_CONFIG))
    return path


def _corrupt_label(dataset, array, affine=None):
    label_path = dataset / "labelsTr" / "synth_001.nii.gz"
    image = nib.load(dataset / "imagesTr" / "synth_001.nii.gz")
    nib.save(nib.Nifti1Image(array, image.affine if affine is None else affine), label_path)
    return label_path


CASES = {
    "shape mismatch": (lambda ds: _corrupt_label(ds, np.ones((15, 16, 16), np.uint8)), "differs from image shape"),
    "affine mismatch": (
        lambda ds: _corrupt_label(ds, np.ones((16, 16, 16), np.uint8), np.diag([2, 2, 2, 1.0])),
        "affine differs",
    ),
    "empty label": (lambda ds: _corrupt_label(ds, np.zeros((16, 16, 16), np.uint8)), "empty"),
    "non-integer label": (lambda ds: _corrupt_label(ds, np.full((16, 16, 16), 0.5, np.float32)), "non-integer"),
    "label out of range": (lambda ds: _corrupt_label(ds, np.full((16, 16, 16), 7, np.uint8)), "outside the 3 classes"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_train_rejects_bad_labels(capsys, dataset, config_file, tmp_path, case):
    corrupt, message = CASES[case]
    bad_file = corrupt(dataset)
    out = tmp_path / "model"
    code, err = _run(
        capsys,
        [
            "train",
            "--method",
            "deterministic",
            "--data",
            str(dataset),
            "--out",
            str(out),
            "--config",
            str(config_file),
            "--device",
            "cpu",
        ],
    )
    assert code == 2
    assert str(bad_file) in err and message in err
    assert not out.exists()


def test_train_rejects_nan_voxels(capsys, dataset, config_file, tmp_path):
    path = dataset / "imagesTr" / "synth_002.nii.gz"
    img = nib.load(path)
    data = img.get_fdata().astype(np.float32)
    data[3, 3, 3] = np.nan
    nib.save(nib.Nifti1Image(data, img.affine), path)
    code, err = _run(
        capsys,
        [
            "train",
            "--method",
            "deterministic",
            "--data",
            str(dataset),
            "--out",
            str(tmp_path / "m"),
            "--config",
            str(config_file),
        ],
    )
    assert code == 2 and str(path) in err and "NaN or Inf" in err


def test_train_rejects_missing_dataset_json(capsys, dataset, tmp_path):
    (dataset / "dataset.json").unlink()
    code, err = _run(
        capsys, ["train", "--method", "deterministic", "--data", str(dataset), "--out", str(tmp_path / "m")]
    )
    assert code == 2 and "dataset.json" in err


def test_train_rejects_unknown_method(capsys, dataset, tmp_path):
    code, err = _run(capsys, ["train", "--method", "magic", "--data", str(dataset), "--out", str(tmp_path / "m")])
    assert code == 2 and "unknown method 'magic'" in err and "mc_dropout" in err


def test_train_rejects_unknown_config_option(capsys, dataset, tmp_path):
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"train": {"learning_rate": 1}}))
    code, err = _run(
        capsys,
        [
            "train",
            "--method",
            "deterministic",
            "--data",
            str(dataset),
            "--out",
            str(tmp_path / "m"),
            "--config",
            str(config),
        ],
    )
    assert code == 2 and "learning_rate" in err


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from napari_uqseg.engine.make_model import train

    root = tmp_path_factory.mktemp("cli_model")
    data = write_synthetic_dataset(root / "data", n_cases=4, shape=(16, 16, 16))
    return train("deterministic", data, root / "model", TINY_CONFIG, device="cpu")


def test_predict_rejects_non_nifti(capsys, model_dir, tmp_path):
    bad = tmp_path / "scan.png"
    bad.write_bytes(b"\x89PNG not a volume")
    out = tmp_path / "out"
    code, err = _run(capsys, ["predict", "--model", str(model_dir), "--image", str(bad), "--out", str(out)])
    assert code == 2 and str(bad) in err and "not a NIfTI file" in err
    assert not out.exists()


def test_predict_rejects_corrupt_nifti(capsys, model_dir, tmp_path):
    bad = tmp_path / "scan.nii.gz"
    bad.write_bytes(b"\x1f\x8b garbage")
    code, err = _run(capsys, ["predict", "--model", str(model_dir), "--image", str(bad), "--out", str(tmp_path / "o")])
    assert code == 2 and "cannot be read as NIfTI" in err
    assert not (tmp_path / "o").exists()


def test_predict_rejects_4d_image(capsys, model_dir, tmp_path):
    path = tmp_path / "4d.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8, 3), np.float32), np.eye(4)), path)
    code, err = _run(capsys, ["predict", "--model", str(model_dir), "--image", str(path), "--out", str(tmp_path / "o")])
    assert code == 2 and "expected a 3D image, got 4D" in err
    assert not (tmp_path / "o").exists()


def test_predict_rejects_nan_image(capsys, model_dir, tmp_path):
    image, _ = synthetic_case((16, 16, 16))
    data = image.array.copy()
    data[0, 0, 0] = np.inf
    path = tmp_path / "inf.nii.gz"
    nib.save(nib.Nifti1Image(data, image.affine), path)
    code, err = _run(capsys, ["predict", "--model", str(model_dir), "--image", str(path), "--out", str(tmp_path / "o")])
    assert code == 2 and "1 voxels are NaN or Inf" in err


def test_predict_failure_leaves_existing_output_untouched(capsys, model_dir, tmp_path):
    image, _ = synthetic_case((16, 16, 16))
    good = tmp_path / "good.nii.gz"
    nib.save(nib.Nifti1Image(image.array, image.affine), good)
    out = tmp_path / "out"
    assert main(["predict", "--model", str(model_dir), "--image", str(good), "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    broken_model = tmp_path / "broken"
    shutil.copytree(model_dir, broken_model)
    (broken_model / "weights.pt").write_bytes(b"truncated")
    code, err = _run(capsys, ["predict", "--model", str(broken_model), "--image", str(good), "--out", str(out)])
    assert code == 2 and "weights.pt" in err and "cannot load the weights" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")], "no staging folder left behind"


def test_unknown_model_folder(capsys, tmp_path):
    image, _ = synthetic_case((16, 16, 16))
    good = tmp_path / "good.nii.gz"
    nib.save(nib.Nifti1Image(image.array, image.affine), good)
    code, err = _run(
        capsys, ["predict", "--model", str(tmp_path / "nope"), "--image", str(good), "--out", str(tmp_path / "o")]
    )
    assert code == 2 and "not a model folder" in err


def test_train_threads_override_the_config_and_a_negative_count_is_named(capsys, dataset, config_file, tmp_path):
    base = ["train", "--method", "deterministic", "--data", str(dataset), "--config", str(config_file)]
    code, err = _run(capsys, [*base, "--out", str(tmp_path / "bad"), "--threads", "-1"])
    assert code == 2 and "--threads" in err and not (tmp_path / "bad").exists()
    assert TINY_CONFIG["train"].get("threads", 0) != 1
    assert _run(capsys, [*base, "--out", str(tmp_path / "m"), "--threads", "1"])[0] == 0
    card = json.loads((tmp_path / "m" / "model.json").read_text())
    assert card["training"]["config"]["train"]["threads"] == 1
