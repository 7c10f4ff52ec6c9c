#!/usr/bin/env bash
# The GPU figures of the render and SPIGAN benchmarks, on a lent GPU machine whose image has
# torch but neither pybullet nor pyrender (see benchmarks/results/README.md). Prepared here:
#   .gl/            EGL/GL loader packages (libegl1, libglvnd0, libopengl0, libgl1, ...; .deb)
#   .whl/           pyrender, PyOpenGL, trimesh, pyglet, freetype-py wheels (pure Python)
#   .devdata/layouts   scenes settled here: render_throughput.py --save-layouts DIR --sets real
#                      textured --scenes 100 --plain-scenes 32 --long-images 0
#   .devdata/spigan40rgb  data rendered here: adapt_spigan.py --save-data DIR --prepare-only
#                      --scenes 40 --channels rgb
# Run there from the repository root with those four carried; figures and logs go to $OUT.
set -u
OUT=${OUT:-/tmp/gpu_figures}
mkdir -p "$OUT"
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 PYOPENGL_PLATFORM=egl EGL_DEVICE_ID=0
vendor=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
[ -f $vendor ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$vendor
nvidia-smi -L; nproc

# 1. rendering + writing with EGL on the GPU, 1 to 16 worker processes (physics settled here;
# pyglet, which pyrender imports, must not look for X11: there is none)
export PYGLET_HEADLESS=1
timeout 240 python3 benchmarks/render_throughput.py --gpu --layouts .devdata/layouts \
    --sets real --workers 1 4 8 16 --scenes 100 --plain-scenes 32 --long-images 0 \
    --crops 300 --crop-workers 1 --out "$OUT/render_throughput_gpu.json" > "$OUT/render.log" 2>&1
echo "render: exit $?"; tail -n 12 "$OUT/render.log"

# 2. SPIGAN at the paper's sizes (240 px high, 224 px crops, full nets): the paper's update
# schedule (g_steps 5: T is updated every 5th step) beside every net updated at every step,
# and the source-only rows, as four processes at once on the one GPU (each process is bound
# by its own kernel launches, so they barely slow each other; steps/s are per process).
# Negative transfer across processes is computed from the saved per-image IoUs afterwards.
spigan() {  # $1: name, then adapt_spigan.py options
    name=$1; shift
    OMP_NUM_THREADS=3 timeout 320 python3 benchmarks/adapt_spigan.py --data .devdata/spigan40rgb \
        --device cuda --paper --channels rgb --steps 400 --gan-steps 400 --vgg-weights random \
        --out "$OUT/adapt_spigan_cuda_$name.json" "$@" > "$OUT/spigan_$name.log" 2>&1
    echo "spigan $name: exit $?"
}
spigan baselines --tests synthetic,tabletop_dev --variants "" &
spigan g1_synthetic --tests synthetic --rows "" --variants "spigan-g1:g_steps=1" &
spigan g5_synthetic --tests synthetic --rows "" --variants "spigan-g5:g_steps=5" &
spigan g1_tabletop --tests tabletop_dev --rows "" --variants "spigan-g1:g_steps=1" &
wait
grep -h "object IoU\|Error\|error" "$OUT"/spigan_*.log | tail -n 20
