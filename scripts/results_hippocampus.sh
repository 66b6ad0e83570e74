#!/usr/bin/env bash
# Train and evaluate every method on the MSD hippocampus data (../shared/data/msd_hippocampus), two training
# chains side by side (one CPU core each), then write the table of docs/results.md to runs/results_table.md.
# Usage: bash scripts/results_hippocampus.sh [DATA_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
. scripts/score_map.sh
data="${1:-../shared/data/msd_hippocampus}"
device="${UQSEG_DEVICE:-cpu}"  # cuda on a GPU machine
mkdir -p runs/logs runs/hippo_models runs/hippo_reports
[ -f runs/hippo_split/test.txt ] || uqseg split --data "$data" --out runs/hippo_split


run_method() {  # train (unless the model exists) and evaluate one model: run_method NAME [METHOD (default NAME)]
  local m=$1 method=${2:-$1} start
  start=$(date +%s)
  if [ ! -f "runs/hippo_models/$m/model.json" ]; then
    uqseg train --method "$method" --data "$data" --cases runs/hippo_split/train.txt \
      --config "configs/hippocampus/$m.json" --out "runs/hippo_models/$m" --device "$device" > "runs/logs/train_$m.log" 2>&1 \
      || { echo "$m: training failed (runs/logs/train_$m.log)"; return 1; }
  fi
  OMP_NUM_THREADS=1 uqseg evaluate --model "runs/hippo_models/$m" --data "$data" --cases runs/hippo_split/test.txt \
    --report "runs/hippo_reports/$m" --map "$(score_map "$m")" --overwrite --device "$device" > "runs/logs/evaluate_$m.log" 2>&1 \
    || { echo "$m: evaluation failed (runs/logs/evaluate_$m.log)"; return 1; }
  echo "$m done in $(( $(date +%s) - start )) s"
}

# Two chains of about equal length (steps to plateau measured so far); the four models the review-loop figures
# need (deterministic, MC-Dropout, checkpoint ensemble, Masksembles) come first. partial_bayes starts from the deep
# ensemble's member_0 (its config's from_model), so it follows it in chain b; DUDES distils the deep ensemble, so
# it trains once both chains are done.
chain_a() {
  run_method deterministic
  run_method checkpoint_ensemble
  run_method checkpoint_ensemble_single_modal checkpoint_ensemble  # the last cycle of the same run, no training
  run_method swa
  run_method vi_multihead  # 7 s/step
}
chain_b() { for m in mc_dropout masksembles deep_ensemble partial_bayes; do run_method $m; done; }
chain_a & chain_b & wait
run_method dudes

python scripts/results_table.py runs/hippo_reports/{deterministic,mc_dropout,deep_ensemble,masksembles,vi_multihead,checkpoint_ensemble,checkpoint_ensemble_single_modal,swa,partial_bayes,dudes} \
  > runs/results_table.md
python scripts/dudes_fidelity.py --student runs/hippo_models/dudes --teacher runs/hippo_models/deep_ensemble \
  --data "$data" --cases runs/hippo_split/test.txt --out runs/dudes_fidelity.json
cat runs/results_table.md
