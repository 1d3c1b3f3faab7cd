#!/usr/bin/env bash
# The project's test command: set up what is missing (scripts/setup.sh), lint, run the tests.
# Extra arguments go to pytest, e.g. scripts/test.sh -k geometry.
set -euo pipefail
cd "$(dirname "$0")/.."
export PARA_EXTRAS=${PARA_EXTRAS:-cpu,dev,train,sim}
scripts/setup.sh
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
