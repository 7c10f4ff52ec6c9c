#!/usr/bin/env python3
"""Source-only vs SPIGAN-base vs SPIGAN-no-PI vs SPIGAN on a synthetic -> "real-looking"
scene segmentation task made by simdata from assets/ycb.

- source: clean scenes (original textures, white lights, no background), labels from the
  masks, the simulator's clean depth as privileged information;
- target (held-out appearance): random light colours and point lights, random object
  materials (half of the objects), photo backgrounds (../shared/real/ycbv_demo frames when
  present, else procedural), and the primesense sensor model. Its train split is used without
  labels; a test split with another seed is labelled for evaluation.

Reports mIoU, per-class IoU and negative transfer (share of test images whose IoU falls below
source-only's; also against a source-only net given as many task-net updates as SPIGAN's T,
which is updated once per five G steps) for each variant, plus steps/s and peak memory, and saves
benchmarks/results/adapt_spigan_<device>.json. The CPU default is small (class-agnostic
labels: background / table / object; 64 px crops; small nets); `--paper` uses the paper's
sizes (320 px crops of images resized to 320 px height, 9-block generator, batch 1... 4) for a
GPU. Offline, VGG19 ImageNet weights are used when found (`--vgg-weights`), else random
features, and the JSON says which.

    python benchmarks/adapt_spigan.py [--steps 500] [--paper] [--vgg-weights auto|PATH|random]
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
SHARED_REAL = REPO.parent / "shared" / "real" / "ycbv_demo"


def make_data(tmp: Path, scenes: tuple[int, int, int], width: int) -> dict:
    from simdata.pipeline import RenderConfig, render_dataset
    from simdata.randomize import RandomizationConfig
    from simdata.sampling import SceneConfig
    from simdata.types import PRIMESENSE

    photos = str(SHARED_REAL) if SHARED_REAL.is_dir() else ""
    look = RandomizationConfig(lights=True, backgrounds=True, background_dir=photos, materials=True,
                               material_prob=0.5)
    intr = PRIMESENSE.resized(width, width * 3 // 4)
    out = {"backgrounds": "ycbv_demo photos" if photos else "procedural (../shared absent)"}
    for name, n, seed, real in (("source", scenes[0], 0, False), ("target", scenes[1], 1, True),
                                ("test", scenes[2], 2, True)):
        cfg = RenderConfig(meshes=str(REPO / "assets" / "ycb"), out=str(tmp / name), scenes=n,
                           seed=seed, sensor="primesense" if real else "clean",
                           randomize=look if real else RandomizationConfig(),
                           scene=SceneConfig(views=4 if name == "source" else 2, intrinsics=intr))
        s = render_dataset(cfg, progress=False)
        out[name] = {"path": str(tmp / name), "images": s.images}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=500, help="training steps per variant")
    ap.add_argument("--paper", action="store_true", help="paper sizes (meant for a GPU)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--vgg-weights", default="", help="auto, a path, or random [auto if found, else random]")
    ap.add_argument("--out", default="", help="JSON path [benchmarks/results/adapt_spigan_<device>.json]")
    args = ap.parse_args()

    import torch

    from adapt.config import TrainConfig
    from adapt.evaluate import negative_transfer
    from adapt.methods import METHODS
    from adapt.nets.vgg import hub_weights_path
    from adapt.trainer import Trainer, resolve_device

    device = resolve_device(args.device)
    vgg = args.vgg_weights or ("auto" if hub_weights_path().is_file() else "random")
    if args.paper:
        size = dict(height=320, crop=320, batch=4, class_agnostic=False)
        nets, scenes, width = {}, (200, 60, 40), 640
    else:
        size = dict(height=64, crop=64, batch=4, class_agnostic=True)
        nets = {"gen_filters": 16, "gen_blocks": 3, "disc_filters": 16, "task_width": 16}
        scenes, width = (40, 15, 15), 320
    # SPIGAN updates T once per 5 G steps: "source-only-equal-T" gets the same number of
    # task-net updates as SPIGAN's T, to separate adaptation from training length.
    variants = {"source-only": ("seg-source-only", {}, args.steps),
                "source-only-equal-T": ("seg-source-only", {}, args.steps // 5),
                "spigan-base": ("spigan", {"base": True}, args.steps),
                "spigan-no-pi": ("spigan", {"no_pi": True}, args.steps),
                "spigan": ("spigan", {}, args.steps)}
    results = {"benchmark": "adapt_spigan", "date": time.strftime("%Y-%m-%d"),
               "device": torch.cuda.get_device_name() if device.type == "cuda" else
               f"cpu ({torch.get_num_threads()} threads)", "vgg_weights": vgg,
               "config": {**size, "steps": args.steps, "nets": nets or "paper"}, "variants": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        results["data"] = make_data(tmp, scenes, width)
        results["data"]["seconds"] = round(time.perf_counter() - t0, 1)
        print(f"data ready in {results['data']['seconds']} s")
        per_image = {}
        for name, (method, flags, steps) in variants.items():
            cls = METHODS[method]
            known = cls.Config.__dataclass_fields__
            mcfg = cls.Config(**{k: v for k, v in {**nets, **flags, "vgg_weights": vgg}.items() if k in known})
            cfg = TrainConfig(method=method, source=results["data"]["source"]["path"],
                              target=str(Path(results["data"]["target"]["path"]) / "train_pbr"),
                              out=str(tmp / name), steps=steps, device=str(device),
                              log_every=25, sample_every=steps, ckpt_every=steps,
                              eval_data=results["data"]["test"]["path"], **size)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            res = Trainer(cfg, mcfg).fit(progress=False)
            ev = res["eval"]
            entry = {"miou": ev["miou"], "pixel_accuracy": ev["pixel_accuracy"],
                     "per_class_iou": ev["per_class_iou"], "steps": res["steps"],
                     "early_stop": res.get("early_stop"), "steps_per_s": res["steps_per_s"]}
            per_image[name] = ev["per_image_iou"]
            if method == "spigan":
                entry["negative_transfer"] = negative_transfer(ev["per_image_iou"], per_image["source-only"])
                entry["negative_transfer_vs_equal_T"] = negative_transfer(
                    ev["per_image_iou"], per_image["source-only-equal-T"])
            entry["peak_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20) if device.type == "cuda" \
                else round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
            results["variants"][name] = entry
            print(f"{name:>19}: mIoU {entry['miou']:.3f}, negative transfer "
                  f"{entry.get('negative_transfer', '-')}, {entry['steps_per_s']:.2f} steps/s, "
                  f"peak {entry['peak_memory_mb']} MB")
    out = Path(args.out or REPO / "benchmarks" / "results" / f"adapt_spigan_{device.type}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {out} (VGG19 features: {vgg})")


if __name__ == "__main__":
    main()
