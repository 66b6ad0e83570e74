#!/usr/bin/env bash
# Set up the environment and run the offline demo: train on the MNI152 brain bundled with nilearn,
# predict a held-back scan with three methods, write masks, uncertainty maps, review.json and PNGs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh all
. .venv/bin/activate
uqseg demo --out demo_output "$@"
