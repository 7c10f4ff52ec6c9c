#!/usr/bin/env bash
# The GPU render figures of issue 12 on a lent GPU machine whose image has torch but neither
# pybullet nor pyrender. Prepared here (see gpu_figures.sh):
#   .gl/               EGL/GL loader packages (.deb)
#   .whl/              pyrender, PyOpenGL, trimesh, pyglet, freetype-py wheels (pure Python)
#   .whl_acc/          the PyOpenGL-accelerate wheel (C wrappers for PyOpenGL's calls), for
#                      the Python there (cp312)
#   .devdata/layouts   render_throughput.py --save-layouts .devdata/layouts --sets real
#                      --scenes 250 --plain-scenes 32 --long-images 0
# Run there from the repository root with those four carried. Everything lands in
# $OUT/figures.tgz (and the throughput JSON beside it):
#   1. render_profile.py: one process's host CPU per image, by package, without and with
#      PyOpenGL-accelerate;
#   2. render_throughput.py --gpu --layouts: 1 to 16 workers and the plain script;
#   3. 8 and 16 workers with and without PyOpenGL-accelerate, twice, in both orders;
#   beside them, GPU and CPU utilisation once a second (gpu_dmon.log, cpu.log; phases.log
#   holds when each part started).
# MODE=ab instead compares two checkouts: BEFORE (a folder holding an older commit's simdata/
# and benchmarks/, e.g. `git archive REV simdata benchmarks | tar x -C .devdata/before`),
# rendered without PyOpenGL-accelerate, against this one with it, at AB_WORKERS workers,
# alternated ROUNDS times (odd rounds before first); and profiles this one
# (render_profile_gpu_after.json).
# MODE=threads profiles one process with the NVIDIA driver's settings as they come, with
# __GL_YIELD=USLEEP and with __GL_THREADED_OPTIMIZATIONS=0 (the CPU of each thread), then times
# AB_WORKERS workers as they come against the variant that used the least CPU, twice.
# SCENES, PROFILE_SCENES, WORKERS and AB_WORKERS shrink it for a dry run on a machine
# without a GPU (with GPU_FLAG=--no-gpu).
set -u
OUT=${OUT:-/tmp/gpu_render}
F="$OUT/f"
mkdir -p "$F"
SCENES=${SCENES:-150}
PROFILE_SCENES=${PROFILE_SCENES:-25}
WORKERS=${WORKERS:-1 4 8 16}
AB_WORKERS=${AB_WORKERS:-8 16}
GPU_FLAG=${GPU_FLAG:---gpu}
if [ -d .gl ]; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
ACC=/tmp/site_acc
if [ -d .whl_acc ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target $ACC .whl_acc/*.whl || exit 1
fi
PLAIN_PATH=${PYTHONPATH:-}
with_acc() { if [ "$1" = on ]; then export PYTHONPATH=$ACC${PLAIN_PATH:+:$PLAIN_PATH}; else export PYTHONPATH=$PLAIN_PATH; fi; }
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 PYOPENGL_PLATFORM=egl EGL_DEVICE_ID=0 PYGLET_HEADLESS=1
vendor=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
[ -f $vendor ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$vendor
{ nvidia-smi -L; nproc; lscpu | grep -E "Model name|Thread|Core|Socket|MHz"; free -g; } \
    > "$F/machine.txt" 2>&1
cat "$F/machine.txt"

phase() { echo "$(date +%T) $*" | tee -a "$F/phases.log"; }
nvidia-smi dmon -s u -d 1 -o T > "$F/gpu_dmon.log" 2>&1 &
DMON=$!
# busy share of all cores once a second, from /proc/stat
$PY -c '
import time
def busy():
    v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return v[3] + v[4], sum(v)
i0, t0 = busy()
while True:
    time.sleep(1)
    i1, t1 = busy()
    print(time.strftime("%H:%M:%S"), round(100 * (1 - (i1 - i0) / max(t1 - t0, 1)), 1), flush=True)
    i0, t0 = i1, t1
' > "$F/cpu.log" 2>&1 &
CPUMON=$!

LAYOUTS=$(pwd)/.devdata/layouts
# profile NAME [NOTE]: render_profile.py of this checkout -> render_profile_gpu_NAME.json
profile() {
    phase "profile $1"
    timeout 120 $PY benchmarks/render_profile.py $GPU_FLAG --layouts "$LAYOUTS" \
        --scenes "$PROFILE_SCENES" --note "${2:-}" \
        --out "$F/render_profile_gpu_$1.json" > "$F/profile_$1.log" 2>&1
    echo "profile $1: exit $?"; grep -A14 ms_per_image "$F/profile_$1.log"
}
# ab_run NAME [DIR]: render_throughput.py of DIR's checkout [this one] at AB_WORKERS workers
ab_run() {
    phase "A/B $1"
    (cd "${2:-.}" && timeout 120 $PY benchmarks/render_throughput.py $GPU_FLAG \
        --layouts "$LAYOUTS" --sets real --workers $AB_WORKERS --scenes "$SCENES" \
        --long-images 0 --crops 0 --skip plain \
        --out "$F/ab_$1.json" > "$F/ab_$1.log" 2>&1)
    echo "A/B $1: exit $?"; grep -E "^real +[0-9]+ " "$F/ab_$1.log"
}
finish() {
    with_acc off
    phase "done"
    kill $DMON $CPUMON 2>/dev/null
    tar czf "$OUT/figures.tgz" -C "$OUT" f
    ls -la "$OUT"
    exit 0
}

if [ "${MODE:-figures}" = threads ]; then
    with_acc on
    best=""; best_cpu=""
    for variant in default __GL_YIELD=USLEEP __GL_THREADED_OPTIMIZATIONS=0; do
        tag=${variant%%=*}; tag=${tag#__GL_}
        if [ $variant = default ]; then unset __GL_YIELD __GL_THREADED_OPTIMIZATIONS; else export "$variant"; fi
        profile "$tag" "$variant"
        [ $variant = default ] || unset "${variant%%=*}"
        cpu=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['ms_per_image']['process_cpu (all threads)'])" "$F/render_profile_gpu_$tag.json" 2>/dev/null)
        echo "$variant: $cpu ms of CPU per image"
        if [ $variant != default ] && [ -n "$cpu" ] && { [ -z "$best_cpu" ] || $PY -c "import sys; sys.exit(not float(sys.argv[1]) < float(sys.argv[2]))" "$cpu" "$best_cpu"; }; then
            best=$variant; best_cpu=$cpu
        fi
    done
    phase "best variant: $best ($best_cpu ms)"
    for round in 1 2; do
        order=(default "$best"); [ $round = 2 ] && order=("$best" default)
        for variant in "${order[@]}"; do
            tag=${variant%%=*}; tag=${tag#__GL_}
            [ "$variant" = default ] || export "$variant"
            ab_run "${tag}_$round"
            [ "$variant" = default ] || unset "${variant%%=*}"
        done
    done
    finish
fi

if [ "${MODE:-figures}" = ab ]; then
    BEFORE=$(cd "${BEFORE:-.devdata/before}" && pwd)
    with_acc on
    profile after "this checkout, PyOpenGL-accelerate"
    for round in $(seq 1 "${ROUNDS:-3}"); do
        order="before after"; [ $((round % 2)) = 0 ] && order="after before"
        for side in $order; do
            if [ $side = before ]; then with_acc off; ab_run "before_$round" "$BEFORE"
            else with_acc on; ab_run "after_$round"; fi
        done
    done
    finish
fi

profile plain
with_acc on
profile accelerate "PyOpenGL-accelerate"
with_acc off

phase "throughput 1 4 8 16 workers, plain"
timeout 300 $PY benchmarks/render_throughput.py $GPU_FLAG --layouts "$LAYOUTS" \
    --sets real --workers $WORKERS --scenes "$SCENES" --plain-scenes 32 --long-images 0 \
    --crops 0 --out "$F/render_throughput_gpu.json" > "$F/render.log" 2>&1
echo "render: exit $?"; tail -n 14 "$F/render.log"
cp "$F/render_throughput_gpu.json" "$OUT/" 2>/dev/null

for round in 1 2; do
    order="on off"; [ $round = 2 ] && order="off on"
    for acc in $order; do
        with_acc $acc
        ab_run "accelerate_${acc}_$round"
    done
done
finish
