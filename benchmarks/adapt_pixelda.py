#!/usr/bin/env python3
"""Source-only vs PixelDA vs target-only on a synthetic -> "real-looking" crops task.

Both domains are rendered by simdata from assets/ycb with `render --mode crops`:
- source: clean renders, original textures, white directional light, black background;
- target ("real-looking", a documented appearance gap): random light colour temperatures and
  point lights, photo backgrounds (../shared/real/ycbv_demo frames when present, else
  procedural clutter), and the primesense sensor model (shot/read noise, blur, chromatic
  aberration, white balance/exposure error, vignetting, JPEG; depth noise and holes).
  A labelled target train split (used only by target-only and as PixelDA's unlabelled target)
  and a held-out labelled target test split (seed differs) are made.

Reports accuracy and mean rotation error (degrees) on the target test split, and training
steps/s, for each method, and saves benchmarks/results/adapt_pixelda_<device>.json.
The CPU default is a small configuration (32 px, small nets); `--paper` uses the paper's
sizes (64 px, 64 filters, 6 blocks, batch 32) and is meant for a GPU.

    python benchmarks/adapt_pixelda.py [--steps 600] [--paper] [--device auto]
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED_REAL = REPO.parent / "shared" / "real" / "ycbv_demo"


def make_domains(tmp: Path, size: int, n_source: int, n_target: int, n_test: int) -> dict:
    from simdata.crop_render import render_crops
    from simdata.pipeline import RenderConfig
    from simdata.randomize import RandomizationConfig

    meshes = str(REPO / "assets" / "ycb")
    photos = str(SHARED_REAL) if SHARED_REAL.is_dir() else ""
    look = RandomizationConfig(lights=True, backgrounds=True, background_dir=photos,
                               light_temperature_k=(2500.0, 4500.0))
    out = {}
    for name, count, seed, real in (("source", n_source, 0, False), ("target", n_target, 1, True),
                                    ("test", n_test, 2, True)):
        cfg = RenderConfig(meshes=meshes, out=str(tmp / name), seed=seed,
                           sensor="primesense" if real else "clean",
                           randomize=look if real else RandomizationConfig())
        res = render_crops(cfg, count, size, progress=False)
        out[name] = {"path": str(tmp / name), "crops": count,
                     "crops_per_s": round(res["crops"] / res["seconds"], 1)}
    out["backgrounds"] = "ycbv_demo photos" if photos else "procedural (../shared absent)"
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=600, help="training steps per method")
    ap.add_argument("--paper", action="store_true", help="paper-size nets, 64 px, batch 32")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--source-crops", type=int, default=3000)
    ap.add_argument("--target-crops", type=int, default=1500)
    ap.add_argument("--test-crops", type=int, default=500)
    ap.add_argument("--out", default="", help="JSON path [benchmarks/results/adapt_pixelda_<device>.json]")
    args = ap.parse_args()

    import torch

    from adapt.config import TrainConfig
    from adapt.methods import METHODS
    from adapt.trainer import Trainer, resolve_device

    device = resolve_device(args.device)
    if args.paper:
        size, batch, nets = 64, 32, {}
    else:
        size, batch, nets = 32, 16, {"gen_filters": 32, "gen_blocks": 3, "disc_filters": 32,
                                     "task_width": 16}
    results = {"benchmark": "adapt_pixelda", "date": time.strftime("%Y-%m-%d"),
               "device": torch.cuda.get_device_name() if device.type == "cuda" else
               f"cpu ({torch.get_num_threads()} threads, {platform.processor() or platform.machine()})",
               "config": {"size": size, "batch": batch, "steps": args.steps, "nets": nets or "paper"},
               "methods": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        results["data"] = make_domains(tmp, size, args.source_crops, args.target_crops, args.test_crops)
        results["data"]["seconds"] = round(time.perf_counter() - t0, 1)
        print(f"data ready in {results['data']['seconds']} s: {results['data']}")
        for method in ("source-only", "pixelda", "target-only"):
            cls = METHODS[method]
            known = set(cls.Config.__dataclass_fields__)
            mcfg = cls.Config(**{k: v for k, v in nets.items() if k in known})
            cfg = TrainConfig(method=method, source=results["data"]["source"]["path"],
                              target=results["data"]["target"]["path"], out=str(tmp / f"run_{method}"),
                              steps=args.steps, batch=batch, size=size, device=str(device),
                              log_every=50, sample_every=args.steps, ckpt_every=args.steps,
                              eval_data=results["data"]["test"]["path"])
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            res = Trainer(cfg, mcfg).fit(progress=False)
            entry = {"accuracy": res["eval"]["accuracy"], "mean_angle_deg": res["eval"]["mean_angle_deg"],
                     "median_angle_deg": res["eval"]["median_angle_deg"], "steps_per_s": res["steps_per_s"]}
            if device.type == "cuda":
                entry["peak_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
            results["methods"][method] = entry
            print(f"{method:>12}: accuracy {entry['accuracy']:.3f}, mean angle "
                  f"{entry['mean_angle_deg']:.1f} deg, {entry['steps_per_s']:.2f} steps/s")
    so = results["methods"]["source-only"]["accuracy"]
    results["pixelda_vs_source_only_accuracy"] = round(results["methods"]["pixelda"]["accuracy"] - so, 4)
    out = Path(args.out or REPO / "benchmarks" / "results" / f"adapt_pixelda_{device.type}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
