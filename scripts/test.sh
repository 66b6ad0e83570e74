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
# one worker per core, each test file on one worker (module-scoped servers and models are built once)
python -m pytest --xvfb-backend xvfb -n auto --dist loadfile "$@"
