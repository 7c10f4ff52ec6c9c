#!/usr/bin/env python3
"""Grasping from depth: labelling throughput, rectangle accuracy and closed-loop simulated grasp
success of a GG-CNN2 trained on simulation only, beside a random and a centroid baseline, on
objects it never saw.

Data (simdata, 640x480 PrimeSense intrinsics (--resolution), cameras 0.45-0.75 m away, the primesense sensor
model on depth, 3-6 objects dropped within 15 cm of each other; training views 65-90 deg above
the table, test views 80-90 deg, a camera looking down on the workspace as GG-CNN's):
- train: the bundled proxies (assets/ycb), labelled by `simdata grasps` (antipodal candidates
  tried in pybullet: collision check, approach, close, lift, shake);
- test: held-out objects: the real YCB geometry of ../shared/ycb (when present; else the
  proxies of assets/ycb with another seed, which is then no held-out test and says so),
  labelled the same way for the rectangle metric.
Net: `adapt train grasp-source-only --channels height` (height above the table plane, GG-CNN2).
Closed loop (adapt.grasping.evaluate_grasping): on every test image the net's best grasp, a
random grasp on an object mask and a centroid grasp across a mask's narrow side are executed
in that scene in pybullet from the sensor-noised depth alone (approach along the optical axis,
depth and go / no-go from the depth-image check of simdata.grasping.depth_check, and no go
where the fingertips would stop above the object's outline; the net tries its 100 best grasps
in order until one passes, then, if none does, the same tilted by 15-30 deg,
checked on the point cloud, simdata.grasping.cloud_check); success = an object lifted 12 cm
and held through a shake (`--shake`: as hard as a Franka arm's Cartesian limits allow by
default; pybullet's solver at `--solver-iterations`; see benchmarks/grasp_physics.py); 95 %
Wilson intervals. Ablations on the same net and views (`--ablations`): grasps
not centred on their object, not refined, not tilted, not refused where the fingertips would
stop above the object's outline (adapt.grasp_decode.pads_reach_silhouette).
With ``--shapes N`` the training meshes are the proxies and N random shapes (simdata shapes).
With ``--seeds 0,1,2`` the same net is trained with each seed (the first is the main row) and
the seeds' ensemble (adapt ensemble) is executed too: nets of one recipe differ by several
points of success.
Labels simulate only the candidates some view's maps could show (`--label-trials mapped`,
simdata grasps --trials mapped: the same maps from some two in five of the trials).
Saves benchmarks/results/grasp_<device>.json. CPU default: 29 minutes on an idle 2-core machine
from nothing (benchmarks/results/grasp_default_cpu.json: render 1.6, labels 13.2, training 11.6,
closed loop 2.4; every trial simulated, the labels took 34.5), 29.4 on the slower machine of
2026-11-28 (grasp_settled_parts_cpu.json: render 1.9, labels 12.0, training 12.1, closed loop
3.4); `--ablations` adds about 9, each further seed about 14.

    python benchmarks/grasp.py [--train-scenes 120] [--test-scenes 50] [--candidates 48] [--steps 4000]
                               [--shapes 0] [--seeds 0] [--robustness 0] [--shake arm]
                               [--solver-iterations 100] [--label-trials mapped] [--ablations] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from results_io import save_results  # noqa: E402 (benchmarks/, the script's folder)
SHARED = REPO.parent / "shared"


def render(meshes: str, out: Path, scenes: int, seed: int, elevation: tuple[float, float],
           resolution: tuple[int, int]) -> dict:
    from simdata.pipeline import RenderConfig, render_dataset
    from simdata.randomize import RandomizationConfig
    from simdata.sampling import SceneConfig
    from simdata.types import PRIMESENSE

    cfg = RenderConfig(meshes=meshes, out=str(out), scenes=scenes, seed=seed, sensor="primesense",
                       randomize=RandomizationConfig(), workers=2,
                       scene=SceneConfig(views=4, objects=(3, 6), distance=(0.45, 0.75),
                                         elevation_deg=elevation,
                                         intrinsics=PRIMESENSE.resized(*resolution)))
    t = time.perf_counter()
    s = render_dataset(cfg, progress=False)
    return {"path": str(out), "meshes": meshes, "scenes": scenes, "images": s.images, "seed": seed,
            "elevation_deg": list(elevation),
            "render_s": round(time.perf_counter() - t, 1)}


def training_meshes(tmp: Path, shapes: int) -> str:
    """The training meshes: the proxies of assets/ycb, and with ``shapes`` > 0 as many random
    shapes beside them (simdata shapes)."""
    proxies = str(REPO / "assets" / "ycb")
    if shapes <= 0:
        return proxies
    from simdata.shapes import ShapeConfig, write_shapes

    write_shapes(tmp / "shapes", ShapeConfig(count=shapes, seed=0))
    return f"{proxies},{tmp / 'shapes'}"


def label(root: Path, candidates: int, workers: int, robustness: int = 0, trials: str = "mapped",
          **physics) -> dict:
    """simdata grasps on ``root``; ``trials``: which candidates are simulated (simdata grasps
    --trials); ``physics``: the trials' shake and solver_iterations."""
    from simdata.grasping.labels import GraspLabelConfig, label_dataset

    t = time.perf_counter()
    cfg = GraspLabelConfig(candidates=candidates, robustness=robustness, trials=trials, **physics)
    tot = label_dataset(root, cfg, workers=workers, progress=False)
    dt = time.perf_counter() - t
    return {**tot, "label_s": round(dt, 1), "candidates_per_s": round(tot["trials"] / dt, 2),
            "candidates_per_s_per_worker": round(tot["trials"] / dt / workers, 2)}


def kept_figures(folder: Path, key: str, fresh: dict, reused: bool) -> dict:
    """The figures of one part of the run (``key``: data, a training run), remembered in
    ``folder``/figures.json: with ``--keep``, a part made by an earlier run is reused and does
    nothing now (0 images, 0 steps), so its figures are the ones measured when it was made."""
    path = folder / "figures.json"
    store = json.loads(path.read_text()) if path.is_file() else {}
    if reused:
        return {**store[key], **({"path": fresh["path"]} if "path" in fresh else {}),
                "reused": True} if key in store else fresh
    store[key] = fresh
    save_results(path, store)
    return fresh


def main():
    from simdata.grasping.execute import SHAKES
    from simdata.grasping.labels import GraspLabelConfig

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-scenes", type=int, default=120, help="training scenes (4 views each)")
    ap.add_argument("--test-scenes", type=int, default=50, help="test scenes (4 views each)")
    ap.add_argument("--candidates", type=int, default=48, help="grasps tried per object and scene")
    ap.add_argument("--steps", type=int, default=4000, help="training steps")
    ap.add_argument("--shapes", type=int, default=0,
                    help="train on the proxies plus this many random shapes (simdata shapes: boxes, "
                         "cylinders, capsules, ellipsoids of 2-16 cm)")
    ap.add_argument("--shake", default=GraspLabelConfig.shake, choices=SHAKES,
                    help="the grasp trials' shake after the lift, in labels and closed loop alike "
                         "(simdata grasps --shake; sine: the figures before 2026-11-27)")
    ap.add_argument("--solver-iterations", type=int, default=GraspLabelConfig.solver_iterations,
                    help="pybullet's solver iterations per step of a grasp trial, in labels and closed "
                         "loop alike (simdata grasps --solver-iterations; 20 before 2026-11-27)")
    ap.add_argument("--robustness", type=int, default=0,
                    help="training labels: each successful grasp tried again this many times, "
                         "perturbed; the maps' quality is the share that held (simdata grasps "
                         "--robustness; the test labels, truths only, stay plain)")
    ap.add_argument("--label-trials", default="mapped", choices=["all", "mapped"],
                    help="simdata grasps --trials: simulate only the candidates some view's maps "
                         "could show (mapped: the same maps, some two in five of the trials), or all "
                         "(the figures before 2026-11-28; a --keep folder labelled then needs it)")
    ap.add_argument("--trials", type=int, default=200, help="closed-loop trials per policy")
    ap.add_argument("--workers", type=int, default=2, help="labelling processes")
    ap.add_argument("--resolution", default="640x480",
                    help="camera resolution WxH (the PrimeSense's own; the depth check needs its "
                         "pixels: at 320x240 one is 2.6 mm at 0.7 m, as much as a finger's clearance)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--seeds", default="0",
                    help="training seeds, comma-separated: one net per seed (the first is the main "
                         "row, with the baselines) and, with several, their ensemble (adapt ensemble: "
                         "the maps averaged); 0,1,2 adds about 25 minutes on 2 cores")
    ap.add_argument("--ablations", action="store_true",
                    help="also execute the main net's grasps without centring, without refinement, "
                         "without tilted approaches and without the check that the fingertips "
                         "reach the object's outline (about 9 minutes more on 2 cores)")
    ap.add_argument("--keep", default="", help="keep the data and the runs in this folder (a rerun "
                    "with the same folder reuses what is finished, and reports the figures measured when it was "
                    "made, marked reused)")
    ap.add_argument("--out", default="", help="JSON path [benchmarks/results/grasp_<device>.json]")
    args = ap.parse_args()

    import torch

    from adapt.config import TrainConfig
    from adapt.methods.baselines import GraspSourceOnlyConfig
    from adapt.tasks.grasp import GraspConfig
    from adapt.trainer import Trainer, load_run, resolve_device

    device = resolve_device(args.device)
    try:
        seeds = [int(v) for v in args.seeds.split(",")]
    except ValueError:
        ap.error(f"--seeds {args.seeds}: give comma-separated integers, e.g. 0,1,2")
    resolution = tuple(int(v) for v in args.resolution.lower().split("x"))
    held_out = (SHARED / "ycb").is_dir()
    test_meshes = str(SHARED / "ycb") if held_out else str(REPO / "assets" / "ycb")
    out = Path(args.out or REPO / "benchmarks" / "results" / f"grasp_{device.type}.json")
    results = {"benchmark": "grasp", "date": time.strftime("%Y-%m-%d"),
               "device": torch.cuda.get_device_name() if device.type == "cuda" else
               f"cpu ({torch.get_num_threads()} threads)",
               "held_out_objects": held_out,
               "config": {"train_scenes": args.train_scenes, "test_scenes": args.test_scenes,
                          "candidates": args.candidates, "steps": args.steps, "trials": args.trials,
                          "shapes": args.shapes, "robustness": args.robustness, "shake": args.shake,
                          "solver_iterations": args.solver_iterations,
                          "label_trials": args.label_trials, "ablations": args.ablations,
                          "resolution": list(resolution),
                          "channels": "height", "height": 240, "crop": 128, "batch": 8, "seeds": seeds},
               "partial": True}
    t_start = time.perf_counter()

    def save():
        save_results(out, results, t_start)

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(args.keep) if args.keep else Path(tmpdir)
        tmp.mkdir(parents=True, exist_ok=True)
        train = render(training_meshes(tmp, args.shapes), tmp / "train", args.train_scenes, 0, (65.0, 90.0),
                       resolution)
        physics = {"shake": args.shake, "solver_iterations": args.solver_iterations}
        train.update(label(tmp / "train", args.candidates, args.workers, args.robustness, args.label_trials,
                           **physics))
        test = render(test_meshes, tmp / "test", args.test_scenes, 1, (80.0, 90.0), resolution)
        test.update(label(tmp / "test", args.candidates, args.workers, trials=args.label_trials, **physics))
        train, test = (kept_figures(tmp, f"data_{name}", d, reused=d["images"] == 0 and d["trials"] == 0)
                       for name, d in (("train", train), ("test", test)))
        results["data"] = {"train": train, "test": test}
        print(f"data: train {train['images']} images ({train['successes']} successful grasps of "
              f"{train['trials']} tried, {train['candidates_per_s']} candidates/s), test "
              f"{test['images']} images", flush=True)
        save()

        def train_net(seed: int, run: Path) -> dict:
            cfg = TrainConfig(method="grasp-source-only", task="grasp", source=train["path"],
                              out=str(run), steps=args.steps, batch=8, channels="height", height=240,
                              crop=128, device=str(device), log_every=100, sample_every=args.steps,
                              ckpt_every=args.steps, seed=seed)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            res = Trainer(cfg, GraspSourceOnlyConfig(), resume=(run / "checkpoints" / "last.pt").exists(),
                          task_cfg=GraspConfig(sim_trials=args.trials)).fit(progress=False)
            return {"steps": res["steps"], "steps_per_s": res["steps_per_s"], "last": res["last"],
                    "peak_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20) if device.type == "cuda"
                    else round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}

        def open_run(run: Path):
            method, conf = load_run(run, str(device))
            method.task.cfg.sim_trials = args.trials
            return method, method.task.open_domain(TrainConfig(**conf["train"]), test["path"], stream=99)

        runs = {seed: tmp / ("run" if k == 0 else f"run_seed{seed}") for k, seed in enumerate(seeds)}
        fresh = train_net(seeds[0], runs[seeds[0]])
        results["train"] = kept_figures(tmp, f"train_seed{seeds[0]}", fresh, reused=not fresh["last"])
        save()

        method, domain = open_run(runs[seeds[0]])
        t = time.perf_counter()
        ev = method.task.evaluate(method.task_net, domain, method.data, method.device)
        results["eval"] = {k: v for k, v in ev.items() if k != "per_image"}
        results["eval"]["seconds"] = round(time.perf_counter() - t, 1)
        sim = ev.get("simulated", {})
        if sim:
            results["net_minus_centroid_points"] = round(
                100 * (sim["net"]["success_rate"] - sim["centroid"]["success_rate"]), 1)
        print(method.task.summary(ev), flush=True)
        save()
        from adapt.grasping import evaluate_grasping

        if args.ablations:
            # ablation: the net's grasps executed where it put them, without centre_on_object
            plain = evaluate_grasping(method.task_net, domain, method.device, trials=args.trials,
                                      recentre=False, policies=("net",))["simulated"]["net"]
            results["eval"]["net_without_recentring"] = plain
            print(f"net without re-centring: {plain['success_rate']:.1%} {plain['ci95']}", flush=True)
            # ablation: the net's grasps as it put them, without refine_grasp's turn and shift
            plain = evaluate_grasping(method.task_net, domain, method.device, trials=args.trials,
                                      refine=False)["simulated"]
            results["eval"]["without_refinement"] = plain
            print("without refinement: " + ", ".join(f"{k} {v['success_rate']:.1%}" for k, v in plain.items()),
                  flush=True)
            # ablation: no tilted approaches where none along the optical axis passes the check
            plain = evaluate_grasping(method.task_net, domain, method.device, trials=args.trials, tilts=(),
                                      policies=("net", "centroid"))["simulated"]
            results["eval"]["without_tilts"] = plain
            print("without tilted approaches: " + ", ".join(f"{k} {v['success_rate']:.1%}" for k, v in plain.items()),
                  flush=True)
            # ablation: grasps whose fingertips stop above their object's outline executed too
            plain = evaluate_grasping(method.task_net, domain, method.device, trials=args.trials,
                                      silhouette=False)["simulated"]
            results["eval"]["without_outline_check"] = plain
            print("without the outline check: " + ", ".join(f"{k} {v['success_rate']:.1%}"
                                                              for k, v in plain.items()), flush=True)
            save()

        if len(seeds) > 1:  # the same recipe with other seeds, and their ensemble
            from adapt.ensemble import build_ensemble

            def net_only(run: Path) -> dict:
                method, domain = open_run(run)
                ev = evaluate_grasping(method.task_net, domain, method.device, trials=args.trials,
                                       policies=("net",))
                row = {"rectangle_accuracy": ev["rectangle_accuracy"], **ev["simulated"]["net"]}
                if args.ablations:
                    row["without_refinement"] = evaluate_grasping(
                        method.task_net, domain, method.device, trials=args.trials, policies=("net",),
                        refine=False)["simulated"]["net"]
                return row

            results["seeds"] = {str(seeds[0]): {"rectangle_accuracy": results["eval"]["rectangle_accuracy"],
                                                **sim.get("net", {})}}
            if args.ablations:
                results["seeds"][str(seeds[0])]["without_refinement"] = results["eval"]["without_refinement"]["net"]
            for seed in seeds[1:]:
                train_net(seed, runs[seed])
                results["seeds"][str(seed)] = net_only(runs[seed])
                print(f"seed {seed}: net {results['seeds'][str(seed)]['success_rate']:.1%}", flush=True)
                save()
            ensemble = tmp / "run_ensemble"
            if not ensemble.exists():
                build_ensemble([runs[s] for s in seeds], ensemble)
            results["ensemble"] = net_only(ensemble)
            print(f"ensemble of seeds {args.seeds}: net {results['ensemble']['success_rate']:.1%} "
                  f"{results['ensemble']['ci95']}", flush=True)
            save()
    del results["partial"]
    save()
    print(f"saved {out} ({results['seconds']} s)")


if __name__ == "__main__":
    main()
