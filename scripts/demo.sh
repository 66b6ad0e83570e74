#!/usr/bin/env bash
# Set up the environment and run the offline demo: the shipped starter model predicts a held-back 2 mm MNI152
# brain (own anatomy; bias field, contrast and resolution changed); writes the mask, uncertainty maps, the error
# map, review.json, errors_vs_uncertainty.png and summary.json (`--train` trains methods instead).
set -euo pipefail
cd "$(dirname "$0")/.."
# the demo needs only the engine and nilearn's brain; --view also opens napari, which needs everything
case " $* " in *" --view "*) extras=all ;; *) extras=demo ;; esac
bash scripts/setup_env.sh "$extras"
. .venv/bin/activate
uqseg demo --out demo_output "$@"
