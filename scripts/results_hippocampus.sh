#!/usr/bin/env bash
# Train and evaluate every method on the MSD hippocampus data (../shared/data/msd_hippocampus), two training
# chains side by side (one CPU core each), then write the table of docs/results.md to runs/results_table.md.
# Usage: bash scripts/results_hippocampus.sh [DATA_DIR [MODEL...]]; MODELs limit the run to those models (their
# order and dependencies stay the script's). Killed, it resumes: each training from its last checkpoint.
set -uo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
. scripts/score_map.sh
data="${1:-../shared/data/msd_hippocampus}"
only=" ${*:2} "  # the models to run; blank: all
device="${UQSEG_DEVICE:-cpu}"  # cuda on a GPU machine
threads="${UQSEG_THREADS:-1}"  # threads per training: 2 where a single chain runs (a resumed run may change it)
mkdir -p runs/logs runs/hippo_models runs/hippo_reports
[ -f runs/hippo_split/test.txt ] || uqseg split --data "$data" --out runs/hippo_split


run_method() {  # train (unless the model exists) and evaluate one model: run_method NAME [METHOD [CONFIG]]
  local m=$1 method=${2:-$1} config=${3:-$1} start
  [ "$only" = "  " ] || [[ "$only" == *" $m "* ]] || return 0
  start=$(date +%s)
  if [ ! -f "runs/hippo_models/$m/model.json" ]; then
    uqseg train --method "$method" --data "$data" --cases runs/hippo_split/train.txt \
      --config "configs/hippocampus/$config.json" --out "runs/hippo_models/$m" --device "$device" --threads "$threads" > "runs/logs/train_$m.log" 2>&1 \
      || { echo "$m: training failed (runs/logs/train_$m.log)"; return 1; }
  fi
  OMP_NUM_THREADS=1 uqseg evaluate --model "runs/hippo_models/$m" --data "$data" --cases runs/hippo_split/test.txt \
    --report "runs/hippo_reports/$m" --map "$(score_map "$m")" --overwrite --device "$device" > "runs/logs/evaluate_$m.log" 2>&1 \
    || { echo "$m: evaluation failed (runs/logs/evaluate_$m.log)"; return 1; }
  echo "$m done in $(( $(date +%s) - start )) s"
}

# Two chains of about equal length (steps to plateau measured so far). The deep ensemble's member_0 trains as
# the deterministic net would (same config and seed; tests/engine/test_baselines_end_to_end.py), so the
# deterministic model is taken from it (temperature fitted) rather than trained twice. partial_bayes starts from
# the same member and DUDES distils the ensemble: both run once the two chains are done.
chain_a() {
  run_method deep_ensemble
  run_method deterministic deterministic deterministic_from_member_0
  run_method checkpoint_ensemble
  run_method checkpoint_ensemble_single_modal checkpoint_ensemble  # the last cycle of the same run, no training
  run_method swa
}
chain_b() { for m in mc_dropout masksembles vi_multihead; do run_method $m; done; }  # VI-MH: 7 s/step
chain_a & chain_b & wait
run_method partial_bayes & run_method dudes & wait

reports=()  # the table lists every model evaluated so far, in this order
for m in deterministic mc_dropout deep_ensemble masksembles vi_multihead checkpoint_ensemble \
  checkpoint_ensemble_single_modal swa partial_bayes dudes; do
  [ -f "runs/hippo_reports/$m/report.json" ] && reports+=("runs/hippo_reports/$m")
done
[ ${#reports[@]} -gt 0 ] && python scripts/results_table.py "${reports[@]}" > runs/results_table.md
[ -f runs/hippo_models/dudes/model.json ] && python scripts/dudes_fidelity.py --student runs/hippo_models/dudes \
  --teacher runs/hippo_models/deep_ensemble --data "$data" --cases runs/hippo_split/test.txt --out runs/dudes_fidelity.json
cat runs/results_table.md
