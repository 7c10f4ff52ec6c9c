"""Figures of ``examples/spigan_ycbv.sh``: each seed's source-only and SPIGAN nets and their
ensembles, scored on the example's labelled real frames (``TEST``, tabletop_dev).

    .venv/bin/python benchmarks/example_spigan_ycbv.py --run       # runs the example (about 26 min
                                                                   # on 2 cores), then collects
    .venv/bin/python benchmarks/example_spigan_ycbv.py --minutes 26  # collects a finished run

Every net, single or averaged, is scored with ``adapt eval RUN --data TEST`` (SPIGAN's with
``--baseline`` the source-only run of the same seed, or their average), as the example scores
its averages. Saves ``--out``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import save_results  # noqa: E402 (benchmarks/, the script's folder)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SPIGAN = "spigan, task features, target ycbv"


def figures(e: dict) -> dict:
    out = {"object_iou": e["per_class_iou"]["object"], "miou": e["miou"],
           "per_image_miou": e["per_image_iou"]}
    if "negative_transfer" in e:
        out["negative_transfer_vs_source_only"] = e["negative_transfer"]
    return out


def evaluate(run_dir: Path, test: str, baseline: Path | None = None) -> dict:
    """``adapt eval`` of ``run_dir`` on ``test``: the figures of the file it writes in the run."""
    cmd = [BIN / "adapt", "eval", run_dir, "--data", test] + (["--baseline", baseline] if baseline else [])
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=ROOT)
    if r.returncode:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{r.stderr.strip()[-2000:]}")
    return figures(json.loads((run_dir / f"eval_{Path(test).name}.json").read_text()))


def early_stop_step(run_dir: Path):
    """The step at which the run's early-stop rule fired, if it did (from its log)."""
    for line in (run_dir / "metrics.jsonl").read_text().splitlines()[::-1]:
        rec = json.loads(line)
        if "early_stop" in rec:
            return rec.get("step")
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="data/example_spigan", help="the example's OUT folder")
    ap.add_argument("--test", default="../shared/real/tabletop_dev", help="the example's TEST folder")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="the example's SEEDS")
    ap.add_argument("--run", action="store_true", help="run the example first (OUT=--work) and time it")
    ap.add_argument("--minutes", type=float, default=None, help="the run's time, when collected afterwards")
    ap.add_argument("--out", default="benchmarks/results/example_spigan_ycbv_cpu.json")
    args = ap.parse_args()
    t0 = time.perf_counter()
    work = ROOT / args.work
    minutes = args.minutes
    if args.run:
        subprocess.run(["bash", "examples/spigan_ycbv.sh"], cwd=ROOT, check=True,
                       env={**os.environ, "OUT": str(work), "TEST": args.test})
        minutes = round((time.perf_counter() - t0) / 60, 1)
    runs = work / "runs"
    results = {"benchmark": "example_spigan_ycbv", "date": time.strftime("%Y-%m-%d"),
               "device": f"cpu ({os.cpu_count()} cores)",
               "command": f"OUT={args.work} bash examples/spigan_ycbv.sh (its defaults: ../shared/ycb, "
                          f"200 scenes, render --seed 0 --randomize all, seeds "
                          f"{' '.join(map(str, args.seeds))}, 6000 source-only steps, SPIGAN --init-task "
                          f"--perceptual task --steps 2400, REAL=../shared/real/ycbv_demo)",
               "minutes": minutes, "test": args.test, "seeds": {}}
    for seed in args.seeds:
        src, gan = runs / f"src_seed{seed}", runs / f"spigan_seed{seed}"
        results["seeds"][seed] = {"source-only": evaluate(src, args.test),
                                  SPIGAN: {**evaluate(gan, args.test, src),
                                           "early_stop_step": early_stop_step(gan)}}
        print(f"seed {seed}: " + ", ".join(f"{k} {v['object_iou']:.3f}"
                                           for k, v in results["seeds"][seed].items()), flush=True)
    results["ensembles"] = {"source-only": evaluate(runs / "src", args.test),
                            SPIGAN: evaluate(runs / "spigan", args.test, runs / "src")}
    print("ensembles: " + ", ".join(f"{k} {v['object_iou']:.3f}" for k, v in results["ensembles"].items()))
    save_results(ROOT / args.out, results, t0)


if __name__ == "__main__":
    main()
