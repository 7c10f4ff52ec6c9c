"""Where one rendering process's CPU goes: the scenes saved by ``render_throughput.py
--save-layouts`` rendered and written by one process under cProfile, summed by package
(PyOpenGL's wrappers, pyrender, numpy, simdata...) and by function. The process runs OpenCV on
one thread, as `simdata render`'s pool workers do.

On a GPU the host CPU bounds the images per second (the GL work of a 640x480 view is a few
ms); this says which Python pays for it, and which threads (the rendering thread, the GL
driver's own, the writer's encoders) use the CPU. Before Python 3.12 cProfile follows the main
thread only; from 3.12 it sees the writer's threads too.

    python benchmarks/render_profile.py --layouts DIR [--scenes 25] [--out FILE]
    [--meshes DIR] [--gpu]
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

GROUPS = (("OpenGL/", "PyOpenGL"), ("pyrender/", "pyrender"), ("numpy/", "numpy"),
          ("simdata/", "simdata"), ("trimesh/", "trimesh"), ("cv2", "cv2"),
          ("concurrent/", "threads (queueing)"), ("threading", "threads (queueing)"))


def group_of(filename: str, name: str) -> str:
    """The package a profiled function belongs to (builtins by their name: C calls such as
    numpy's and PyOpenGL's ctypes calls show as ``<built-in method ...>``)."""
    for key, label in GROUPS:
        if key in filename:
            return label
    if filename == "~":
        if "numpy" in name or "ndarray" in name:
            return "numpy"
        return "C calls (ctypes GL, I/O, other)"
    return "other Python"


def thread_cpu() -> dict[tuple[int, str], float]:
    """{(thread id, name): CPU seconds (user + system)} of this process's live threads, from
    /proc (empty elsewhere). GL drivers may run threads of their own (Mesa names its llvmpipe-N);
    the writer's encoding threads end with each scene, so their CPU is what the process used
    beyond its live threads."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for task in Path("/proc/self/task").glob("*"):
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[(int(task.name), name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def profile_scenes(meshes: str, layouts_file: Path, scenes: int, views: int) -> dict:
    from render_throughput import load_layouts, scene_config

    from simdata.assets import load_models, models_fingerprint
    from simdata.pipeline import prepare_output, with_absolute_paths
    from simdata.render import SceneRenderer
    from simdata.scene import render_scene
    from simdata.writers import make_writers, open_scene

    saved = load_layouts(layouts_file)
    with tempfile.TemporaryDirectory(prefix="render-profile-") as tmp:
        cfg = with_absolute_paths(scene_config(meshes, views, Path(tmp) / "out", scenes + 1, 1))
        models = load_models(cfg.meshes, cfg.units)
        if [m.name for m in models] != saved["info"]["model_names"]:
            sys.exit(f"{layouts_file} was saved for other meshes than {meshes}")
        prepare_output(cfg, models, models_fingerprint(cfg.meshes), make_writers(cfg))

        def one(i):
            writer = open_scene(make_writers(cfg), i)
            return render_scene(models, cfg, renderer, i, writer, scene=saved["layouts"][i])

        with SceneRenderer(models, cfg.scene.intrinsics, msaa=cfg.msaa) as renderer:
            one(0)  # uploads, shader compiles: once per process, not what a scene costs
            from OpenGL import GL

            gl_renderer = GL.glGetString(GL.GL_RENDERER).decode(errors="replace")
            prof = cProfile.Profile()
            threads0 = thread_cpu()
            cpu0, t0 = time.process_time(), time.perf_counter()
            prof.enable()
            results = [one(i) for i in range(1, scenes + 1)]
            prof.disable()
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            threads1 = thread_cpu()
    images = sum(r["images"] for r in results)
    stats = pstats.Stats(prof)
    groups: dict[str, float] = {}
    funcs = []
    for (filename, line, name), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():
        g = group_of(filename, name)
        groups[g] = groups.get(g, 0.0) + tottime
        funcs.append((tottime, ncalls, cumtime, f"{Path(filename).name}:{line}({name})", g))
    funcs.sort(reverse=True)
    ms = 1000.0 / images
    main_tid = threading.get_native_id()
    per_thread: dict[str, float] = {}
    for (tid, name), c in threads1.items():
        label = "rendering (main) thread" if tid == main_tid else f"live thread: {name}"
        per_thread[label] = per_thread.get(label, 0.0) + c - threads0.get((tid, name), 0.0)
    if threads1:
        per_thread["ended threads (the writer's encoders)"] = cpu - sum(per_thread.values())
    return {
        "gl_renderer": gl_renderer, "images": images, "wall_s": round(wall, 2),
        "ms_per_image": {"wall": round(wall * ms, 2), "process_cpu (all threads)": round(cpu * ms, 2),
                         **{k: round(sum(r[k] for r in results) * ms, 2)
                            for k in ("render", "write")}},
        "cpu_ms_per_image_by_thread": {k: round(v * ms, 2) for k, v in sorted(
            per_thread.items(), key=lambda kv: -kv[1])},
        "profiled_main_thread_ms_per_image_by_group": dict(sorted(
            ((k, round(v * ms, 2)) for k, v in groups.items()), key=lambda kv: -kv[1])),
        "top_functions": [{"function": f, "group": g, "calls_per_image": round(n / images, 1),
                           "tottime_ms_per_image": round(t * ms, 3),
                           "cumtime_ms_per_image": round(c * ms, 3)}
                          for t, n, c, f, g in funcs[:40]],
    }


def _accelerate_version() -> str | None:
    """PyOpenGL_accelerate's version where PyOpenGL uses it (its C wrappers), else None."""
    try:
        import OpenGL_accelerate
        from OpenGL import acceleratesupport
    except ImportError:
        return None
    return OpenGL_accelerate.__version__ if acceleratesupport.ACCELERATE_AVAILABLE else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layouts", required=True, metavar="DIR",
                    help="a render_throughput.py --save-layouts folder (layouts_real.pkl)")
    ap.add_argument("--meshes", default="", help="mesh folder [../shared/ycb, else DIR/meshes/real]")
    ap.add_argument("--scenes", type=int, default=25, help="scenes profiled (after one warm-up)")
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--gpu", action=argparse.BooleanOptionalAction, default=False,
                    help="EGL on the GPU of $EGL_DEVICE_ID")
    ap.add_argument("--out", default="", help="JSON [benchmarks/results/render_profile_<gl>.json]")
    ap.add_argument("--note", default="", help="recorded in the JSON (what this run varies)")
    args = ap.parse_args()
    import cv2

    # as in every pool worker (simdata.pools): OpenCV's own thread pool would otherwise show up
    # as unnamed threads doing the work the rendering thread does in a real run
    cv2.setNumThreads(1)
    if args.gpu:
        os.environ["PYOPENGL_PLATFORM"] = "egl"
    from simdata.render import choose_gl_platform

    gl = choose_gl_platform()
    layouts = Path(args.layouts)
    meshes = args.meshes or next(str(p) for p in (REPO.parent / "shared" / "ycb", layouts / "meshes" / "real")
                                 if p.is_dir())
    result = {"benchmark": "render_profile", "date": time.strftime("%Y-%m-%d"),
              "machine": {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                          "gl_platform": gl,
                          "env": {k: v for k, v in os.environ.items() if k.startswith(("PYOPENGL", "EGL_"))}},
              "meshes": meshes, "views": args.views, "note": args.note,
              "pyopengl_accelerate": _accelerate_version(),
              **profile_scenes(meshes, layouts / "layouts_real.pkl", args.scenes, args.views)}
    out = Path(args.out) if args.out else REPO / "benchmarks" / "results" / f"render_profile_{gl}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("images", "ms_per_image", "cpu_ms_per_image_by_thread",
                                              "profiled_main_thread_ms_per_image_by_group")}, indent=1))
    for f in result["top_functions"][:25]:
        print(f"{f['tottime_ms_per_image']:8.3f} ms {f['calls_per_image']:8.1f} calls  {f['group']:<12} {f['function']}")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
