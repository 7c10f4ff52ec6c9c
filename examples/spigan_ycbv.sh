#!/usr/bin/env bash
# From meshes to an object / not-object segmentation net for a real RGB-D camera, scored on
# real labelled frames:
#   YCB meshes -> domain-randomized synthetic scenes with the PrimeSense sensor model and
#   clutter (simdata) -> the recommended source-only net (the height above the table,
#   --channels height, half the training crops mirrored (--hflip), three training seeds averaged
#   by adapt ensemble) -> each of the three adapted by SPIGAN to the unlabelled real frames (the
#   YCB-Video frames; the simulator's depth as privileged information; T starts as the
#   source-only net, --init-task, and the perceptual loss compares that net's own features,
#   --perceptual task), averaged the same way -> ONNX export of both
#   -> object IoU on the labelled real frames of tabletop_dev, negative transfer, per-image
#   figures, a picture.
#
#   bash examples/spigan_ycbv.sh            # CPU-sized defaults, about 26 minutes on 2 cores
#   STEPS=20000 NETS="" bash examples/spigan_ycbv.sh   # paper-sized nets (for a GPU)
#
# Offline: the perceptual loss needs no ImageNet weights (--perceptual task).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
OUT=${OUT:-data/example_spigan}
MESHES=${MESHES:-../shared/ycb}
[ -d "$MESHES" ] || MESHES=assets/ycb
REAL=${REAL:-../shared/real/ycbv_demo}        # unlabelled RGB-D frames of the real camera
TEST=${TEST:-../shared/real/tabletop_dev}     # labelled real frames (NAME_labels.png, classes.json)
SCENES=${SCENES:-200}                 # 4 views each (README: object IoU by render and seed)
STEPS=${STEPS:-6000}
SEEDS=${SEEDS:-"0 1 2"}               # training seeds of the recommended net (averaged)
FLIPS=${FLIPS:-none}                  # h: each also on the mirrored image (no gain with --hflip)
GAN_STEPS=${GAN_STEPS:-2400}          # SPIGAN steps per seed (it may stop early, keeping best.pt)
CHANNELS=${CHANNELS:-height}          # the nets' input (SPIGAN restyles it; rgb, rgbd or rgbh work too)
NETS=${NETS:---gen-filters 16 --gen-blocks 4 --disc-filters 32}
SIZE="--height 120 --crop 96 --batch 4 --objectness"
for d in "$REAL" "$TEST"; do
  [ -d "$d" ] || { echo "no real frames at $d; set REAL= (unlabelled) and TEST= (labelled) folders of your camera's RGB-D images" >&2; exit 1; }
done
resume() { [ -f "$1/checkpoints/last.pt" ] && echo --resume || true; }

[ -d "$OUT/syn" ] || "$BIN/simdata" render --meshes "$MESHES" --out "$OUT/syn" --scenes "$SCENES" --views 4 \
  --width 320 --height 240 --elevation 55:90 --randomize all --sensor primesense --seed 0 --no-progress
"$BIN/simdata" preview "$OUT/syn" --out "$OUT/syn_preview.png" --rows 3 --tile-width 240
# the recommended net: one training run per seed on crops mirrored at random (--hflip), their
# probabilities averaged (adapt ensemble; on tabletop_dev one run's object IoU depends on its
# seed, 0.18-0.68 with --hflip; three averaged 0.56-0.69); then SPIGAN from each of them,
# averaged the same way
ensemble() {  # ensemble OUT RUN...: the runs' probabilities averaged into OUT (one run: a copy)
  local out=$1; shift
  if [ $# -gt 1 ] || [ "$FLIPS" != none ]; then
    [ -d "$out" ] || "$BIN/adapt" ensemble "$@" --flips "$FLIPS" --out "$out"
  else
    rm -rf "$out" && cp -r "$1" "$out"
  fi
}
SOURCE_ONLY=() ADAPTED=()
for seed in $SEEDS; do
  src="$OUT/runs/src_seed$seed" gan="$OUT/runs/spigan_seed$seed"
  "$BIN/adapt" train seg-source-only --source "$OUT/syn" --out "$src" --seed "$seed" \
    --steps "$STEPS" $SIZE --channels "$CHANNELS" --task-width 16 --hflip --no-progress $(resume "$src")
  "$BIN/adapt" train spigan --source "$OUT/syn" --target "$REAL" --out "$gan" --seed "$seed" \
    --init-task "$src" --perceptual task --steps "$GAN_STEPS" $SIZE --channels "$CHANNELS" \
    --task-width 16 $NETS --hflip --ckpt-every 200 --sample-every 400 --no-progress $(resume "$gan")
  SOURCE_ONLY+=("$src") ADAPTED+=("$gan")
done
ensemble "$OUT/runs/src" "${SOURCE_ONLY[@]}"
ensemble "$OUT/runs/spigan" "${ADAPTED[@]}"
"$BIN/adapt" export "$OUT/runs/src" --net task --format onnx --out "$OUT/seg.onnx"
"$BIN/adapt" export "$OUT/runs/spigan" --net task --format onnx --out "$OUT/seg_spigan.onnx"
"$BIN/adapt" eval "$OUT/runs/src" --data "$TEST" > "$OUT/eval_src.json"
"$BIN/adapt" eval "$OUT/runs/spigan" --data "$TEST" --baseline "$OUT/runs/src" > "$OUT/eval_spigan.json"
"$BIN/adapt" predict "$OUT/runs/src" --input "$TEST" --out "$OUT/pred_src"
"$BIN/adapt" predict "$OUT/runs/spigan" --input "$TEST" --out "$OUT/pred_spigan"
# one picture: real frame | source-only | SPIGAN (objects coloured), a row per frame
"$BIN/python" - "$TEST" "$OUT" <<'PY'
import json, sys
from pathlib import Path
import cv2, numpy as np
test, out = Path(sys.argv[1]), Path(sys.argv[2])
iou = {n: json.loads((out / f"eval_{n}.json").read_text())["per_class_iou"]["object"] for n in ("src", "spigan")}
rows = []
for p in sorted(p for p in test.glob("*.png") if not p.stem.endswith("_labels"))[:4]:
    frame = cv2.imread(str(p))
    tiles = [frame] + [cv2.imread(str(out / d / f"{p.stem}_color.png"))[:frame.shape[0]]
                       for d in ("pred_src", "pred_spigan")]  # legend strip cut off
    names = ("real frame", f"source-only, object IoU {iou['src']:.2f}", f"SPIGAN, object IoU {iou['spigan']:.2f}")
    for t, name in zip(tiles, names):
        cv2.putText(t, name, (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2)
    rows.append(cv2.resize(np.concatenate(tiles, 1), None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA))
cv2.imwrite(str(out / "real_predictions.png"), np.concatenate(rows, 0))
print(f"wrote {out / 'real_predictions.png'}; object IoU on {test.name}: source-only {iou['src']:.3f}, SPIGAN {iou['spigan']:.3f}")
PY
echo "done: exported nets $OUT/seg.onnx and $OUT/seg_spigan.onnx (+ .json), figures in $OUT/runs/*/eval_$(basename "$TEST")/"
