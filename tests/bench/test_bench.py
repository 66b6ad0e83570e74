"""The bench harness runs in quick mode on tiny sizes and writes every field (no timing assertions)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from napari_uqseg.bench.memory import PeakMemory, measure_memory
from napari_uqseg.bench.method_costs import bench_settings, run_bench
from napari_uqseg.bench.report import evaluate_targets, format_table, markdown_section
from napari_uqseg.cli import main
from napari_uqseg.core.errors import InputError

TINY = {
    "channels": (4, 8),
    "patch": (8, 8, 8),
    "small_patch": (8, 8, 8),
    "hippocampus_shape": (10, 12, 10),
    "ct_shape": (20, 18, 16),
    "ct_channels": (4, 8),
    "ct_patch": (8, 8, 8),
    "ct_methods": {"deterministic": {}},
    "train_patch": (8, 8, 8),
    "train_iterations": 2,
    "repeats": 2,
}


def test_peak_memory_sees_a_large_allocation():
    with PeakMemory(torch.device("cpu")) as peak:
        block = np.ones(200 * 2**20 // 8)  # 200 MiB, touched
        del block
    assert peak.increment >= 190 * 2**20


def test_memory_worker_passes_prediction_options():
    spec = {"device": "cpu", "shape": [9, 8, 8], "method": "deterministic", "channels": [4, 8], "patch": [8, 8, 8]}
    out = measure_memory({**spec, "predict": {"probability_classes": [1, 2], "precision": "float32"}})
    assert out["rss_peak_mb"] >= out["rss_start_mb"] > 0
    with pytest.raises(InputError, match="probability_classes"):
        measure_memory({**spec, "predict": {"probability_classes": [5]}})


def test_quick_bench_produces_every_field():
    settings = bench_settings(True, methods=("mc_dropout",), **TINY)
    results = run_bench(settings)
    assert set(results["methods"]) == {"deterministic", "mc_dropout", "deterministic+tta", "mc_dropout+tta"}
    assert not results["errors"]
    tta = results["methods"]["mc_dropout+tta"]
    assert tta["passes"] == 4 * results["methods"]["mc_dropout"]["passes"] and tta["options"]["tta"] == "flips"
    assert set(results["methods"]["deterministic+tta"]["inference"]) == {"patch", "hippocampus"}
    for name, entry in results["methods"].items():
        if name.endswith("+tta"):
            continue
        assert {"options", "passes", "samples", "parameters", "train", "inference", "memory"} <= set(entry)
        assert {"seconds", "steps", "step_seconds", "ratio", "step_ratio"} <= set(entry["train"])
        for case in ("patch", "hippocampus"):
            ratio = entry["inference"][case]["ratio"]
            assert ratio["q25"] <= ratio["median"] <= ratio["q75"]
        assert entry["memory"]["rss_peak_mb"] >= entry["memory"]["rss_start_mb"] > 0, entry["memory"]
    det = results["methods"]["deterministic"]
    assert det["inference"]["hippocampus"]["ratio"]["median"] == 1.0 and det["memory"]["ratio"] == 1.0
    assert results["methods"]["mc_dropout"]["samples"] == 10
    assert set(results["streaming"]["by_samples"]) == {"2", "20"}
    assert results["ct"]["deterministic"]["rss_peak_mb"] > 0
    assert results["machine"]["torch"] == torch.__version__ and results["machine"]["cores"] >= 1
    targets = {t["target"]: t for t in evaluate_targets(results)}
    assert "mc_dropout ratio <= 1.1 x M (M=10)" in targets and any(k.startswith("CT ") for k in targets)
    results["targets"] = list(targets.values())
    json.dumps(results)  # JSON-able as written
    assert "mc_dropout" in format_table(results)
    section = markdown_section(results, "uqseg bench --quick")
    assert "| mc_dropout |" in section and "GPU:" in section and "uqseg bench --quick" in section


def test_cli_writes_json_and_appends_markdown(tmp_path, monkeypatch):
    import napari_uqseg.bench.method_costs as bench

    monkeypatch.setitem(bench.QUICK, "channels", (4, 8))
    monkeypatch.setitem(bench.QUICK, "patch", (8, 8, 8))
    monkeypatch.setitem(bench.QUICK, "small_patch", (8, 8, 8))
    monkeypatch.setitem(bench.QUICK, "hippocampus_shape", (10, 12, 10))
    monkeypatch.setitem(bench.QUICK, "train_patch", (8, 8, 8))
    monkeypatch.setitem(bench.QUICK, "train_iterations", 2)
    out, md = tmp_path / "bench.json", tmp_path / "docs" / "benchmarks.md"
    args = ["bench", "--quick", "--methods", "deterministic", "--no-memory", "--no-remote", "--size", "patch"]
    for _ in range(2):
        assert main([*args, "--out", str(out), "--markdown", str(md)]) == 0
    results = json.loads(out.read_text())
    assert set(results["methods"]["deterministic"]["inference"]) == {"patch"}
    text = md.read_text()
    assert text.startswith("# Benchmarks") and text.count("\n## ") == 2, "header once, one section per run"


def test_bad_settings_name_the_option():
    with pytest.raises(InputError, match="--size"):
        bench_settings(True, cases=("huge",))
    with pytest.raises(InputError, match="--methods"):
        run_bench(bench_settings(True, methods=("no_such_method",), memory=False))
    assert main(["bench", "--quick", "--size", "huge", "--no-markdown"]) == 2
