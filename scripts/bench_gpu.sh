#!/usr/bin/env bash
# Issue 20, item 5: the benchmarks to run when a GPU machine is lent (not run yet: no GPU was lent to issue 20).
# Run from the repository root with the engine extra installed; appends sections to docs/benchmarks.md and writes
# bench_results/*_cuda.json. About 10 minutes on one modern GPU (the CT MC-Dropout case is the longest).
set -euo pipefail
uqseg bench --device cuda --out bench_results/bench_cuda_full.json --repeats 5            # every method, patch/hippocampus/CT
uqseg bench --device cuda --curves size,samples --figures docs/figures/cuda \
    --out bench_results/perf_cuda_curves.json                                                  # cost curves on the GPU
python - <<'PY'
# CT 512x512x300, full-width U-Net: peak RSS (CPU accumulators and outputs) and VRAM of the deterministic net and of
# 10-sample MC-Dropout, each in a fresh process. The issue's target (<= 40 bytes/voxel) is the CPU figure: set
# CT_CPU=1 to also run both on this machine's CPUs (network activations in RAM; about 10 more minutes on 16 cores).
import json
import os
from napari_uqseg.bench.memory import memory_in_subprocess
devices = ["cuda", "cpu"] if os.environ.get("CT_CPU") == "1" else ["cuda"]
for device in devices:
    for method, options in (("deterministic", {}), ("mc_dropout", {"samples": 10})):
        spec = {"device": device, "shape": [512, 512, 300], "method": method, "options": options,
                "channels": [16, 32, 64, 128], "patch": [128, 128, 128]}
        out = memory_in_subprocess(spec)
        out["bytes_per_voxel"] = out.get("rss_peak_mb", 0) * 2**20 / (512 * 512 * 300)
        print(device, method, json.dumps(out), flush=True)
PY
