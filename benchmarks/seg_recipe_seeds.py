"""How reliable is the recommended segmentation recipe on real frames? Renders, training seeds
and their ensembles, scored on a labelled real folder.

For every render seed R (``--renders``): ``simdata render`` of ``--meshes`` with the recipe's
settings (``--scenes`` scenes, 4 views, 320x240, cameras 55-90 deg above the table,
``--randomize all --sensor primesense``); for every training seed T (``--train-seeds``):
``adapt train seg-source-only --objectness --channels height`` (``--steps``), ``adapt eval``
on ``--test``; then ``adapt ensemble`` of the render's runs and its ``adapt eval``. Prints and
saves object IoU and mIoU per run and per ensemble, with the spread over renders.

    .venv/bin/python benchmarks/seg_recipe_seeds.py                      # about 90 minutes on 2 cores
    .venv/bin/python benchmarks/seg_recipe_seeds.py --renders 1 --train-seeds 0 1 --scenes 4 --steps 50  # smoke
    .venv/bin/python benchmarks/seg_recipe_seeds.py --renders 3 --train-seeds 0 1 2 3 4 5 --ema 0.999 \
        --out benchmarks/results/seg_ema_cpu.json   # the weight average against the last step's weights
    .venv/bin/python benchmarks/seg_recipe_seeds.py --renders 3 1 4 --flips h \
        --out benchmarks/results/seg_flips_cpu.json  # and with test-time mirror images
    .venv/bin/python benchmarks/seg_recipe_seeds.py --renders 3 1 4 --hflip --flips h \
        --work data/bench_seg_flips --out benchmarks/results/seg_hflip_cpu.json  # mirrored training crops

    .venv/bin/python benchmarks/seg_recipe_seeds.py --renders 0 3 --hflip --bin-test \
        --out benchmarks/results/seg_bins_cpu.json   # the recipe's renders (objects in bins in some)
    .venv/bin/python benchmarks/seg_recipe_seeds.py --renders 0 3 --hflip --bin-test \
        --randomize materials,lights,backgrounds,distractors,clutter,camera \
        --out benchmarks/results/seg_no_bins_cpu.json   # the same scenes without the bins

With ``--randomize`` the renders switch on other randomizers than the recipe's ``all`` (renders
and runs are then kept apart). With ``--bin-test`` every run and ensemble is also scored on a
held-out synthetic split whose objects all stand in bins (50 scenes of 2 views, render seed
1000, ``--randomize all --bins 1``), rendered once under ``--work``.
With ``--flips h|hv`` every run and ensemble is also scored through ``adapt ensemble --flips``.
With ``--hflip`` the runs train on crops mirrored at random (``adapt train --hflip``).
With ``--ema DECAY`` the runs keep an average of their weights (``adapt train --ema``); each run
and each ensemble is then scored twice, with the average (what the run deploys) and with the
last step's weights (a copy of the run without the average: the same training, since the
average never feeds back into it).

Everything is kept under ``--work`` and reused: a rerun resumes where it stopped.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import save_results  # noqa: E402 (benchmarks/, the script's folder)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RENDER = ["--views", "4", "--width", "320", "--height", "240", "--elevation", "55:90",
          "--sensor", "primesense", "--no-progress",
          "--workers", str(os.cpu_count() or 1)]  # byte-identical whatever the count
BIN_TEST = ["--scenes", "50", "--views", "2", "--seed", "1000", "--randomize", "all", "--bins", "1"]
TRAIN = ["--objectness", "--channels", "height", "--height", "120", "--crop", "96", "--batch", "4",
         "--task-width", "16", "--no-progress"]


def run(*cmd) -> str:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYOPENGL_PLATFORM": os.environ.get("PYOPENGL_PLATFORM", "egl")})
    if r.returncode:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{r.stderr.strip()[-2000:]}")
    return r.stdout


def score(run_dir: Path, test: str) -> dict:
    e = json.loads(run(BIN / "adapt", "eval", run_dir, "--data", test))
    return {"object_iou": e["per_class_iou"]["object"], "miou": e["miou"]}


def ensemble(members: list[Path], out: Path, flips: str = "none") -> Path:
    """``adapt ensemble MEMBERS --out OUT [--flips]``, kept when OUT exists."""
    if not (out / "checkpoints/last.pt").is_file():
        run(BIN / "adapt", "ensemble", *members, "--out", out, "--flips", flips)
    return out


def last_step_copy(run_dir: Path) -> Path:
    """A run folder beside ``run_dir`` holding its last checkpoint without the weight average
    (adapt train --ema), so eval and ensemble use the last step's weights."""
    import torch

    from adapt.ema import EMA_NET
    from adapt.trainer import save_atomic

    out = run_dir.with_name(run_dir.name + "_last_step")
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    state = torch.load(run_dir / "checkpoints/last.pt", map_location="cpu", weights_only=False)
    state["method"]["nets"].pop(EMA_NET, None)
    save_atomic(state, out / "checkpoints/last.pt")  # a killed rerun never leaves half a file
    return out


def spread(values: list[float]) -> dict:
    return {"mean": round(statistics.mean(values), 4), "min": min(values), "max": max(values),
            "at_least_0.5": sum(v >= 0.5 for v in values), "n": len(values)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meshes", default="../shared/ycb", help="meshes folder")
    ap.add_argument("--test", default="../shared/real/tabletop_dev", help="labelled real folder")
    ap.add_argument("--renders", type=int, nargs="+", default=[1, 3, 4, 5], help="render seeds")
    ap.add_argument("--train-seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (ensembled)")
    ap.add_argument("--scenes", type=int, default=200, help="scenes per render (4 views each)")
    ap.add_argument("--steps", type=int, default=6000, help="training steps per run")
    ap.add_argument("--work", default="data/bench_seg_seeds", help="renders and runs, kept and reused")
    ap.add_argument("--ema", type=float, default=0.0,
                    help="train with adapt train --ema DECAY and score the last step's weights too")
    ap.add_argument("--hflip", action="store_true",
                    help="train with adapt train --hflip (half the training crops mirrored); runs "
                         "are kept apart from those without it")
    ap.add_argument("--flips", default="", choices=["", "h", "hv"],
                    help="also score every run and ensemble with adapt ensemble --flips (test-time "
                         "mirror images)")
    ap.add_argument("--randomize", default="all",
                    help="simdata render --randomize of the renders (the recipe's: all)")
    ap.add_argument("--bin-test", action="store_true",
                    help="also score on a held-out synthetic split with every scene's objects in a bin")
    ap.add_argument("--out", default="benchmarks/results/seg_recipe_seeds_bench_cpu.json")
    args = ap.parse_args()
    for path in (args.meshes, args.test):
        if not (ROOT / path).is_dir():
            sys.exit(f"{path} is not a folder; pass --meshes / --test")
    t0 = time.perf_counter()
    work = ROOT / args.work
    results = {"benchmark": "segmentation recipe over renders and training seeds", "date": time.strftime("%Y-%m-%d"),
               "device": f"cpu ({os.cpu_count()} cores)",
               "render": f"simdata render --meshes {args.meshes} --scenes {args.scenes} {' '.join(RENDER)} "
                         f"--randomize {args.randomize} --seed R",
               "train": f"adapt train seg-source-only {' '.join(TRAIN)} --steps {args.steps} --seed T"
                        + (f" --ema {args.ema}" if args.ema else "") + (" --hflip" if args.hflip else ""),
               "test": args.test, "renders": {}}

    def render(out: Path, *how) -> Path:
        """simdata render into ``out`` unless a finished render is there (resumes a partial one)."""
        partial = out.with_name(f".{out.name}.partial")
        if not (out / "train_pbr").is_dir() or partial.exists():
            partial.parent.mkdir(parents=True, exist_ok=True)
            partial.touch()
            run(BIN / "simdata", "render", "--meshes", args.meshes, "--out", out, *how)
            partial.unlink()
        return out

    tests = {"real": args.test}
    if args.bin_test:
        tests["bins"] = str(render(work / "test_bins", *RENDER, *BIN_TEST))
        results["bin_test"] = f"simdata render --meshes {args.meshes} {' '.join(RENDER + BIN_TEST)}"

    def scores(run_dir: Path) -> dict:
        """The real test's figures, and each other test's under its name."""
        out = score(run_dir, tests["real"])
        for name, folder in tests.items():
            if name != "real":
                out[f"{name}_test"] = score(run_dir, folder)
        return out

    # the recipe's renders keep their old folder names; other randomizers get their own
    rtag = "" if args.randomize == "all" else "_" + args.randomize.replace(",", "-")
    for r in args.renders:
        syn = render(work / f"render{r}{rtag}", "--scenes", args.scenes, "--seed", r,
                     "--randomize", args.randomize, *RENDER)
        runs, last, row = [], [], {"runs": {}}
        tag = rtag + (f"_ema{args.ema:g}" if args.ema else "") + ("_hflip" if args.hflip else "")
        for t in args.train_seeds:
            d = work / f"render{r}_seed{t}{tag}"
            resume = ["--resume"] if (d / "checkpoints/last.pt").is_file() else []
            run(BIN / "adapt", "train", "seg-source-only", "--source", syn, "--out", d, "--seed", t,
                "--steps", args.steps, *TRAIN, *(["--ema", args.ema] if args.ema else []),
                *(["--hflip"] if args.hflip else []), *resume)
            row["runs"][t] = scores(d)
            runs.append(d)
            if args.ema:
                last.append(last_step_copy(d))
                row["runs"][t]["last_step_weights"] = scores(last[-1])
            if args.flips:
                row["runs"][t][f"flips_{args.flips}"] = scores(
                    ensemble([d], d.with_name(d.name + f"_flips_{args.flips}"), args.flips))
            print(f"render {r} training seed {t}: {row['runs'][t]}", flush=True)
        if len(runs) > 1:
            for key, members in (("ensemble", runs), ("ensemble_last_step_weights", last)):
                if not members:
                    continue
                row[key] = scores(ensemble(members, work / f"render{r}_{key}{tag}"))
                if args.flips:
                    row[f"{key}_flips_{args.flips}"] = scores(ensemble(
                        members, work / f"render{r}_{key}{tag}_flips_{args.flips}", args.flips))
                print(f"render {r} {key} of {len(members)}: {row[key]}", flush=True)
        results["renders"][r] = row
        save_results(ROOT / args.out, results, t0)  # after every render: a killed run keeps its rows
    singles = [v["object_iou"] for row in results["renders"].values() for v in row["runs"].values()]
    results["single_runs"] = spread(singles)
    if args.ema:
        results["single_runs_last_step_weights"] = spread(
            [v["last_step_weights"]["object_iou"] for row in results["renders"].values()
             for v in row["runs"].values()])
    if args.flips:
        key = f"flips_{args.flips}"
        results[f"single_runs_{key}"] = spread([v[key]["object_iou"] for row in results["renders"].values()
                                                for v in row["runs"].values()])
        if all(f"ensemble_{key}" in row for row in results["renders"].values()):
            results[f"ensembles_{key}"] = spread([row[f"ensemble_{key}"]["object_iou"]
                                                  for row in results["renders"].values()])
    if all("ensemble" in row for row in results["renders"].values()):
        results["ensembles"] = spread([row["ensemble"]["object_iou"] for row in results["renders"].values()])
    if args.bin_test:
        results["single_runs_bin_test"] = spread([v["bins_test"]["object_iou"] for row in results["renders"].values()
                                                  for v in row["runs"].values()])
        if all("ensemble" in row for row in results["renders"].values()):
            results["ensembles_bin_test"] = spread([row["ensemble"]["bins_test"]["object_iou"]
                                                    for row in results["renders"].values()])
    save_results(ROOT / args.out, results, t0)
    print(json.dumps({k: v for k, v in results.items() if k.startswith(("single_runs", "ensembles"))}))


if __name__ == "__main__":
    main()
