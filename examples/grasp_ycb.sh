#!/usr/bin/env bash
# From meshes to a grasp net for a real depth camera:
#   YCB-like meshes -> top-down synthetic scenes with the PrimeSense depth model (simdata render)
#   -> grasp labels from pybullet trials (simdata grasps) -> GG-CNN2 on the height above the
#   table (adapt train grasp-source-only) -> rectangle accuracy and closed-loop simulated grasp
#   success on scenes of objects it never saw, beside a random and a centroid baseline
#   (adapt eval) -> ONNX export -> the best grasps drawn on real depth frames (adapt predict).
#
#   bash examples/grasp_ycb.sh        # CPU-sized defaults, some 30 minutes on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
OUT=${OUT:-data/example_grasp}
TRAIN_MESHES=${TRAIN_MESHES:-assets/ycb}      # the net learns on these
TEST_MESHES=${TEST_MESHES:-../shared/ycb}     # and is tested on others (real YCB geometry)
[ -d "$TEST_MESHES" ] || { echo "no $TEST_MESHES: testing on $TRAIN_MESHES (not held out)" >&2; TEST_MESHES=$TRAIN_MESHES; }
REAL=${REAL:-../shared/real/ycbv_demo}        # real RGB-D frames to draw grasps on
SCENES=${SCENES:-120}                         # training scenes, 4 views each
TEST_SCENES=${TEST_SCENES:-50}
STEPS=${STEPS:-4000}
WORKERS=${WORKERS:-2}
VIEW="--width 640 --height 480 --views 4 --objects 3:6 --distance 0.45:0.75 --sensor primesense --no-progress"
resume() { [ -f "$1/checkpoints/last.pt" ] && echo --resume || true; }

"$BIN/simdata" render --meshes "$TRAIN_MESHES" --out "$OUT/train" --scenes "$SCENES" --elevation 65:90 --seed 0 $VIEW
"$BIN/simdata" grasps "$OUT/train" --workers "$WORKERS" --trials mapped --no-progress
"$BIN/simdata" render --meshes "$TEST_MESHES" --out "$OUT/test" --scenes "$TEST_SCENES" --elevation 80:90 --seed 1 $VIEW
"$BIN/simdata" grasps "$OUT/test" --workers "$WORKERS" --trials mapped --no-progress
"$BIN/simdata" preview "$OUT/train" --out "$OUT/train_preview.png" --rows 3 --tile-width 240
"$BIN/adapt" train grasp-source-only --task grasp --source "$OUT/train" --out "$OUT/runs/ggcnn2" \
  --channels height --height 240 --crop 128 --batch 8 --steps "$STEPS" --no-progress $(resume "$OUT/runs/ggcnn2")
"$BIN/adapt" eval "$OUT/runs/ggcnn2" --data "$OUT/test" --sim-trials 120 > "$OUT/eval.json"
"$BIN/adapt" export "$OUT/runs/ggcnn2" --net task --format onnx --out "$OUT/ggcnn2.onnx"
if [ -d "$REAL" ]; then
  "$BIN/adapt" predict "$OUT/runs/ggcnn2" --input "$REAL" --out "$OUT/pred_real"
fi
echo "eval: $OUT/eval.json; net: $OUT/ggcnn2.onnx (+ .json); grasps on real depth: $OUT/pred_real"
