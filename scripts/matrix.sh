#!/usr/bin/env bash
# The model matrix of docs/matrix.md (issue 15): every architecture trained with the same data
# (the default recipe's in-distribution demos: runs/default/in_distribution, made by
# `para-train-default`), the same ViT, schedule and number of epochs (libero128_* presets),
# exported, then evaluated closed loop with the same layouts, seeds and settings:
#   fresh      20 held-out fresh layouts (evaluation seeds 1000000..)
#   viewpoint  θ = 10 deg, official init states 0-2 x 8 azimuths (24 starts)
#   scripts/matrix.sh [OUT] [EPOCHS] [ARCH...]       (resumable: finished stages are skipped)
# ARCH: para_dino_kv single_frame ar2d coord voxel_abs voxel_rel (presets libero128[_ARCH]).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/matrix}
EPOCHS=${2:-10}
shift $(( $# > 2 ? 2 : $# ))
read -r -a ARCHS <<< "${*:-para_dino_kv single_frame ar2d coord voxel_abs voxel_rel}"
DEMOS=${DEMOS:-runs/default/in_distribution}
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
PY=.venv/bin/python
EVAL=(--image-size 128 --max-steps 200)
mkdir -p "$OUT"
for a in "${ARCHS[@]}"; do
  preset=libero128_$a; [ "$a" = para_dino_kv ] && preset=libero128
  d=$OUT/$a
  if [ ! -f "$OUT/$a.onnx" ]; then
    $PY -m para_training.train "$DEMOS"/demos_fresh*.hdf5 "$DEMOS"/demos_shift*.hdf5 \
      --rotation_basis "$DEMOS/rotation_basis.json" --preset "$preset" --output_dir "$d" \
      --run_name run --epochs "$EPOCHS" --threads 1 --no-progress > "$d.train.log" 2>&1
    $PY -m para_training.export "$d/run/best" -o "$OUT/$a.onnx" --model-id "matrix_$a" \
      --execute-step 1 > "$d.export.log" 2>&1
  fi
  [ -f "$OUT/eval/$a/fresh/matrix.json" ] || $PY -m para_ros.sim.matrix --models "$OUT/$a.onnx" \
    --settings fresh --episodes 20 "${EVAL[@]}" -o "$OUT/eval/$a/fresh" > "$d.fresh.log" 2>&1
  [ -f "$OUT/eval/$a/viewpoint/matrix.json" ] || $PY -m para_ros.sim.matrix \
    --models "$OUT/$a.onnx" --settings viewpoint --thetas 10 --azimuths 8 --episodes 3 \
    "${EVAL[@]}" -o "$OUT/eval/$a/viewpoint" > "$d.viewpoint.log" 2>&1
  echo "$a: $(grep -c "^epoch" "$d.train.log") epochs, $OUT/$a.onnx evaluated"
done
$PY -m para_ros.sim.matrix join "$OUT"/eval/*/*/matrix.json -o "$OUT"
