#!/usr/bin/env python3
"""Where a view's rendering time goes on a CPU (Mesa llvmpipe): the CPU time of simdata's lit
colour pass (pyrender's PBR shader, `SceneRenderer.render_rgb`) per 640x480 view of 6 real YCB
objects, against variants that each take one thing away, and of the geometry pass's cheap
shader under the same antialiasing.

Every variant runs in a fresh process with LP_NUM_THREADS=0 (llvmpipe rasterizes on the calling
thread), so wall time is CPU time and the figures add up whatever the core count. Scenes: 4
settled scenes of `--meshes` (default ../shared/ycb, else assets/ycb) x 4 views, rendered once
to warm up and timed the second time.

Variants (`--msaa` 0 and 4 each):
- full: the colour pass as `simdata render` runs it (table and objects), pyrender's lit
  shaders with the scene's number of lights compiled in;
- uniform-loops: the same pass with pyrender's shaders as they come, the number of lights read
  from uniforms (what simdata ran before 2026-11-28, and a plain pyrender script runs);
- objects: the table hidden; table: the objects hidden;
- untextured: the table hidden and the objects' textures dropped;
- near-first: the full pass drawn nearest node first, the table last (pyrender draws the
  farthest first), so that the depth test can skip hidden fragments before shading them;
- geometry-program: the full scene drawn with the geometry pass's shader (normals and ids).

    python benchmarks/render_passes.py [--meshes DIR] [--out benchmarks/results/render_passes_cpu.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]
from results_io import save_results  # noqa: E402

VARIANTS = ("full", "uniform-loops", "objects", "table", "untextured", "near-first", "geometry-program")


def measure(meshes: str, msaa: int, variant: str, scenes: int = 4, objects: int = 6) -> float:
    """ms of CPU per view of ``variant`` (run in this process)."""
    from dataclasses import replace

    import numpy as np

    from simdata.assets import load_models
    from simdata.config import RenderConfig
    from simdata.render import SceneRenderer, _GeometryShaderCache, _pyrender
    from simdata.scene import layout_scene
    from simdata.transforms import opencv_to_opengl_camera

    models = load_models(meshes)
    cfg = RenderConfig(meshes=meshes)
    cfg = replace(cfg, scene=replace(cfg.scene, objects=(objects, objects)))
    layouts = [layout_scene(models, cfg, i) for i in range(scenes)]
    r = SceneRenderer(models, cfg.scene.intrinsics, msaa=msaa)
    if variant == "near-first":
        def near_first(scene):
            cam = scene.get_pose(scene.main_camera_node)[:3, 3]
            nodes = sorted((n for n in scene.mesh_nodes if n is not r._table_node),
                           key=lambda n: np.linalg.norm(scene.get_pose(n)[:3, 3] - cam))
            return nodes + ([r._table_node] if r._table_node is not None else [])
        r._renderer._renderer._sorted_mesh_nodes = near_first

    def run() -> list[float]:
        times = []
        for layout in layouts:
            r.set_scene(layout)
            if variant in ("objects", "untextured") and r._table_node is not None:
                r._table_node.mesh.is_visible = False
            if variant == "table":
                for node in r._object_nodes:
                    node.mesh.is_visible = False
            if variant == "untextured":
                for mesh in r._meshes.values():
                    for p in mesh.primitives:
                        p.material.baseColorTexture = None
            for T in layout.cameras:
                t = time.perf_counter()
                if variant == "uniform-loops":
                    r._scene.set_pose(r._camera_node, opencv_to_opengl_camera(T))
                    with r._reading("rgb"):
                        r._renderer.render(r._scene, flags=_pyrender().RenderFlags.NONE)
                elif variant == "geometry-program":
                    r._scene.set_pose(r._camera_node, opencv_to_opengl_camera(T))
                    if r._geometry_cache is None:
                        r._geometry_cache = _GeometryShaderCache()
                    with r._programs(lambda own: r._geometry_cache), r._reading("rgb"):
                        r._renderer.render(r._scene, flags=_pyrender().RenderFlags.NONE)
                else:
                    r.render_rgb(T)
                times.append(time.perf_counter() - t)
        return times

    run()
    ms = 1000 * float(np.mean(run()))
    r.close()
    return ms


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    shared = REPO.parent / "shared" / "ycb"
    ap.add_argument("--meshes", default=str(shared if shared.is_dir() else REPO / "assets" / "ycb"))
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "render_passes_cpu.json"))
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # MSAA VARIANT: measure in this process
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure(args.meshes, int(args.one[0]), args.one[1])))
        return
    env = {**os.environ, "LP_NUM_THREADS": "0", "PYOPENGL_PLATFORM": os.environ.get("PYOPENGL_PLATFORM", "egl")}
    t0 = time.perf_counter()
    results = {"benchmark": "render_passes", "date": time.strftime("%Y-%m-%d"), "meshes": args.meshes,
               "what": "CPU ms per 640x480 view (LP_NUM_THREADS=0), 6 objects, 4 scenes x 4 views",
               "ms_per_view": {}}
    for msaa in (0, 4):
        for variant in VARIANTS:
            out = subprocess.run([sys.executable, __file__, "--meshes", args.meshes, "--one", str(msaa), variant],
                                 env=env, capture_output=True, text=True, check=True)
            ms = json.loads(out.stdout.strip().splitlines()[-1])
            results["ms_per_view"][f"msaa {msaa}, {variant}"] = round(ms, 1)
            print(f"msaa {msaa}  {variant:<17} {ms:6.1f} ms per view", flush=True)
    save_results(Path(args.out), results, t0)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
