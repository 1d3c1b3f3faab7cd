#!/usr/bin/env bash
# The model matrix of docs/matrix.md (issue 15): every architecture trained with the same data,
# the same ViT, schedule and number of epochs (libero128_* presets), exported, then evaluated
# closed loop with the same layouts, seeds and settings:
#   fresh      20 held-out fresh layouts (evaluation seeds 1000000..)
#   viewpoint  θ = 10 deg, official init states 0-2 x 8 azimuths (24 starts)
#   position   SPLIT=left: a model trained on the left half of the shift grid only (the recipe's
#              position track, runs/default/position), evaluated on the right half of a 4 x 4
#              grid, 9 official init states per cell (72 starts; those whose shifted objects
#              interpenetrate are refused and not counted)
# Data: the default recipe's demos (`para-train-default`): runs/default/in_distribution
# (demos_fresh*, demos_shift*) or, with SPLIT=left, runs/default/position (demos_left*).
#   scripts/matrix.sh [OUT] [EPOCHS] [ARCH...]       (resumable: finished stages are skipped)
#   SPLIT=left scripts/matrix.sh [OUT] [EPOCHS] [ARCH...]     -> OUT/left/ARCH.onnx
# ARCH: para_dino_kv single_frame ar2d coord voxel_abs voxel_rel (presets libero128[_ARCH]).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/matrix}
EPOCHS=${2:-10}
shift $(( $# > 2 ? 2 : $# ))
read -r -a ARCHS <<< "${*:-para_dino_kv single_frame ar2d coord voxel_abs voxel_rel}"
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
PY=.venv/bin/python
# The matrix's measured rows used the table-plane orbit warp (the libero128 presets before
# issue 14's change 4 made it per-pixel depth); kept so that every cell has the same recipe.
ORBIT_WARP=${ORBIT_WARP:-plane}
EVAL=(--image-size 128 --max-steps 200)
if [ "${SPLIT:-}" = left ]; then
  DEMOS=${DEMOS:-runs/default/position}
  FILES=("$DEMOS"/demos_left*.hdf5)
  MODELS=$OUT/left
  SETTINGS=(position)
else
  DEMOS=${DEMOS:-runs/default/in_distribution}
  FILES=("$DEMOS"/demos_fresh*.hdf5 "$DEMOS"/demos_shift*.hdf5)
  MODELS=$OUT
  SETTINGS=(fresh viewpoint)
fi
declare -A SETTING_ARGS=(
  [fresh]="--settings fresh --episodes 20"
  [viewpoint]="--settings viewpoint --thetas 10 --azimuths 8 --episodes 3"
  [position]="--settings position --halves right --grid 4 --episodes 9"
)
mkdir -p "$MODELS"
[ -f "$DEMOS/rotation_basis.json" ] || $PY -m para_training.rotation_basis "${FILES[@]}" \
  -o "$DEMOS/rotation_basis.json"
for a in "${ARCHS[@]}"; do
  preset=libero128_$a; [ "$a" = para_dino_kv ] && preset=libero128
  d=$MODELS/$a
  if [ ! -f "$MODELS/$a.onnx" ]; then
    $PY -m para_training.train "${FILES[@]}" --rotation_basis "$DEMOS/rotation_basis.json" \
      --preset "$preset" --output_dir "$d" --run_name run --epochs "$EPOCHS" --threads 1 \
      --augment_orbit_warp "$ORBIT_WARP" --no-progress > "$d.train.log" 2>&1
    $PY -m para_training.export "$d/run/best" -o "$MODELS/$a.onnx" --model-id "matrix_$a" \
      --execute-step 1 > "$d.export.log" 2>&1
  fi
  for s in "${SETTINGS[@]}"; do
    read -r -a sa <<< "${SETTING_ARGS[$s]}"
    [ -f "$OUT/eval/$a/$s/matrix.json" ] || $PY -m para_ros.sim.matrix \
      --models "$MODELS/$a.onnx" "${sa[@]}" "${EVAL[@]}" -o "$OUT/eval/$a/$s" > "$d.$s.log" 2>&1
  done
  echo "$a: $(grep -c "^epoch" "$d.train.log") epochs, $MODELS/$a.onnx evaluated (${SETTINGS[*]})"
done
$PY -m para_ros.sim.matrix join "$OUT"/eval/*/*/matrix.json -o "$OUT"
