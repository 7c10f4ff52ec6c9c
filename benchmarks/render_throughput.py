#!/usr/bin/env python3
"""Rendering throughput of `simdata render`: images/s and images/s per core at 640x480 with
every modality (RGB, depth, full + visible masks, normals, float depth) and 6 objects per scene,
with the time split into physics, rendering and writing.

Baseline measured in the same run: a bare pyrender colour+depth pass of the same scenes
(what any pyrender script pays), so `full_vs_bare_render` says what our extra passes cost.

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
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "render_throughput.json"))
    args = ap.parse_args()

    from simdata.assets import load_models
    from simdata.pipeline import RenderConfig, render_dataset
    from simdata.render import choose_gl_platform
    from simdata.sampling import SceneConfig

    cores = os.cpu_count() or 1
    gl = choose_gl_platform()
    runs = []
    for workers in sorted(set(args.workers)):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = RenderConfig(meshes=args.meshes, out=f"{tmp}/ds", scenes=args.scenes, seed=0,
                               workers=workers, scene=SceneConfig(views=args.views, objects=(6, 6)))
            s = render_dataset(cfg, progress=False)
            total = sum(s.timings.values())
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
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
