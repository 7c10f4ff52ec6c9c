#!/usr/bin/env bash
# From meshes to a segmentation net adapted to a real camera, with SPIGAN:
#   assets/ycb -> randomized synthetic scenes (simdata) -> SPIGAN with the simulator's depth as
#   privileged information, the YCB-Video frames as the unlabelled real domain -> ONNX export
#   -> predictions on the real frames next to a source-only baseline.
#
#   bash examples/spigan_ycbv.sh            # CPU-sized defaults, about 10 minutes on 2 cores
#   STEPS=20000 NETS="" bash examples/spigan_ycbv.sh   # paper-sized nets (for a GPU)
#
# VGG19 ImageNet weights for the perceptual loss: run `adapt download-vgg` once (online) and set
# VGG=auto; offline the default VGG=random trains with random features (the run says so).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
OUT=${OUT:-data/example_spigan}
REAL=${REAL:-../shared/real/ycbv_demo}
STEPS=${STEPS:-1500}
VGG=${VGG:-random}
NETS=${NETS:---gen-filters 16 --gen-blocks 4 --disc-filters 32 --task-width 16}
SIZE="--height 120 --crop 96 --class-agnostic --batch 4"
[ -d "$REAL" ] || { echo "no real frames at $REAL; set REAL=folder of your camera's images" >&2; exit 1; }

"$BIN/simdata" render --meshes assets/ycb --out "$OUT/syn" --scenes 40 --views 4 --width 320 \
  --height 240 --randomize materials,lights,distractors --seed 0 --no-progress
"$BIN/simdata" preview "$OUT/syn" --out "$OUT/syn_preview.png" --rows 3 --tile-width 240
"$BIN/adapt" train seg-source-only --source "$OUT/syn" --out "$OUT/runs/src" --steps "$STEPS" \
  $SIZE --task-width 16 --no-progress $( [ -f "$OUT/runs/src/checkpoints/last.pt" ] && echo --resume )
"$BIN/adapt" train spigan --source "$OUT/syn" --target "$REAL" --out "$OUT/runs/spigan" \
  --steps "$STEPS" $SIZE $NETS --vgg-weights "$VGG" --sample-every 250 --no-progress \
  $( [ -f "$OUT/runs/spigan/checkpoints/last.pt" ] && echo --resume )
"$BIN/adapt" export "$OUT/runs/spigan" --net task --format onnx --out "$OUT/seg.onnx"
"$BIN/adapt" predict "$OUT/runs/src" --input "$REAL" --out "$OUT/pred_src"
"$BIN/adapt" predict "$OUT/runs/spigan" --input "$REAL" --out "$OUT/pred_spigan"
# one picture: real frame | source-only | SPIGAN (objects coloured), a row per frame
"$BIN/python" - "$REAL" "$OUT" <<'PY'
import sys
from pathlib import Path
import cv2, numpy as np
real, out = Path(sys.argv[1]), Path(sys.argv[2])
rows = []
for p in sorted(real.glob("*-color.png"))[:4]:
    frame = cv2.imread(str(p))
    tiles = [frame] + [cv2.imread(str(out / d / f"{p.stem}_color.png"))[:frame.shape[0]]
                       for d in ("pred_src", "pred_spigan")]  # legend strip cut off
    for t, name in zip(tiles, ("real frame", "source-only", "SPIGAN")):
        cv2.putText(t, name, (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
    rows.append(cv2.resize(np.concatenate(tiles, 1), None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA))
cv2.imwrite(str(out / "real_predictions.png"), np.concatenate(rows, 0))
print(f"wrote {out / 'real_predictions.png'}")
PY
echo "done: exported net $OUT/seg.onnx (+ .json), predictions in $OUT/pred_spigan"
