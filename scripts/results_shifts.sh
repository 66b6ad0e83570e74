#!/usr/bin/env bash
# Shift detection on the hippocampus test cases: evaluate calibrated models (scripts/results_calibrated.sh) on
# corrupted copies of the test images and print the AUROC of the case score, clean against corrupted.
# Usage: bash scripts/results_shifts.sh [DATA_DIR] [METHOD ...]   (methods: evaluate only these; the table
# always covers every model below whose reports exist)
set -uo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
. scripts/score_map.sh
data="${1:-../shared/data/msd_hippocampus}"
shift || true
all=(deterministic mc_dropout deep_ensemble dudes masksembles checkpoint_ensemble checkpoint_ensemble_single_modal partial_bayes
  vi_multihead)
methods=("$@")
[ ${#methods[@]} -gt 0 ] || methods=("${all[@]}")
shifts=(noise:3 bias:3 motion:3)
mkdir -p runs/logs runs/hippo_reports_shift
for m in "${methods[@]}"; do
  for s in "${shifts[@]}"; do
    out="runs/hippo_reports_shift/${m}_${s/:/_}"
    [ -f "$out/report.json" ] && continue
    OMP_NUM_THREADS=1 uqseg evaluate --model "runs/hippo_models_ts/$m" --data "$data" --cases runs/hippo_split/test.txt \
      --shift "$s" --map "$(score_map "$m")" --report "$out" --overwrite --device cpu > "runs/logs/evaluate_shift_${m}_${s/:/_}.log" 2>&1 \
      || echo "$m $s: evaluation failed"
  done
done
for m in "${all[@]}"; do
  [ -f "runs/hippo_reports_shift/${m}_${shifts[0]/:/_}/report.json" ] || continue
  python scripts/shift_detection.py --in-dist "runs/hippo_reports_ts/$m" \
    --shifted $(for s in "${shifts[@]}"; do echo "runs/hippo_reports_shift/${m}_${s/:/_}"; done)
done > runs/shift_table.md
cat runs/shift_table.md
