#!/usr/bin/env python3
"""What the physics of the grasp trials changes: the test set of a `benchmarks/grasp.py --keep
DIR` run, relabelled with other trial physics, and (with --trials) the nets kept there executed
on the same views with each.

Variants SHAKE:ITERATIONS: the shake after the lift (simdata.grasping.execute.SHAKES: "sine", a
5 Hz sine per axis started at full speed, 247 rad/s^2 about the closing axis, 10x what a Franka
arm's Cartesian limits allow, the shake before 2026-11-27; "arm", the same cycles as fast as
those limits allow) and pybullet's solver iterations per step (20 before 2026-11-27; 100 now:
an unconverged solver lets a heavy object turn between the pads and drop). Per object: the
simulator's own trials (collision-free, share held) with each variant, on the same scenes and
candidates; per net (DIR/run, run_seed*, run_ensemble; --trials > 0): closed-loop success on the
same views with each variant, the baselines beside the first net.

    python benchmarks/grasp_physics.py DIR [--variants sine:20 arm:20 arm:100] [--trials 0]
        [--workers 2] [--out JSON]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]
from grasp_bodies import per_object, relabel  # noqa: E402 (benchmarks/, the script's folder)
from results_io import save_results  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("keep", help="a benchmarks/grasp.py --keep folder (test/ and run folders)")
    ap.add_argument("--variants", nargs="+", default=["sine:20", "arm:20", "arm:100"],
                    help="trial physics to compare, SHAKE:ITERATIONS")
    ap.add_argument("--trials", type=int, default=0,
                    help="closed-loop trials per policy and net (0: the simulator's trials only)")
    ap.add_argument("--workers", type=int, default=2, help="labelling processes")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "grasp_physics_cpu.json"))
    args = ap.parse_args()

    from adapt.config import TrainConfig
    from adapt.grasping import evaluate_grasping, trial_physics_of
    from adapt.trainer import load_run
    from simdata.grasping.execute import SHAKES
    from simdata.grasping.labels import CONFIG_FILE

    keep = Path(args.keep)
    src = keep / "test"
    runs = [p for p in (keep / "run", *sorted(keep.glob("run_seed*")), keep / "run_ensemble") if p.is_dir()]
    if not (src / CONFIG_FILE).is_file():
        raise SystemExit(f"{keep}: needs test/ labelled by simdata grasps (grasp.py --keep)")
    variants = []
    for v in args.variants:
        shake, _, iters = v.partition(":")
        if shake not in SHAKES or not iters.isdigit() or int(iters) < 1:
            raise SystemExit(f"--variants {v!r}: SHAKE:ITERATIONS, SHAKE one of {', '.join(SHAKES)}")
        variants.append((v, shake, int(iters)))
    settings = json.loads((src / CONFIG_FILE).read_text())
    t_start = time.perf_counter()
    results = {"benchmark": "grasp_physics", "date": time.strftime("%Y-%m-%d"), "keep": str(keep),
               "test_labels": settings, "variants": args.variants, "runs": [str(r) for r in runs],
               "trials": args.trials, "objects": {}, "label_seconds": {}, "policies": {}, "partial": True}
    with tempfile.TemporaryDirectory() as tmp:
        tests = {}
        recorded = trial_physics_of(src)
        for name, shake, iters in variants:
            if recorded == {"shake": shake, "solver_iterations": iters}:  # the kept labels
                tests[name] = src
                results["label_seconds"][name] = None
                for obj, row in per_object(src).items():
                    results["objects"].setdefault(obj, {})[name] = row
                continue
            # each variant's labels: the same scenes and candidates, tried with its physics (the
            # closed loop below executes as the labels of its folder were made, trial_physics_of)
            tests[name] = copy = Path(tmp) / name.replace(":", "_")
            t = time.perf_counter()
            relabel(src, copy, args.workers, shake=shake, solver_iterations=iters)
            results["label_seconds"][name] = round(time.perf_counter() - t, 1)
            print(f"relabelled with {name} in {results['label_seconds'][name]:.0f} s", flush=True)
            for obj, row in per_object(copy).items():
                results["objects"].setdefault(obj, {})[name] = row
            save_results(Path(args.out), results, t_start)
        for obj, rows in results["objects"].items():
            print(f"{obj:20s} " + "  ".join(f"{v}: held {r['held_share']} of {r['collision_free']}"
                                            for v, r in rows.items()), flush=True)
        for k, run in enumerate(runs if args.trials > 0 else []):
            method, conf = load_run(run, "cpu")
            for name in tests:
                domain = method.task.open_domain(TrainConfig(**conf["train"]), str(tests[name]), stream=99)
                ev = evaluate_grasping(method.task_net, domain, method.device, trials=args.trials,
                                       policies=("net", "random", "centroid") if k == 0 else ("net",))
                for policy, sim in ev["simulated"].items():
                    label = run.name if policy == "net" else policy
                    results["policies"].setdefault(label, {})[name] = sim
                    print(f"{label:14s} {name:8s} {sim['success_rate']:.1%} {sim['ci95']} (labelled views "
                          f"{sim['labelled_view_success_rate']:.1%} of {sim['labelled_view_trials']})", flush=True)
                save_results(Path(args.out), results, t_start)
    del results["partial"]
    save_results(Path(args.out), results, t_start)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
