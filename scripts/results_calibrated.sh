#!/usr/bin/env bash
# Temperature-scale every trained hippocampus model of scripts/results_hippocampus.sh on the validation split its
# training held out (`uqseg calibrate`), evaluate the calibrated copies on the same test cases, write the table.
# Usage: bash scripts/results_calibrated.sh [DATA_DIR] [METHOD ...]
set -uo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
. scripts/score_map.sh
data="${1:-../shared/data/msd_hippocampus}"
device="${UQSEG_DEVICE:-cpu}"  # cuda on a GPU machine
shift || true
methods=("$@")
[ ${#methods[@]} -gt 0 ] || methods=(deterministic mc_dropout deep_ensemble masksembles vi_multihead checkpoint_ensemble checkpoint_ensemble_single_modal swa partial_bayes dudes)
mkdir -p runs/logs runs/hippo_models_ts runs/hippo_reports_ts
for m in "${methods[@]}"; do
  if [ ! -f "runs/hippo_models_ts/$m/model.json" ]; then
    uqseg calibrate --model "runs/hippo_models/$m" --out "runs/hippo_models_ts/$m" --device "$device" > "runs/logs/calibrate_$m.log" 2>&1 \
      || { echo "$m: calibration failed (runs/logs/calibrate_$m.log)"; continue; }
  fi
  OMP_NUM_THREADS=1 uqseg evaluate --model "runs/hippo_models_ts/$m" --data "$data" --cases runs/hippo_split/test.txt \
    --report "runs/hippo_reports_ts/$m" --map "$(score_map "$m")" --overwrite --device "$device" > "runs/logs/evaluate_ts_$m.log" 2>&1 \
    || { echo "$m: evaluation failed (runs/logs/evaluate_ts_$m.log)"; continue; }
  echo "$m: temperature $(python -c "import json; print(json.load(open('runs/hippo_models_ts/$m/model.json'))['extra']['temperature'])")"
done
