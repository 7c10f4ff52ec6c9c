#!/usr/bin/env python3
"""Rendering throughput of `simdata render`: images/s and images/s per core at 640x480 with
every modality (RGB, depth, full + visible masks, normals, float depth) and 6 objects per scene,
with the time split into physics, rendering and writing; and crops/s (per core) of
`simdata render --mode crops` at 64x64.

Baselines measured in the same run: a bare pyrender colour pass of the same scenes (what any
pyrender script pays), so `full_render_vs_bare_colour_pass` says what our extra passes cost;
and for crops, rendering scenes then cutting them with `simdata crops`.

    python benchmarks/render_throughput.py [--scenes 6] [--views 4] [--workers 1 2]

Prints a table and saves JSON to benchmarks/results/render_throughput.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def bare_render_rate(models, cfg, scenes: int) -> float:
    """Images/s of a plain pyrender colour pass over the same settled scenes (one process)."""
    from simdata.scene import layout_scene
    from simdata.render import SceneRenderer

    n, seconds = 0, 0.0
    with SceneRenderer(models, cfg.scene.intrinsics) as r:
        for i in range(scenes):
            layout = layout_scene(models, cfg, i)
            r.set_scene(layout.settled.kept, layout.table, layout.lighting)
            for T in layout.cameras:
                t0 = time.perf_counter()
                r.render_rgb(T)
                seconds += time.perf_counter() - t0
                n += 1
    return n / seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meshes", default=str(REPO / "assets" / "ycb"), help="mesh folder")
    ap.add_argument("--scenes", type=int, default=6, help="scenes per measurement")
    ap.add_argument("--views", type=int, default=4, help="views per scene")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count() or 1],
                    help="worker counts to measure")
    ap.add_argument("--crops", type=int, default=500, help="crops rendered for the crops figure")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "render_throughput.json"))
    args = ap.parse_args()

    from simdata.assets import load_models
    from simdata.crop_render import render_crops
    from simdata.crops import CropsConfig, crops_from_dataset
    from simdata.pipeline import RenderConfig, render_dataset
    from simdata.render import choose_gl_platform
    from simdata.sampling import SceneConfig

    cores = os.cpu_count() or 1
    gl = choose_gl_platform()
    runs = []
    cut_route = None
    for workers in sorted(set(args.workers)):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = RenderConfig(meshes=args.meshes, out=f"{tmp}/ds", scenes=args.scenes, seed=0,
                               workers=workers, scene=SceneConfig(views=args.views, objects=(6, 6)))
            s = render_dataset(cfg, progress=False)
            total = sum(s.timings.values())
            if cut_route is None:  # baseline for --mode crops: render scenes, then cut crops
                t0 = time.perf_counter()
                out = crops_from_dataset(f"{tmp}/ds", f"{tmp}/crops", CropsConfig(size=64),
                                         progress=False)
                n = sum(1 for _ in open(out / "labels.jsonl"))
                cut_route = n / (s.seconds + time.perf_counter() - t0)
            runs.append({
                "workers": workers, "images": s.images, "seconds": round(s.seconds, 2),
                "images_per_s": round(s.images / s.seconds, 3),
                "images_per_s_per_core": round(s.images / s.seconds / cores, 3),
                "split": {k: round(v / total, 3) for k, v in s.timings.items()},
                "seconds_per_image": {k: round(v / s.images, 4) for k, v in s.timings.items()},
            })
    cfg = RenderConfig(meshes=args.meshes, seed=0, scene=SceneConfig(views=args.views, objects=(6, 6)))
    bare = bare_render_rate(load_models(args.meshes), cfg, min(args.scenes, 3))
    one = next(r for r in runs if r["workers"] == min(args.workers))
    with tempfile.TemporaryDirectory() as tmp:
        crops = render_crops(RenderConfig(meshes=args.meshes, out=f"{tmp}/c", seed=0),
                             args.crops, 64, progress=False)
    crops_rate = crops["crops"] / crops["seconds"]
    result = {
        "benchmark": "render_throughput", "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpu_count": cores, "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(), "gl": gl},
        "setup": {"width": 640, "height": 480, "objects_per_scene": 6, "views": args.views,
                  "scenes": args.scenes, "modalities": "rgb(jpg), depth png, mask, mask_visib, "
                  "normals png, depth_m npy"},
        "runs": runs,
        "baseline_bare_colour_pass_images_per_s": round(bare, 3),
        "full_render_vs_bare_colour_pass": round(one["seconds_per_image"]["render"] * bare, 2),
        "parallel_speedup": round(runs[-1]["images_per_s"] / runs[0]["images_per_s"], 2),
        "crops_64": {"mode_crops_per_s": round(crops_rate, 2),
                     "mode_crops_per_s_per_core": round(crops_rate / cores, 2),
                     "baseline_scenes_then_cut_crops_per_s": round(cut_route, 2),
                     "speedup_vs_baseline": round(crops_rate / cut_route, 1), "count": args.crops},
    }
    print(f"GL {gl}, {cores} cores, 640x480, 6 objects, all modalities")
    print(f"{'workers':>7} {'img/s':>7} {'img/s/core':>10}  physics  render  write")
    for r in runs:
        sp = r["split"]
        print(f"{r['workers']:>7} {r['images_per_s']:>7.2f} {r['images_per_s_per_core']:>10.2f}  "
              f"{sp['physics']:>7.0%} {sp['render']:>7.0%} {sp['write']:>6.0%}")
    print(f"baseline: bare pyrender colour pass {bare:.2f} img/s; our full render step costs "
          f"{result['full_render_vs_bare_colour_pass']}x that; parallel speedup "
          f"{result['parallel_speedup']}x")
    print(f"crops 64x64: --mode crops {crops_rate:.1f} crops/s ({crops_rate / cores:.1f} per core); "
          f"baseline scenes + `simdata crops` {cut_route:.1f} crops/s: {crops_rate / cut_route:.1f}x")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
