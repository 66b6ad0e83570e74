"""Machine description, cost targets, the text table and the ``docs/benchmarks.md`` section of a bench run."""

from __future__ import annotations

import math
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

#: cost limits (docs/evaluation.md, "Cost")
DUDES_MAX = 1.05
PASS_FACTOR = 1.1
STREAM_MAX = 1.25
CT_MAX_GB = 24.0
REMOTE_MAX = 1.25
M_PASS = ("deep_ensemble", "mc_dropout", "masksembles", "checkpoint_ensemble")

HEADER = """# Benchmarks

Written by `uqseg bench` (`napari_uqseg/bench/method_costs.py`); each run appends one section below.
Every figure is a ratio to the deterministic U-Net on the same input, device and run: time ratios are the
median (and inter-quartile range) over repeats of a method's run divided by a deterministic run just
before it; memory is the peak resident memory above the level before the call, measured in a fresh
process per method (Linux `VmHWM`, reset through `/proc/self/clear_refs`; CUDA: the allocator's peak).
Cases: *patch* = one window through `window_statistics`; *hippocampus* = one volume through
`predict_volume` (sliding window, accumulators on the CPU); *CT* = one 512x512x300 volume per listed
method. Weights are untrained or briefly trained: cost does not depend on their values.
"""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):  # not POSIX
        import psutil

        return psutil.virtual_memory().total / 2**30


def machine_description(device: torch.device) -> dict[str, Any]:
    """CPU model, cores, torch threads, RAM (GB), versions, date and the GPU (``None`` without CUDA)."""
    import monai

    gpu = None
    if torch.cuda.is_available():
        index = device.index or 0
        props = torch.cuda.get_device_properties(index)
        gpu = {"name": props.name, "memory_gb": props.total_memory / 2**30, "cuda": torch.version.cuda}
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "ram_gb": round(_ram_gb(), 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "device": str(device),
        "gpu": gpu,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


def _hippo_ratio(entry: dict) -> float:
    """Median time ratio of the hippocampus case (of the patch case when only that was measured)."""
    inference = entry.get("inference", {})
    case = inference.get("hippocampus") or inference.get("patch") or {}
    return case.get("ratio", {}).get("median", math.nan)


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each cost target (docs/evaluation.md) this run can judge: ``target``, ``value``, ``limit``, ``met``.

    Inference ratios are those of the hippocampus case (a whole ``predict_volume``).
    """
    rows = []
    methods = results.get("methods", {})
    on_cpu = results.get("machine", {}).get("device", "cpu") == "cpu"

    def add(target: str, value: float, limit: float, strict: bool = False) -> None:
        met = value < limit if strict else value <= limit
        rows.append({"target": target, "value": round(value, 3), "limit": round(limit, 3), "met": bool(met)})

    if "dudes" in methods:
        add("dudes inference ratio", _hippo_ratio(methods["dudes"]), DUDES_MAX)
    for name in M_PASS:
        if name in methods and on_cpu:
            m = methods[name]["samples"]
            add(f"{name} ratio <= 1.1 x M (M={m})", _hippo_ratio(methods[name]), PASS_FACTOR * m)
    if "vi_multihead" in methods:
        entry = methods["vi_multihead"]
        add(f"vi_multihead ratio < H*S = {entry['samples']}", _hippo_ratio(entry), entry["samples"], strict=True)
        add("vi_multihead ratio <= 1.1 x (base + H*S*head)", _hippo_ratio(entry), PASS_FACTOR * entry["passes"])
    if "partial_bayes" in methods:
        entry = methods["partial_bayes"]
        add(f"partial_bayes ratio < S = {entry['samples']}", _hippo_ratio(entry), entry["samples"], strict=True)
    by_samples = results.get("streaming", {}).get("by_samples", {})
    if len(by_samples) == 2:
        low, high = sorted(by_samples, key=int)
        a, b = by_samples[low].get("increment_mb"), by_samples[high].get("increment_mb")
        if a and b:
            add(f"peak memory, {high} vs {low} MC-Dropout samples", b / a, STREAM_MAX)
    ct = results.get("ct", {})
    for name, entry in ct.items():
        if isinstance(entry, dict) and "rss_peak_mb" in entry:
            add(f"CT {'x'.join(map(str, ct['shape']))} peak RSS (GB), {name}", entry["rss_peak_mb"] / 1024, CT_MAX_GB)
    remote = results.get("remote", {})
    if "ratio" in remote:
        add("remote / local predict", remote["ratio"], REMOTE_MAX)
    return rows


def _fmt_ratio(summary: dict | None) -> str:
    if not summary:
        return "-"
    r = summary["ratio"]
    return f"{r['median']:.2f} ({r['q25']:.2f}-{r['q75']:.2f})"


def _rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, e in results.get("methods", {}).items():
        inf, mem, train = e.get("inference", {}), e.get("memory", {}), e["train"]
        hippo = _hippo_ratio(e)
        mem_text = f"{mem['increment_mb']:.0f} ({mem.get('ratio', math.nan):.2f})" if "increment_mb" in mem else "-"
        rows.append(
            [
                name,
                f"{e['passes']:.2f}",
                _fmt_ratio(inf.get("patch")),
                _fmt_ratio(inf.get("hippocampus")),
                f"{hippo / e['passes']:.2f}" if e["passes"] else "-",
                f"{inf['hippocampus']['seconds']['median']:.3f}" if "hippocampus" in inf else "-",
                f"{train['ratio']:.2f}",
                f"{train['step_ratio']:.2f}",
                mem_text,
            ]
        )
    return rows


COLUMNS = [
    "method",
    "passes",
    "patch x (IQR)",
    "hippocampus x (IQR)",
    "x / passes",
    "hippocampus s",
    "train x",
    "step x",
    "peak MB (x)",
]


def format_table(results: dict[str, Any]) -> str:
    """Plain-text table of the per-method figures, then targets and errors."""
    rows = [COLUMNS, *_rows(results)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    for t in results.get("targets", []):
        lines.append(f"{'MET ' if t['met'] else 'MISS'}  {t['target']}: {t['value']} (limit {t['limit']})")
    lines += [f"ERROR {name}: {text}" for name, text in results.get("errors", {}).items()]
    return "\n".join(lines) + "\n"


def markdown_section(results: dict[str, Any], command: str) -> str:
    """One ``docs/benchmarks.md`` section: machine, command, tables of methods, memory, CT, remote, targets."""
    m, s = results["machine"], results["settings"]
    gpu = f"{m['gpu']['name']} ({m['gpu']['memory_gb']:.0f} GB)" if m.get("gpu") else "none (CUDA not available)"
    out = [
        f"\n## {m['date']}: {m['cpu']}, device {m['device']}{' (quick)' if s.get('quick') else ''}\n",
        f"- command: `{command}`",
        f"- machine: {m['cpu']}, {m['cores']} cores ({m['torch_threads']} torch threads), {m['ram_gb']} GB RAM, "
        f"{m['os']}; Python {m['python']}, torch {m['torch']}, MONAI {m['monai']}",
        f"- GPU: {gpu}",
        f"- sizes: patch {s['small_patch']}, hippocampus {s['hippocampus_shape']} (window {s['patch']}), "
        f"U-Net {s['channels']}; {s['repeats']} repeats; training {s['train_iterations']} steps per network, "
        f"batch {s['train_batch']}, patch {s['train_patch']}\n",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    out += ["| " + " | ".join(row) + " |" for row in _rows(results)]
    stream = results.get("streaming", {}).get("by_samples", {})
    if stream:
        parts = [f"{k} samples: {v.get('increment_mb', math.nan):.0f} MB" for k, v in stream.items()]
        out.append(f"\nStreaming statistics (MC-Dropout, hippocampus volume, peak above start): {', '.join(parts)}")
    ct = results.get("ct", {})
    if ct:
        out.append(f"\nCT case {ct['shape']} (U-Net {ct['channels']}, window {ct['patch']}, CPU accumulators):\n")
        out += ["| method | options | seconds | peak RSS GB | above start GB |", "|---|---|---|---|---|"]
        for name, e in ct.items():
            if isinstance(e, dict) and "rss_peak_mb" in e:
                vram = f", VRAM {e['vram_peak_mb'] / 1024:.2f} GB" if "vram_peak_mb" in e else ""
                row = f"| {name} | {e['options']} | {e['seconds']:.0f} | {e['rss_peak_mb'] / 1024:.2f}{vram} |"
                out.append(f"{row} {e['increment_mb'] / 1024:.2f} |")
            elif isinstance(e, dict) and "error" in e:
                out.append(f"| {name} | error: {e['error'][:200]} | | | |")
    remote = results.get("remote", {})
    if remote:
        out.append(f"\nRemote vs local predict: {remote}")
    out += ["\n| target | value | limit | met |", "|---|---|---|---|"]
    out += [
        f"| {t['target']} | {t['value']} | {t['limit']} | {'yes' if t['met'] else 'NO'} |" for t in results["targets"]
    ]
    for name, text in results.get("errors", {}).items():
        out.append(f"\n- {name} could not be measured: {text}")
    return "\n".join(out) + "\n"


def append_markdown(path: str | Path, section: str) -> Path:
    """Append ``section`` to ``path``, creating it with the explanatory header first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = path.read_text() if path.exists() else HEADER
    path.write_text(existing + section)
    return path
