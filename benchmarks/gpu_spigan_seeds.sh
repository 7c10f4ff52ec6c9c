#!/usr/bin/env bash
# SPIGAN against source-only at the paper's sizes on one GPU, over several training seeds: the
# issue's comparison (SPIGAN >= the source-only net trained on the same data + 0.05 object IoU,
# negative transfer <= 0.2) with runs long enough for G to learn something (the 400-step runs of
# gpu_figures.sh were not). On a lent GPU machine whose image has torch but not the renderer
# (training from --data imports none of it), with data rendered here and carried:
#   .devdata/spigan100rgb  adapt_spigan.py --save-data DIR --prepare-only --scenes 100
#            --channels rgb (41 MiB)
# Run there from the repository root. Per-process JSONs and logs go to
# $OUT/runs (and $OUT/runs.tar.gz); benchmarks/merge_spigan_seeds.py merges them into
# $OUT/adapt_spigan_seeds.json (negative transfer per seed, means).
#   STEPS (2500): steps of every run, source-only and SPIGAN alike (T gets as many updates)
#   SEEDS ("0 1 2 3"): one SPIGAN process per seed, the source-only rows in two processes
#   ABLATION_SEEDS ("0 1"): then the paper's ablations, SPIGAN-no-PI (gamma = 0) and SPIGAN-base
#     (gamma = delta = 0), one process each per seed ("": none)
#   THREADS (2): CPU threads per process; LIMIT (500): seconds per process; PYTHON (python3)
#   INIT (0): 1 = SPIGAN from the source-only net (adapt train --init-task) instead: one process
#     per seed and variant trains source-only (clean), then from it SPIGAN and the fair baseline
#     (the same net trained GAN_STEPS more at SPIGAN's learning rate); no separate source-only
#     processes, and no ablations unless ABLATION_SEEDS is given. Each variant's processes are
#     merged on their own ($OUT/adapt_spigan_seeds_<label>.json), against their own baselines
#   VARIANTS ("spigan-init:source=clean,init=true"): with INIT=1, the SPIGAN variants, ";"
#     between them (adapt_spigan.py --variants, one per process)
#   GAN_STEPS (STEPS): SPIGAN's steps and the continued baseline's, with INIT=1
#   SIZE (paper): paper = the paper's sizes (--paper); cpu = adapt_spigan.py's CPU sizes (120 px
#     high images, 96 px crops, small nets), e.g. STEPS=1500 to repeat a CPU study on more seeds
set -u
OUT=${OUT:-/tmp/gpu_spigan_seeds}
STEPS=${STEPS:-2500}
SEEDS=${SEEDS:-"0 1 2 3"}
INIT=${INIT:-0}
GAN_STEPS=${GAN_STEPS:-$STEPS}
VARIANTS=${VARIANTS:-"spigan-init:source=clean,init=true"}
SIZE=${SIZE:-paper}
case "$SIZE" in paper) SIZE_FLAGS=--paper ;; cpu) SIZE_FLAGS= ;; *) echo "SIZE=$SIZE: paper or cpu"; exit 2 ;; esac
if [ "$INIT" = 1 ]; then ABLATION_SEEDS=${ABLATION_SEEDS-""}; else ABLATION_SEEDS=${ABLATION_SEEDS-"0 1"}; fi
THREADS=${THREADS:-2}
LIMIT=${LIMIT:-500}
DATA=${DATA:-.devdata/spigan100rgb}
RUNS=${RUNS:-$OUT/runs}  # per-process JSONs and logs (on a device run: outside $OUT, which returns few files)
mkdir -p "$RUNS"
PYTHON=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
nvidia-smi -L 2>/dev/null; nproc

run() {  # $1: name, then adapt_spigan.py options (each process: a few CPU threads, see gpu_figures.sh)
  name=$1; shift
  OMP_NUM_THREADS=$THREADS timeout "$LIMIT" "$PYTHON" benchmarks/adapt_spigan.py --data "$DATA" $SIZE_FLAGS \
      --channels rgb --steps "$STEPS" --gan-steps "$GAN_STEPS" --vgg-weights random \
      --out "$RUNS/$name.json" "$@" > "$RUNS/$name.log" 2>&1
  echo "$name: exit $?"
}
if [ "$INIT" = 1 ]; then
  IFS=';' read -ra VARIANT_LIST <<< "$VARIANTS"
  for v in "${VARIANT_LIST[@]}"; do
    for s in $SEEDS; do
      run "${v%%:*}_seed$s" --seed "$s" --tests synthetic --rows "source-only (clean)" --variants "$v" &
    done
  done
  wait
else
  for s in $SEEDS; do
    run "spigan_seed$s" --seed "$s" --tests synthetic --rows "" --variants "spigan:source=clean" &
  done
  # source-only (clean) and (DR) for every seed, in two processes (they are fast)
  baselines() { for s in "$@"; do
    run "baselines_seed$s" --seed "$s" --tests synthetic,tabletop_dev --variants ""
  done; }
  set -- $SEEDS
  half=$(( ($# + 1) / 2 ))
  baselines "${@:1:$half}" &
  baselines "${@:$((half + 1))}" &
  wait
fi
for s in $ABLATION_SEEDS; do
  run "spigan-no-pi_seed$s" --seed "$s" --tests synthetic --rows "" \
      --variants "spigan-no-pi:source=clean,no_pi=true" &
  run "spigan-base_seed$s" --seed "$s" --tests synthetic --rows "" \
      --variants "spigan-base:source=clean,base=true" &
done
wait
grep -h "Error\|error" "$RUNS"/*.log | tail -n 20
how="benchmarks/gpu_spigan_seeds.sh INIT=$INIT SIZE=$SIZE STEPS=$STEPS GAN_STEPS=$GAN_STEPS SEEDS='$SEEDS' THREADS=$THREADS on $(nvidia-smi -L 2>/dev/null | head -n 1)"
if [ "$INIT" = 1 ]; then
  for v in "${VARIANT_LIST[@]}"; do
    "$PYTHON" benchmarks/merge_spigan_seeds.py "$RUNS/${v%%:*}"_seed*.json \
        --out "$OUT/adapt_spigan_seeds_${v%%:*}.json" --how "$how VARIANTS='$v'"
  done
else
  "$PYTHON" benchmarks/merge_spigan_seeds.py "$RUNS"/*.json --out "$OUT/adapt_spigan_seeds.json" --how "$how"
fi
tar -czf "$OUT/runs.tar.gz" -C "$RUNS" .  # the files that come back from a device run are few
