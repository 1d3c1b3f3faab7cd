#!/usr/bin/env bash
# The model matrix of docs/matrix.md (issue 15): every architecture trained with the same data
# (the default recipe's in-distribution demos: runs/default/in_distribution, made by
# `para-train-default`), the same ViT, schedule and number of epochs (libero128_* presets),
# exported, then evaluated closed loop with the same layouts, seeds and settings.
#   scripts/matrix.sh [OUT] [EPOCHS] [ARCH...]       (resumable: finished stages are skipped)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/matrix}
EPOCHS=${2:-10}
shift $(( $# > 2 ? 2 : $# ))
ARCHS=("${@:-para_dino_kv single_frame ar2d coord voxel_abs voxel_rel}")
read -r -a ARCHS <<< "${ARCHS[*]}"
DEMOS=${DEMOS:-runs/default/in_distribution}
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
PY=.venv/bin/python
mkdir -p "$OUT"
for a in "${ARCHS[@]}"; do
  preset=libero128_$a; [ "$a" = para_dino_kv ] && preset=libero128
  d=$OUT/$a
  if [ ! -f "$d/model.onnx" ]; then
    $PY -m para_training.train "$DEMOS"/demos_fresh*.hdf5 "$DEMOS"/demos_shift*.hdf5 \
      --rotation_basis "$DEMOS/rotation_basis.json" --preset "$preset" --output_dir "$d" \
      --run_name run --epochs "$EPOCHS" --threads 1 --no-progress > "$d.train.log" 2>&1
    $PY -m para_training.export "$d/run/best" -o "$d/model.onnx" --model-id "matrix_$a" \
      --execute-step 1 > "$d.export.log" 2>&1
  fi
  echo "$a: $(grep -c '^epoch' "$d.train.log") epochs, $d/model.onnx"
done
