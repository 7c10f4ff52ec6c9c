#!/usr/bin/env python3
"""SPIGAN on the height above the table, started from the segmentation recipe's source-only net
(`adapt train spigan --channels height --init-task RUN`), scored on the labelled real frames of
../shared/real/tabletop_dev beside that net and beside the same net trained on for as many
steps at SPIGAN's learning rate (the fair baseline: as many updates, no target).

Data: one render of the recipe (examples/spigan_ycbv.sh): ../shared/ycb, 200 scenes x 4 views,
320x240, cameras 55-90 deg above the table, `--randomize all --sensor primesense`, `--seed 1`
(or `--render DIR`, a folder rendered so). Per training seed:
1. source-only: `adapt train seg-source-only --objectness --channels height --height 120
   --crop 96 --batch 4 --task-width 16 --hflip --steps 6000` (the recipe's single net);
2. continued: that net, `--gan-steps` more steps at lr 2e-4 (`--init-task`);
3. SPIGAN from that net (`--init-task`), `--gan-steps` steps, no perceptual loss (delta 0: VGG
   features of a height map mean nothing), CPU net sizes, adapted to each unlabelled real
   target of `--targets`: `tabletop` (the 10 frames of tabletop_dev themselves, unlabelled:
   transductive, as a user adapts to their own camera's frames), `tabletop-2fold` (the same
   camera without scoring a frame the run adapted to: the frames split by name into two halves,
   one run adapted to each half's frames, unlabelled, and scored on the other half; the two
   halves' pixel counts pooled into the 10 frames' figures) and `ycbv` (the YCB-Video frames of
   ../shared/real/ycbv_demo: another camera and scene). `--perceptual task` gives it
   the perceptual loss on the features of the source-only net it starts from (frozen; delta
   0.33, `adapt train spigan --perceptual task`), which a height map has meaning for.
   `--d-augment translation,cutout` runs it with DiffAugment (`adapt train spigan --d-augment`):
   D sees the real and the adapted heights through the same random shifts and cut-outs.
Each row: object IoU, mIoU, per-image IoU and negative transfer (the share of frames whose IoU
falls) against the source-only net and against the continued one. With two seeds or more, the
same rows for the nets of each row averaged over the seeds (`adapt ensemble`, what the recipe
deploys; "ensembles"). Saves benchmarks/results/spigan_init_height_cpu.json after every seed.
About 6 minutes per seed on 2 cores (CPU only: the nets are small). `--keep DIR` keeps the runs
in DIR and reuses those a previous call finished there (DIR/<run>.json beside each).

    python benchmarks/spigan_init_height.py [--seeds 0,1,2] [--render DIR]
        [--targets tabletop,tabletop-2fold,ycbv]
        [--perceptual task] [--d-augment translation,cutout] [--keep DIR]
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
from adapt_spigan import render, score_run, train_run  # noqa: E402 (benchmarks/, the script's folder)
from results_io import save_results  # noqa: E402
SHARED = REPO.parent / "shared"
TABLETOP = SHARED / "real" / "tabletop_dev"
TARGETS = {"tabletop": TABLETOP, "tabletop-2fold": TABLETOP, "ycbv": SHARED / "real" / "ycbv_demo"}
FOLDS = 2
CHANNELS = "height"
SIZE = dict(height=120, crop=96, batch=4)
NETS = dict(gen_filters=16, gen_blocks=4, disc_filters=32, task_width=16, delta=0.0)
VGG = "random"  # unused with delta 0, but SPIGAN's config asks for a source


def train(out: Path, method: str, source: str, target: str, steps: int, seed: int,
          init: str = "", flags: dict | None = None) -> dict:
    """One run of the study (adapt_spigan.train_run with the recipe's sizes, --hflip and a
    checkpoint every 200 steps, SPIGAN's early stop keeping the last before its signal)."""
    import torch

    t = time.perf_counter()
    res = train_run(out, method, source, target, CHANNELS, steps, torch.device("cpu"),
                    {**SIZE, "seed": seed}, NETS, VGG, flags, init_task=init, hflip=True,
                    ckpt_every=200)
    return {"steps": res["steps"], "early_stop": res["early_stop"],
            "seconds": round(time.perf_counter() - t, 1)}


def tabletop_folds(work: Path) -> list[tuple[Path, Path]]:
    """(target, test) folders for each of FOLDS parts of tabletop_dev's frames (split in name
    order): ``test`` holds the part's frames with their labels, ``target`` every other frame,
    unlabelled (image, depth and intrinsics only)."""
    import shutil

    frames = sorted(p.stem for p in TABLETOP.glob("frame_??.png"))
    parts = [frames[i * len(frames) // FOLDS:(i + 1) * len(frames) // FOLDS] for i in range(FOLDS)]
    folds = []
    for i, part in enumerate(parts):
        target, test = work / f"tabletop_fold{i}_target", work / f"tabletop_fold{i}_test"
        for folder, names, labelled in ((target, [f for f in frames if f not in part], False),
                                        (test, part, True)):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            for extra in ("meta.yml", "classes.json") if labelled else ("meta.yml",):
                shutil.copy(TABLETOP / extra, folder)
            for f in names:
                for name in (f"{f}.png", f"depth_{f}.npy") + ((f"{f}_labels.png",) if labelled else ()):
                    shutil.copy(TABLETOP / name, folder)
        folds.append((target, test))
    return folds


def score_folds(runs: list[Path], folds: list[tuple[Path, Path]]) -> dict:
    """Each fold's run scored on its own test part, pooled: the figures of the whole test set
    (per-image IoUs in frame order) and each part's object IoU."""
    import numpy as np
    import torch

    from adapt.evaluate import scores_from_confusion
    from adapt.scenes import OBJECTNESS

    parts = [score_run(run, str(test), torch.device("cpu"), confusion=True)
             for run, (_, test) in zip(runs, folds)]
    pooled = scores_from_confusion(np.sum([p["confusion"] for p in parts], axis=0), OBJECTNESS)
    return {"object_iou": pooled["per_class_iou"]["object"], "miou": pooled["miou"],
            "per_image_iou": [v for p in parts for v in p["per_image_iou"]],
            "fold_object_iou": [p["object_iou"] for p in parts]}


def compare(rows: dict, name: str) -> None:
    """Add to each row its negative transfer against the source-only and continued rows (the
    continued row only against source-only), and print the rows."""
    from adapt.evaluate import negative_transfer

    for label, row in rows.items():
        for base in ("source-only", "continued")[:1 if label == "continued" else 2]:
            if label != "source-only":
                row[f"negative_transfer_vs_{base.replace('-', '_')}"] = negative_transfer(
                    row["per_image_iou"], rows[base]["per_image_iou"])
        print(f"{name} {label:<38} object IoU {row['object_iou']:.3f} mIoU {row['miou']:.3f} "
              f"NT vs source-only {row.get('negative_transfer_vs_source_only', '-')}, "
              f"vs continued {row.get('negative_transfer_vs_continued', '-')}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2", help="training seeds, comma list")
    ap.add_argument("--steps", type=int, default=6000, help="source-only steps (the recipe's)")
    ap.add_argument("--gan-steps", type=int, default=600, help="steps of SPIGAN and of the continued net")
    ap.add_argument("--scenes", type=int, default=200, help="scenes rendered when --render is not given")
    ap.add_argument("--render", default="", help="a recipe render to train on [rendered here]")
    ap.add_argument("--targets", default="tabletop,ycbv", help=f"SPIGAN's unlabelled real targets, "
                    f"comma list of {', '.join(TARGETS)}")
    ap.add_argument("--perceptual", choices=("none", "task"), default="none",
                    help="SPIGAN's perceptual loss: none (delta 0) or task (the starting net's "
                    "features, delta 0.33) [none]")
    ap.add_argument("--d-augment", default="", help="SPIGAN's DiffAugment policy (adapt train spigan "
                    "--d-augment), e.g. translation,cutout [none]")
    ap.add_argument("--keep", default="", help="keep the runs in this folder, and reuse the ones a "
                    "previous call finished there [a temporary folder]")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "spigan_init_height_cpu.json"))
    args = ap.parse_args()
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if any(t not in TARGETS for t in targets):
        raise SystemExit(f"--targets {args.targets}: choose from {', '.join(TARGETS)}")
    if not TABLETOP.is_dir() or not (SHARED / "ycb").is_dir():
        raise SystemExit(f"needs {TABLETOP} and {SHARED / 'ycb'} (../shared)")

    import torch

    from adapt.ensemble import build_ensemble
    from adapt.methods.spigan import SpiganConfig

    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    results = {"benchmark": "spigan_init_height", "date": time.strftime("%Y-%m-%d"),
               "device": f"cpu ({torch.get_num_threads()} threads)",
               "config": {**SIZE, "channels": CHANNELS, "nets": NETS, "vgg_weights": VGG, "steps": args.steps, "gan_steps": args.gan_steps,
                          "continued_lr": SpiganConfig().lr, "perceptual": args.perceptual,
                          "d_augment": args.d_augment, "objectness": True, "hflip": True,
                          "targets": targets, "render": args.render or
                          f"{args.scenes} scenes, ../shared/ycb, 320x240, elevation 55:90, "
                          f"--randomize all --sensor primesense --seed 1"},
               "test": str(TABLETOP), "seeds": {}}
    spigan_flags = {"perceptual": "task", "delta": SpiganConfig().delta} if args.perceptual == "task" else {}
    tag, suffix = (", task features", "_task_features") if spigan_flags else ("", "")
    if args.d_augment:
        spigan_flags["d_augment"] = args.d_augment
        tag, suffix = f"{tag}, DiffAugment {args.d_augment}", f"{suffix}_da_{args.d_augment.replace(',', '_')}"
    t_start = time.perf_counter()
    all_runs: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        work = Path(args.keep) if args.keep else tmp
        work.mkdir(parents=True, exist_ok=True)

        def trained(run: Path, *a) -> dict:  # train(run, *a), or the row a previous call saved
            done = run.with_name(run.name + ".json")
            if done.is_file():
                return json.loads(done.read_text())
            row = train(run, *a)
            done.write_text(json.dumps(row))
            return row

        folds = tabletop_folds(work / "folds") if "tabletop-2fold" in targets else []
        source = args.render
        if not source:
            t = time.perf_counter()
            render(str(SHARED / "ycb"), tmp / "render", args.scenes, 1, "dr")
            source = str(tmp / "render")
            results["render_seconds"] = round(time.perf_counter() - t, 1)
        for seed in seeds:
            rows = {}
            src = work / f"s{seed}_source_only"
            rows["source-only"] = trained(src, "seg-source-only", source, "", args.steps, seed)
            runs = {"source-only": src, "continued": work / f"s{seed}_continued"}
            rows["continued"] = trained(runs["continued"], "seg-source-only", source, "", args.gan_steps,
                                        seed, str(src), {"lr": SpiganConfig().lr})
            for t in targets:
                label = f"spigan from source-only, target {t}" + tag
                if t == "tabletop-2fold":  # one run per fold, each adapted to the other frames
                    runs[label] = [work / f"s{seed}_spigan_{t}{f}{suffix}" for f in range(FOLDS)]
                    fold_rows = [trained(run, "spigan", source, str(target), args.gan_steps, seed,
                                         str(src), spigan_flags)
                                 for run, (target, _) in zip(runs[label], folds)]
                    rows[label] = {"folds": fold_rows}
                    continue
                runs[label] = run = work / f"s{seed}_spigan_{t}{suffix}"
                rows[label] = trained(run, "spigan", source, str(TARGETS[t]), args.gan_steps, seed,
                                      str(src), spigan_flags)
            for label, run in runs.items():
                rows[label].update(score_folds(run, folds) if isinstance(run, list)
                                   else score_run(run, str(TABLETOP), torch.device("cpu")))
            if folds:  # the pooling is exact: the source-only net scored by halves is the same
                check = score_folds([src] * FOLDS, folds)
                assert check["per_image_iou"] == rows["source-only"]["per_image_iou"], "fold order"
                assert abs(check["object_iou"] - rows["source-only"]["object_iou"]) < 1e-4, "pooling"
            compare(rows, f"seed {seed}")
            results["seeds"][str(seed)] = rows
            all_runs[seed] = runs
            save_results(Path(args.out), results, t_start)
        if len(seeds) > 1:  # each row's nets averaged over the seeds, as the recipe deploys them
            ens = {}
            for label, first in all_runs[seeds[0]].items():
                if isinstance(first, list):  # per fold: that fold's runs averaged over the seeds
                    outs = []
                    for f in range(FOLDS):
                        outs.append(tmp / f"ensemble_{len(ens)}_fold{f}")
                        build_ensemble([all_runs[s][label][f] for s in seeds], outs[-1])
                    ens[label] = score_folds(outs, folds)
                    continue
                out = tmp / f"ensemble_{len(ens)}"
                build_ensemble([all_runs[s][label] for s in seeds], out)
                ens[label] = score_run(out, str(TABLETOP), torch.device("cpu"))
            compare(ens, "ensemble")
            results["ensembles"] = {"seeds": seeds, "rows": ens}
    labels = list(next(iter(results["seeds"].values())))
    results["mean_object_iou"] = {label: round(sum(r[label]["object_iou"] for r in results["seeds"].values())
                                               / len(results["seeds"]), 4) for label in labels}
    save_results(Path(args.out), results, t_start)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
