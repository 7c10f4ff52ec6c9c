#!/usr/bin/env python3
"""Object / not-object segmentation, the question a robot's camera asks: source-only on clean
renders, source-only on domain-randomized renders (the cheap competitor), SPIGAN and its
ablations; for colour inputs (rgb) and colour plus the height above the table (rgbh, see
adapt.data), scored on data none of them trained on.

Data, rendered by simdata from ../shared/ycb (real YCB geometry; assets/ycb when absent) at
320x240 with PrimeSense intrinsics, cameras 55-90 deg above the table, the primesense sensor
model on every render (a robot's depth is never clean):
- source (clean): original materials, white lights, nothing around the table;
- source (DR): `--randomize all`: materials, lights, backgrounds, distractors, clutter
  (shelves beyond the table, robot links and grippers in view: not objects), camera jitter;
- synthetic target ("real-looking", a documented appearance gap): warm and point lights, photo
  backgrounds (../shared/real/ycbv_demo), half the objects re-materialled; an unlabelled train
  split and a labelled test split (another seed);
- real: ../shared/real/ycbv_demo (RGB-D, unlabelled) is SPIGAN's real target, and
  ../shared/real/tabletop_dev (10 labelled PrimeSense frames) the real test set.

Inputs: rgb, rgbh and height (no SPIGAN rows: its G restyles colour). Rows per input: source-only (clean) and source-only (DR), trained once and scored on both test
sets, and SPIGAN from the DR source, adapted to the real frames (scored on tabletop_dev) and to
the synthetic target (scored on its test split); with --ablations also SPIGAN-no-PI and
SPIGAN-base. Each row: object IoU, mIoU, negative transfer against source-only (DR) on the
same test images (the share of images whose IoU falls), steps/s, peak memory; saved to
benchmarks/results/adapt_spigan_<device>.json after every row. CPU default (2 cores, under 30
minutes): 120 px high images, 96 px crops, small nets, 1500 task-net steps, 600 SPIGAN steps;
`--ablations` (meant for a GPU) adds four SPIGAN runs, `--paper` the paper's sizes.

    python benchmarks/adapt_spigan.py [--steps 1500] [--gan-steps 600] [--ablations] [--paper]
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from results_io import save_results  # noqa: E402 (benchmarks/, the script's folder)
SHARED = REPO.parent / "shared"
YCBV = SHARED / "real" / "ycbv_demo"
TABLETOP = SHARED / "real" / "tabletop_dev"


def render(meshes: str, out: Path, scenes: int, seed: int, look: str) -> dict:
    from simdata.pipeline import RenderConfig, render_dataset
    from simdata.randomize import RandomizationConfig
    from simdata.sampling import SceneConfig
    from simdata.types import PRIMESENSE

    photos = str(YCBV) if YCBV.is_dir() else ""
    dr = {"clean": RandomizationConfig(),
          "dr": RandomizationConfig(materials=True, lights=True, backgrounds=True, distractors=(2, 5),
                                    clutter=(1, 4), camera_jitter_m=0.01, camera_jitter_deg=2.0),
          "real-looking": RandomizationConfig(lights=True, backgrounds=True, background_dir=photos,
                                              materials=True, material_prob=0.5,
                                              light_temperature_k=(2500.0, 4500.0))}[look]
    cfg = RenderConfig(meshes=meshes, out=str(out), scenes=scenes, seed=seed, sensor="primesense",
                       randomize=dr, scene=SceneConfig(views=4, elevation_deg=(55.0, 90.0),
                                                       intrinsics=PRIMESENSE.resized(320, 240)))
    s = render_dataset(cfg, progress=False)
    return {"path": str(out), "images": s.images, "look": look, "seed": seed}


def score_run(run: Path, test: str, device) -> dict:
    """Object IoU, mIoU and per-image IoUs of a segmentation run on a labelled test set."""
    from adapt.config import TrainConfig
    from adapt.evaluate import evaluate
    from adapt.trainer import load_run

    method, conf = load_run(run, str(device))
    domain = method.task.open_domain(TrainConfig(**conf["train"]), test, stream=99)
    ev = evaluate(method, domain)
    return {"object_iou": ev["per_class_iou"]["object"], "miou": ev["miou"],
            "per_image_iou": ev["per_image_iou"]}


def train_run(out: Path, method: str, source: str, target: str, ch: str, steps: int, device,
              size: dict, nets: dict, vgg: str, flags: dict | None = None, task: str = "") -> dict:
    """Train one object / not-object segmentation run into ``out`` (``size``: height, crop and
    batch; ``nets`` and ``flags``: method options, those its Config lacks skipped; ``task``:
    empty = the method's first, ``segmentation`` for methods whose first is another); returns
    steps, early stop, steps/s and peak memory."""
    import torch

    from adapt.config import TrainConfig
    from adapt.methods import METHODS
    from adapt.tasks.segmentation import SegmentationConfig
    from adapt.trainer import Trainer

    cls = METHODS[method]
    known = cls.Config.__dataclass_fields__
    mcfg = cls.Config(**{k: v for k, v in {**nets, **(flags or {}), "vgg_weights": vgg}.items()
                         if k in known})
    cfg = TrainConfig(method=method, task=task, source=source, target=target, out=str(out),
                      steps=steps, device=str(device), channels=ch, log_every=50,
                      sample_every=steps, ckpt_every=steps, **size)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    res = Trainer(cfg, mcfg, task_cfg=SegmentationConfig(objectness=True)).fit(progress=False)
    return {
        "steps": res["steps"], "early_stop": res.get("early_stop"), "steps_per_s": res["steps_per_s"],
        "peak_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20) if device.type == "cuda"
        else round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1500, help="steps of the source-only rows")
    ap.add_argument("--gan-steps", type=int, default=600, help="steps of the SPIGAN rows")
    ap.add_argument("--scenes", type=int, default=40, help="source scenes (4 views each)")
    ap.add_argument("--channels", default="rgb,rgbh,height", help="input sets, comma list "
                    "(SPIGAN rows for those with colour)")
    ap.add_argument("--ablations", action="store_true", help="also SPIGAN-no-PI and SPIGAN-base")
    ap.add_argument("--paper", action="store_true", help="paper sizes (for a GPU)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--vgg-weights", default="", help="auto, a path, or random [auto if found, else random]")
    ap.add_argument("--out", default="", help="JSON path [benchmarks/results/adapt_spigan_<device>.json]")
    args = ap.parse_args()

    import torch

    from adapt.data import CHANNELS
    from adapt.evaluate import negative_transfer
    from adapt.nets.vgg import hub_weights_path
    from adapt.trainer import resolve_device

    device = resolve_device(args.device)
    vgg = args.vgg_weights or ("auto" if hub_weights_path().is_file() else "random")
    if args.paper:
        size, nets = dict(height=240, crop=224, batch=4), {}
    else:
        size = dict(height=120, crop=96, batch=4)
        nets = {"gen_filters": 16, "gen_blocks": 4, "disc_filters": 32, "task_width": 16}
    meshes = str(SHARED / "ycb") if (SHARED / "ycb").is_dir() else str(REPO / "assets" / "ycb")
    channels = [c.strip() for c in args.channels.split(",") if c.strip()]
    out = Path(args.out or REPO / "benchmarks" / "results" / f"adapt_spigan_{device.type}.json")
    results = {"benchmark": "adapt_spigan", "date": time.strftime("%Y-%m-%d"),
               "device": torch.cuda.get_device_name() if device.type == "cuda" else
               f"cpu ({torch.get_num_threads()} threads)", "vgg_weights": vgg, "meshes": meshes,
               "labels": "object / not object (--objectness)",
               "config": {**size, "steps": args.steps, "gan_steps": args.gan_steps,
                          "nets": nets or "paper", "task_net": "fcn"},
               "partial": True, "rows": {}}
    t_start = time.perf_counter()

    def save():
        save_results(out, results, t_start)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        data = {"source": render(meshes, tmp / "source", args.scenes, 0, "clean"),
                "source_dr": render(meshes, tmp / "source_dr", args.scenes, 0, "dr")}
        data["target"] = render(meshes, tmp / "target", max(args.scenes // 3, 4), 1, "real-looking")
        data["test"] = render(meshes, tmp / "test", max(args.scenes // 3, 4), 2, "real-looking")
        # test set name -> (SPIGAN's unlabelled target, labelled test set)
        tests = {"synthetic": (str(Path(data["target"]["path"]) / "train_pbr"), data["test"]["path"])}
        if TABLETOP.is_dir() and YCBV.is_dir():
            tests["tabletop_dev"] = (str(YCBV), str(TABLETOP))
        data["seconds"] = round(time.perf_counter() - t0, 1)
        results["data"] = data
        print(f"data ready in {data['seconds']} s", flush=True)

        def score(run: Path, test: str) -> dict:
            return score_run(run, test, device)

        def train(name, method, source, target, ch, steps, flags=None) -> tuple[Path, dict]:
            return tmp / name, train_run(tmp / name, method, source, target, ch, steps, device, size,
                                         nets, vgg, flags)

        def report(ch, test_name, label, entry):
            rows = results["rows"].setdefault(f"{ch} -> {test_name}", {})
            base = rows.get("source-only (DR)")
            if base:
                entry["negative_transfer_vs_dr"] = negative_transfer(entry["per_image_iou"],
                                                                     base["per_image_iou"])
            rows[label] = entry
            print(f"{ch:>5} -> {test_name:<12} {label:<24} object IoU {entry['object_iou']:.3f}, "
                  f"mIoU {entry['miou']:.3f}, negative transfer {entry.get('negative_transfer_vs_dr', '-')}, "
                  f"{entry['steps_per_s']:.1f} steps/s", flush=True)
            save()

        gans = {"spigan": {}}
        if args.ablations:
            gans.update({"spigan-no-pi": {"no_pi": True}, "spigan-base": {"base": True}})
        for ch in channels:
            # the source-only nets know no target: trained once, scored on every test set
            for label, source in (("source-only (clean)", data["source"]["path"]),
                                  ("source-only (DR)", data["source_dr"]["path"])):
                run, info = train(f"{ch}_{label.split(' ')[1].strip('()')}", "seg-source-only", source,
                                  "", ch, args.steps)
                for test_name, (_, test) in tests.items():
                    report(ch, test_name, label, {**score(run, test), **info})
            for test_name, (target, test) in tests.items():
                if CHANNELS[ch] < 3:  # nothing for SPIGAN's G to restyle
                    continue
                for g, flags in gans.items():  # adapted to each target: scored on its test set
                    run, info = train(f"{ch}_{test_name}_{g}", "spigan", data["source_dr"]["path"],
                                      target, ch, args.gan_steps, flags)
                    report(ch, test_name, f"{g} (DR source)", {**score(run, test), **info})
    del results["partial"]
    save()
    print(f"saved {out} ({results['seconds']} s; VGG19 features: {vgg})")


if __name__ == "__main__":
    main()
