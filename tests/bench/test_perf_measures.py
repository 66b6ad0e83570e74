"""The perf measurements of ``uqseg bench --curves/--floor/--precision-check`` on tiny inputs (no timing asserted)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_uqseg.bench import cost_curves
from napari_uqseg.bench.memory import build_untrained
from napari_uqseg.bench.monai_floor import plain_monai_mask, side_by_side
from napari_uqseg.bench.perf_report import perf_section
from napari_uqseg.core.volume import Volume
from napari_uqseg.engine.precision import resolve_precision

TINY = {"channels": (4, 8), "patch": (16, 16, 16)}


def test_size_and_samples_curves_measure_fresh_processes(tmp_path):
    size = cost_curves.size_curve([(16, 16, 16), (32, 16, 16)], **TINY)
    assert [p["voxels"] for p in size] == [16**3, 2 * 16**3]
    assert all("error" not in p and p["rss_peak_mb"] > 0 and p["bytes_per_voxel"] > 0 for p in size)
    samples = cost_curves.samples_curve([2, 3], shape=(16, 16, 16), **TINY)
    assert [p["samples"] for p in samples] == [2, 3] and all(p["seconds"] > 0 for p in samples)
    png = cost_curves.plot_size_curve(size, tmp_path / "f" / "size.png", "tiny")
    assert png.read_bytes()[:4] == b"\x89PNG"
    results = {
        "machine": {"date": "d", "cpu": "c", "cores": 2, "ram_gb": 1, "os": "o", "torch": "t", "monai": "m"},
        "threads": 1,
        "command": "uqseg bench --curves size",
        "size": size,
        "samples": samples,
    }
    text = perf_section(results, [png], tmp_path / "bench.md")
    assert "| 32x16x16 |" in text and "(f/size.png)" in text and "`uqseg bench --curves size`" in text


def test_plain_monai_floor_gives_the_same_labels():
    torch.manual_seed(0)
    method = build_untrained("deterministic", **TINY)
    rng = np.random.default_rng(0)
    volume = Volume(rng.normal(100, 20, (30, 20, 12)).astype(np.float32), np.eye(4))
    out = side_by_side(method, volume, repeats=2, precision="float32")  # the second pair runs MONAI first
    assert out["mask_agreement"] == 1.0 and out["ratio"] > 0 and out["precision"] == "float32"
    assert len(out["ours_all_s"]) == len(out["monai_all_s"]) == 2
    assert plain_monai_mask(method, volume).shape == (30, 20, 12)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_bfloat16_gives_equal_results_on_the_starter_model():
    """Dice against the reference labels within 0.002 of float32 (the Done-when bound), masks nearly identical."""
    from napari_uqseg.bench.precision_check import precision_check

    check = precision_check(downsample=2)
    assert check["dice_change"] <= 0.002
    assert min(check["mask_agreement_dice"].values()) >= 0.99
    assert check["probability_diff"]["p99"] < 0.02


def test_precision_switch():
    assert resolve_precision("float32", "cpu") == "float32"
    assert resolve_precision("bfloat16", "cpu") == "bfloat16"
    assert resolve_precision("auto", "cuda") == "float32"
    with pytest.raises(Exception, match="precision"):
        resolve_precision("float8", "cpu")


def test_stacked_ensemble_against_its_loop(tmp_path):
    from napari_uqseg.bench.method_costs import stacked_vs_loop

    rows = stacked_vs_loop([1, 2], members=2, channels=(4, 8), patch=(16, 16, 16), repeats=2)
    assert [r["batch"] for r in rows] == [1, 2]
    assert all(r["stacked_s"] > 0 and r["loop_s"] > 0 and r["ratio"] > 0 for r in rows)
    machine = {"date": "d", "cpu": "c", "cores": 2, "ram_gb": 1, "os": "o", "torch": "t", "monai": "m"}
    results = {"machine": machine, "threads": 1, "command": "uqseg bench --stack-batches 1,2", "stack": rows}
    text = perf_section(results, [], tmp_path)
    assert f"| 2 | {rows[1]['stacked_s']:.2f} | {rows[1]['loop_s']:.2f} |" in text


def test_training_step_in_both_precisions_from_the_same_weights(tmp_path):
    from napari_uqseg.bench.train_precision import train_step_precision

    run = train_step_precision(channels=(4, 8), patch=(16, 16, 16), batch=2, repeats=2)
    assert run["float32_s"] > 0 and run["bfloat16_s"] > 0 and run["speedup"] > 0
    assert run["bfloat16"] in ("bfloat16", "float32")
    machine = {"date": "d", "cpu": "c", "cores": 2, "ram_gb": 1, "os": "o", "torch": "t", "monai": "m"}
    results = {"machine": machine, "threads": 1, "command": "uqseg bench --train-precision", "train_precision": run}
    assert f"**{run['speedup']:.2f}x**" in perf_section(results, [], tmp_path)
