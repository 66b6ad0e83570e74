"""``uqseg split``: disjoint case lists that keep scan pairs together; the calibration list is optional."""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_uqseg.cli import main
from napari_uqseg.core.errors import InputError
from napari_uqseg.engine.data import pair_group, split_dataset


def _lists(folder: Path) -> dict[str, list[str]]:
    return {p.stem: p.read_text().split() for p in sorted(folder.glob("*.txt"))}


def test_calibration_list_comes_out_of_training_and_keeps_the_test_list(synthetic_dataset, tmp_path):
    assert main(["split", "--data", str(synthetic_dataset), "--out", str(tmp_path / "two")]) == 0
    two = _lists(tmp_path / "two")
    assert set(two) == {"train", "test"}
    assert (
        main(
            [
                "split",
                "--data",
                str(synthetic_dataset),
                "--out",
                str(tmp_path / "three"),
                "--calibration-fraction",
                "0.25",
            ]
        )
        == 0
    )
    three = _lists(tmp_path / "three")
    assert three["test"] == two["test"]  # adding a calibration list never moves test cases
    assert sorted(three["train"] + three["calibration"]) == two["train"]
    assert len(three["calibration"]) == 2  # a quarter of the 8 cases
    groups = {name: {pair_group(c) for c in ids} for name, ids in three.items()}
    assert not groups["calibration"] & groups["train"] and not groups["calibration"] & groups["test"]


def test_calibration_fraction_out_of_range_is_refused_by_name(synthetic_dataset, tmp_path):
    with pytest.raises(InputError, match="calibration-fraction"):
        split_dataset(synthetic_dataset, tmp_path, test_fraction=0.2, calibration_fraction=0.8)
    assert not list(tmp_path.glob("*.txt"))  # nothing written
