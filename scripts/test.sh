#!/usr/bin/env bash
# Set up the environment and run lint, the import contracts and the whole test suite (GUI tests under Xvfb).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh dev
. .venv/bin/activate
ruff check .
ruff format --check .
lint-imports
npe2 validate napari-uqseg
python -m pytest --xvfb-backend xvfb "$@"
