#!/usr/bin/env bash
# Issue 18's calibration split: four methods trained on runs/hippo_split_cal/train.txt under a wall-clock budget,
# their volume intervals and conformal masks calibrated on calibration.txt (cases no training touched), scored
# on the 26 test cases of runs/hippo_split and under noise:3; writes runs/conformal_cal_split.md.
# Usage: bash scripts/results_calibration_split.sh [DATA_DIR] [BUDGET_S (per network, default 2400)]
set -uo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
data="${1:-../shared/data/msd_hippocampus}"
device="${UQSEG_DEVICE:-cpu}"  # cuda on a GPU machine
budget="${2:-2400}"
out=runs/cal_split
mkdir -p "$out/configs" "$out/logs"
[ -f runs/hippo_split/test.txt ] || uqseg split --data "$data" --out runs/hippo_split
[ -f runs/hippo_split_cal/calibration.txt ] || uqseg split --data "$data" --out runs/hippo_split_cal --calibration-fraction 0.2

# The method's plateau config with a time budget on top. The checkpoint ensemble's warm start gets two thirds of it
# and its cycles a third of the plateau recipe's length (3 x 200 steps), so that both chains take about as long.
budgeted_config() {  # budgeted_config METHOD -> path of the config
  python - "$1" "$budget" "$out/configs/$1.json" <<'EOF'
import json, sys
method, budget, path = sys.argv[1], float(sys.argv[2]), sys.argv[3]
cfg = json.load(open(f"configs/hippocampus/{method}.json"))
cfg["train"]["time_budget_s"] = round(budget * 2 / 3) if method == "checkpoint_ensemble" else budget
if method == "checkpoint_ensemble":
    cfg["method"]["cycle_iterations"] = 200
json.dump(cfg, open(path, "w"))
print(path)
EOF
}

train() {  # train METHOD (resumes from the run's checkpoints)
  [ -f "$out/$1/model.json" ] && return 0
  uqseg train --method "$1" --data "$data" --cases runs/hippo_split_cal/train.txt --config "$(budgeted_config "$1")" \
    --out "$out/$1" --device "$device" > "$out/logs/train_$1.log" 2>&1 || { echo "$1: training failed ($out/logs/train_$1.log)"; return 1; }
  echo "$1 trained"
}

score() {  # score METHOD: calibrate on calibration.txt, score on test and noise:3, with and without flips
  OMP_NUM_THREADS=1 python scripts/results_conformal.py "$out/$1" --test runs/hippo_split/test.txt \
    --calibration runs/hippo_split_cal/calibration.txt --tta none flips --shift noise:3 \
    --cache runs/conformal_cache --out "$out/conformal_$1.json" > "$out/logs/conformal_$1.log" 2>&1 \
    || { echo "$1: scoring failed ($out/logs/conformal_$1.log)"; return 1; }
}

chain_a() { for m in deterministic checkpoint_ensemble; do train $m && score $m; done; }
chain_b() { for m in mc_dropout masksembles; do train $m && score $m; done; }
chain_a & chain_b & wait
python scripts/results_conformal.py --tables "$out"/conformal_{deterministic,mc_dropout,masksembles,checkpoint_ensemble}.json \
  --shift noise:3 > runs/conformal_cal_split.md
cat runs/conformal_cal_split.md
