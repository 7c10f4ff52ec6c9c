#!/usr/bin/env python3
"""Scaling of `simdata render --ray`: the same small dataset (default 8 scenes x 4 views of
assets/ycb at 640x480, 6 objects, every modality, BOP + COCO) rendered by a local Ray with 1
and then 2 CPUs, beside the local baselines (one process; --workers 2), checking that every run
writes byte-identical files.

    python benchmarks/render_ray.py [--scenes 8] [--views 4] [--cpus 1 2]

Ray's start-up is timed apart from rendering (a cluster is started once and serves many runs);
each Ray size renders twice: cold (its worker processes start: imports, GL) and warm.
Prints a table and saves JSON to benchmarks/results/render_ray_cpu.json.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def tree_hash(root: Path) -> str:
    """One hash of every file's path and bytes, except the settings file (it records --out)."""
    h = hashlib.sha256()
    for p in sorted(Path(root).rglob("*")):
        if p.is_file() and p.name != "simdata_settings.json":
            h.update(str(p.relative_to(root)).encode() + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meshes", default=str(REPO / "assets" / "ycb"), help="mesh folder")
    ap.add_argument("--scenes", type=int, default=8, help="scenes per run")
    ap.add_argument("--views", type=int, default=4, help="views per scene")
    ap.add_argument("--cpus", type=int, nargs="+", default=[1, 2], help="CPUs of the local Ray")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "render_ray_cpu.json"))
    args = ap.parse_args()

    import ray

    from results_io import save_results
    from simdata.pipeline import RenderConfig, render_dataset
    from simdata.render import choose_gl_platform
    from simdata.sampling import SceneConfig

    t_start = time.perf_counter()
    gl = choose_gl_platform()  # set before Ray starts, so its workers inherit it

    def run(tmp: str, name: str, **kw) -> dict:
        kw.setdefault("formats", ("bop", "coco"))
        cfg = RenderConfig(meshes=args.meshes, out=f"{tmp}/{name}", scenes=args.scenes, seed=0,
                           scene=SceneConfig(views=args.views, objects=(6, 6)), **kw)
        s = render_dataset(cfg, progress=False)
        return {"run": name, "images": s.images, "seconds": round(s.seconds, 2),
                "images_per_s": round(s.images / s.seconds, 3), "files": tree_hash(cfg.out),
                "write_s_per_image": round(s.timings["write"] / s.images, 4)}

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        bop_only = run(tmp, "local_1_process_bop_only", formats=("bop",))
        runs.append(run(tmp, "local_1_process"))
        images = runs[0]["images"]
        sizes = {"dataset_bytes_per_image": sum(p.stat().st_size for p in Path(
                     f"{tmp}/local_1_process").rglob("*") if p.is_file()) // images,
                 "coco_bytes_per_image": sum(p.stat().st_size for p in Path(
                     f"{tmp}/local_1_process/coco").rglob("*") if p.is_file()) // images}
        runs.append(run(tmp, "local_2_workers", workers=2))
        for cpus in args.cpus:
            t0 = time.perf_counter()
            ray.init(address="local", num_cpus=cpus, include_dashboard=False,
                     logging_level=logging.WARNING)
            start_s = time.perf_counter() - t0
            # first run: Ray starts its worker processes (imports, GL); second: they are warm
            runs.append({**run(tmp, f"ray_{cpus}_cpu", ray="auto"), "ray_cpus": cpus,
                         "ray_start_s": round(start_s, 2)})
            runs.append({**run(tmp, f"ray_{cpus}_cpu_warm", ray="auto"), "ray_cpus": cpus})
            ray.shutdown()
    base, base_files = runs[0], runs[0]["files"]
    for r in runs:
        r["identical_to_local"] = r.pop("files") == base_files
        r["speedup_vs_local_1"] = round(r["images_per_s"] / base["images_per_s"], 2)
    warm = [r for r in runs if r["run"].endswith("_warm")]
    result = {
        "benchmark": "render_ray", "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "gl": gl,
                    "load_avg_1min_at_end": round(os.getloadavg()[0], 2),
                    "ray": ray.__version__},
        "setup": {"width": 640, "height": 480, "objects_per_scene": 6, "views": args.views,
                  "scenes": args.scenes, "formats": "bop,coco"},
        "runs": runs,
        "output": sizes,
        "coco_write_s_per_image": round(runs[0]["write_s_per_image"] - bop_only["write_s_per_image"], 4),
        "bop_only": {k: bop_only[k] for k in ("seconds", "images_per_s", "write_s_per_image")},
        "ray_warm_scaling_last_vs_first": round(warm[-1]["images_per_s"] / warm[0]["images_per_s"], 2),
    }
    print(f"GL {gl}, {os.cpu_count()} cores, {args.scenes} scenes x {args.views} views, 640x480")
    print(f"{'run':>21} {'img/s':>7} {'s':>7} {'vs local':>8} identical")
    for r in runs:
        print(f"{r['run']:>21} {r['images_per_s']:>7.2f} {r['seconds']:>7.1f} "
              f"{r['speedup_vs_local_1']:>7.2f}x {r['identical_to_local']}")
    print(f"output {sizes['dataset_bytes_per_image'] / 1e6:.2f} MB per image "
          f"(COCO {sizes['coco_bytes_per_image'] / 1e3:.1f} kB); COCO adds "
          f"{result['coco_write_s_per_image'] * 1e3:.0f} ms of writing per image")
    save_results(Path(args.out), result, t_start)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
