#!/usr/bin/env bash
# The project's main job: set up what is missing, then run it (see README "Status").
set -euo pipefail
cd "$(dirname "$0")/.."
export PARA_EXTRAS=${PARA_EXTRAS:-cpu,dev,train,sim}
scripts/setup.sh
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec .venv/bin/para-demo "$@"
