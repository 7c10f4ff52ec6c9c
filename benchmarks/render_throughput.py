#!/usr/bin/env python3
"""Rendering speed of `simdata render`, end to end, against a plain pyrender script measured in
the same run. Scenes: 640x480, 6 objects per scene, 4 views per scene, every modality (RGB jpg,
depth png, full + visible masks, normals png, float depth npy).

Mesh sets (``--sets``):
- ``proxies``: assets/ycb, the bundled YCB-like proxies (2.4k triangles in all, 10 models);
- ``real``: ``<repo>/../shared/ycb`` when present (real YCB geometry, 15.7k triangles each);
- ``textured``: copies of the proxies whose textures the benchmark replaces with 2048x2048
  PNGs (checked to load as 2048x2048 textures: no model falls back to a plain material).

Every measurement runs in a fresh process (the parent orchestrates and has no GL context):
1. scenes: for every mesh set x ``--workers`` count, ``render_dataset`` of ``--scenes``
   scenes: images/s (end to end: physics, rendering and writing, worker start-up included),
   images/s per core, the physics / render / write split (time summed over workers), peak
   RSS of the process tree (sampled from /proc), and "steady" images/s (first to last
   finished scene, without start-up); the sets of ``--msaa-off-sets`` (real YCB) again with
   ``--msaa 0``, the RGB without antialiasing (rows with "msaa": 0; their ratio is to the
   plain script, which antialiases; the other rows' null is the OpenGL's own: 4 with EGL),
   and their crops (4.) too;
2. memory: one run of ``--long-images`` images (``--long-set`` with ``--long-workers``; it is
   also that set's row in 1.), sampling the RSS of the process and its workers: RSS at 100
   images vs at the end (flat: grows <= 5 %), the peak, and samples every ``--rss-every``;
   and their PSS, where a page shared by n processes counts 1/n in each (the sum is what the
   tree holds; summed RSS counts the fork server's pages once per worker forked from it);
3. plain: benchmarks/plain_pyrender.py (pyrender + trimesh + cv2 only: colour + depth, one
   instance-id pass, one silhouette pass per object, PNGs) on the same meshes at the same
   settled poses (simdata's layout_scene, not timed), ``--plain-scenes`` scenes shared among
   as many copies as we have workers; ratio = our end-to-end images/s (physics included) /
   theirs (rendering and writing only);
4. crops: ``render --mode crops`` (render_crops) of ``--crops`` crops of 64x64 per mesh set
   and ``--workers`` count: crops/s and crops/s per core (the rate over every core the
   process may use, whatever the worker count); baseline: the route it replaces, scenes
   rendered (at the set's one-worker rate) then cut by ``simdata crops``;
5. start-up: ``simdata render`` of 1 scene x 1 view in a fresh process, from process start to
   the first image on disk, twice: with an empty $SIMDATA_CACHE (cold) and again (warm). It
   runs with the caller's environment: without $PYOPENGL_PLATFORM it pays the GL probe.

Targets (printed met / not met): >= 10 images/s on a 2-core machine (>= 300 on one GPU) and
>= 1.6x the plain script; >= 200 crops/s per core; warm start-up < 2 s; RSS flat. "Per core"
divides by the cores this process may use. Runs on a shared machine vary: compare only
figures of one run.

GPU: with ``--gpu`` (default: when ``nvidia-smi`` lists one) every process renders with EGL on
device ``--egl-device`` (EGL_DEVICE_ID, inherited by every worker), worker counts default to
1 2 4 8, runs have 250 scenes (plain: 64), and the JSON (default benchmarks/results/
render_throughput_gpu_<device>.json) records the GPU's name and the GL renderer string. A GPU
machine without pybullet renders scenes settled elsewhere: ``--save-layouts DIR`` here (physics
timed, scenes pickled, the real meshes copied), ``--layouts DIR`` there (simdata's render_scene
and writers on those scenes; no start-up part). benchmarks/gpu_figures.sh is such a run.

The default run takes about 13 minutes on an idle 2-core machine (estimated from partial
runs: the 1000-image memory run with real YCB ~6-7 min, the five 100-image runs ~3 min, the
plain script ~2 min, crops ~3 min, start-up ~0.5 min). Quick look: ``--long-images 0``.

    python benchmarks/render_throughput.py [--sets proxies real textured] [--workers 1 2]
        [--scenes 25] [--long-images 1000] [--plain-scenes 8] [--crops 2000] [--gpu]
        [--out benchmarks/results/render_throughput.json]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

SHARED_YCB = REPO.parent / "shared" / "ycb"
PLAIN = REPO / "benchmarks" / "plain_pyrender.py"
OBJECTS = 6
TEXTURE_SIDE = 2048
TARGETS = {"images_per_s_cpu": 10.0, "images_per_s_gpu": 300.0, "ratio_vs_plain": 1.6,
           "crops_per_s_per_core": 200.0, "startup_warm_s": 2.0, "rss_growth_frac": 0.05}


# ---------------------------------------------------------------- children (own processes)

def child_main(kind: str, spec: dict) -> None:
    """Runs in a fresh process: one measurement, printed as one JSON line on stdout."""
    import resource

    out: dict = {}
    if kind == "scenes" and spec.get("layouts"):
        out = replay_layouts(spec)
    elif kind == "scenes":
        from simdata.pipeline import render_dataset

        cfg = scene_config(spec["meshes"], spec["views"], spec["out"], spec["scenes"], spec["workers"],
                           spec.get("msaa"))
        s = render_dataset(cfg, progress=False)
        out = {"images": s.images, "seconds": s.seconds, "timings": s.timings,
               "scenes": s.scenes_done}
    elif kind == "crops":
        from simdata.config import RenderConfig
        from simdata.crop_render import render_crops

        r = render_crops(RenderConfig(meshes=spec["meshes"], out=spec["out"], seed=0,
                                      msaa=spec.get("msaa"), workers=spec.get("workers", 1)),
                         spec["count"], spec["size"], progress=False)
        out = {"crops": r["crops"], "seconds": r["seconds"]}
    elif kind == "cut":
        from simdata.crops import CropsConfig, crops_from_dataset

        t0 = time.perf_counter()
        out_dir = crops_from_dataset(spec["dataset"], spec["out"], CropsConfig(size=spec["size"]),
                                     progress=False)
        out = {"crops": sum(1 for _ in open(Path(out_dir) / "labels.jsonl")),
               "seconds": time.perf_counter() - t0}
    elif kind == "glinfo":
        import pyrender
        from OpenGL import GL

        r = pyrender.OffscreenRenderer(8, 8)
        out = {k: GL.glGetString(getattr(GL, "GL_" + k.upper())).decode(errors="replace")
               for k in ("vendor", "renderer", "version")}
        r.delete()
    # the kernel's high-water mark of this process (RUSAGE_CHILDREN would not do for the
    # workers: it also counts the pre-exec size of forked helpers, such as pyglet's ldconfig)
    out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out), flush=True)


def scene_config(meshes, views: int, out="", scenes: int = 0, workers: int = 1,
                 msaa: int | None = None):
    """The RenderConfig of every scenes run (and of the plain script's poses)."""
    from simdata.config import RenderConfig
    from simdata.sampling import SceneConfig

    return RenderConfig(meshes=str(meshes), out=str(out), scenes=scenes, seed=0, workers=workers,
                        msaa=msaa, scene=SceneConfig(views=views, objects=(OBJECTS, OBJECTS)))


# ---------------------------------------------------------------- settled layouts
# A GPU machine may lack pybullet (no wheel for its Python could travel there: the .so alone is
# 134 MB). --save-layouts settles the scenes here (simdata's layout_scene, timed) and pickles
# them; --layouts there renders and writes those very scenes with simdata's render_scene, so
# the figure is rendering + writing, and the physics time is the one measured here.

_replay: dict = {}  # per worker process: models, cfg, layouts, renderer


def _layout_init(meshes: str, views: int) -> None:
    from simdata.assets import load_models

    cfg = scene_config(meshes, views)
    _replay.update(cfg=cfg, models=load_models(cfg.meshes, cfg.units))


def _layout_one(i: int):
    from simdata.scene import layout_scene

    t0 = time.perf_counter()
    lay = layout_scene(_replay["models"], _replay["cfg"], i)
    return i, lay, time.perf_counter() - t0


def save_layouts(name: str, meshes: Path, scenes: int, views: int, dest: Path, cores: int) -> dict:
    """Settle scenes 0..scenes-1 of mesh set ``name`` on ``cores`` processes and pickle them to
    dest/layouts_<name>.pkl; the real set's meshes are copied to dest/meshes/real."""
    import multiprocessing as mp
    import pickle

    from simdata.assets import load_models

    if name == "real":
        shutil.copytree(meshes, dest / "meshes" / "real", dirs_exist_ok=True)
    names = [m.name for m in load_models(meshes)]
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(cores, _layout_init, (str(meshes), views)) as pool:
        done = sorted(pool.imap_unordered(_layout_one, range(scenes)), key=lambda r: r[0])
    wall = time.perf_counter() - t0
    physics = [s for _, _, s in done]
    info = {"set": name, "scenes": scenes, "views": views, "model_names": names,
            "physics_s_per_scene": round(sum(physics) / scenes, 4),
            "physics_s_per_image": round(sum(physics) / scenes / views, 4),
            "wall_s": round(wall, 1), "processes": cores, "machine": platform.node(),
            "processor": platform.processor() or platform.machine(), "date": time.strftime("%Y-%m-%d")}
    with open(dest / f"layouts_{name}.pkl", "wb") as f:
        pickle.dump({"info": info, "layouts": [lay for _, lay, _ in done]}, f)
    return info


def load_layouts(path) -> dict:
    import pickle

    with open(path, "rb") as f:
        return pickle.load(f)


def _replay_init(models, cfg, layouts: list) -> None:
    from simdata.render import SceneRenderer

    _replay.update(cfg=cfg, models=models, layouts=layouts,
                   renderer=SceneRenderer(models, cfg.scene.intrinsics, msaa=cfg.msaa))


def _replay_one(i: int) -> dict:
    from simdata.scene import render_scene
    from simdata.writers import make_writers, open_scene

    writer = open_scene(make_writers(_replay["cfg"]), i)
    try:
        return render_scene(_replay["models"], _replay["cfg"], _replay["renderer"], i, writer,
                            scene=_replay["layouts"][i])
    except BaseException:
        writer.abort()
        raise


def replay_layouts(spec: dict) -> dict:
    """The "scenes" measurement from saved layouts: simdata's writers and render_scene on
    ``workers`` pool processes, physics skipped. Loaded once here and handed to the workers
    (simdata.pools.worker_pool), and timed, as render_dataset does: from the prepared output
    folder to the last scene, pool start included."""
    from simdata.assets import load_models, models_fingerprint
    from simdata.pipeline import prepare_output, with_absolute_paths
    from simdata.pools import worker_pool
    from simdata.writers import make_writers

    cfg = with_absolute_paths(scene_config(spec["meshes"], spec["views"], spec["out"],
                                           spec["scenes"], spec["workers"]))
    models = load_models(cfg.meshes, cfg.units)
    saved = load_layouts(spec["layouts"])
    if [m.name for m in models] != saved["info"]["model_names"]:
        raise RuntimeError(f"{spec['layouts']} was saved for other meshes than {cfg.meshes}")
    prepare_output(cfg, models, models_fingerprint(cfg.meshes), make_writers(cfg))
    todo = list(range(spec["scenes"]))
    init = (models, cfg, saved["layouts"])
    t0 = time.perf_counter()
    if spec["workers"] == 1:
        _replay_init(*init)
        with _replay["renderer"]:  # GL freed before the interpreter's shutdown
            results = [_replay_one(i) for i in todo]
    else:
        with worker_pool(spec["workers"], _replay_init, init) as pool:
            results = list(pool.imap_unordered(_replay_one, todo))
    seconds = time.perf_counter() - t0
    timings = {k: sum(r[k] for r in results) for k in ("physics", "render", "write")}
    return {"images": sum(r["images"] for r in results), "seconds": seconds, "timings": timings,
            "scenes": len(results)}


# ---------------------------------------------------------------- process-tree RSS (/proc)

def _tree_pids(root: int) -> list[int]:
    parent = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                parent[int(p.name)] = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    tree, frontier = [root], {root}
    while frontier:
        frontier = {c for c, pp in parent.items() if pp in frontier}
        tree += sorted(frontier)
    return tree


def tree_memory_mb(root: int) -> tuple[dict[int, float], dict[int, float], dict[int, float]]:
    """({pid: resident set MB}, {pid: its high-water mark MB}, {pid: proportional set size
    MB}) of ``root`` and all its descendants, from one walk of /proc (empty without it). The
    high-water mark (VmHWM) catches peaks between two samples. PSS counts each page shared by
    n processes 1/n in each, so its sum is the memory the tree holds (summed RSS counts a
    shared page, a mapped file's or one a fork left unwritten, once per process)."""
    rss, hwm, pss = {}, {}, {}
    if not Path("/proc").is_dir():
        return rss, hwm, pss
    for pid in _tree_pids(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss[pid] = int(line.split()[1]) / 1024
                elif line.startswith("VmHWM:"):
                    hwm[pid] = int(line.split()[1]) / 1024
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss[pid] = int(line.split()[1]) / 1024
                    break
        except OSError:
            pass
    return rss, hwm, pss


def _child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def run_child(kind: str, spec: dict, tmp: Path, watch: Path | None = None, views: int = 1,
              poll_s: float = 0.25) -> tuple[dict, list]:
    """Run one measurement in a fresh process. With ``watch`` (a dataset's train_pbr folder)
    sample every ``poll_s``: (seconds, images finished, {pid: RSS MB}, {pid: high-water mark
    MB}, {pid: PSS MB}) of the process tree."""
    log = tmp / f"child-{kind}-{time.monotonic_ns()}"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, json.dumps(spec)]
    t0 = time.perf_counter()
    samples = []
    with open(f"{log}.out", "w") as fo, open(f"{log}.err", "w") as fe:
        proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, env=_child_env(), cwd=REPO)
        while proc.poll() is None:
            if watch is not None:
                done = sum(1 for d in watch.glob("[0-9]*") if d.is_dir()) if watch.is_dir() else 0
                samples.append((time.perf_counter() - t0, done * views, *tree_memory_mb(proc.pid)))
            time.sleep(poll_s)
    if proc.returncode != 0:
        err = Path(f"{log}.err").read_text()[-3000:]
        raise RuntimeError(f"{kind} run failed ({proc.returncode}):\n{err}")
    return json.loads(Path(f"{log}.out").read_text().strip().splitlines()[-1]), samples


# ---------------------------------------------------------------- mesh sets

def make_textured_set(dest: Path) -> Path:
    """Copies of assets/ycb whose texture images become 2048x2048 PNGs (the proxy's texture
    upscaled, plus seeded pixel noise so the file decodes like a photo texture); the OBJ's UVs
    and MTL (map_Kd texture_map.png) are unchanged, so the new image is what gets loaded."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    shutil.copytree(REPO / "assets" / "ycb", dest)
    for mtl in sorted(dest.glob("*/*.mtl")):
        for line in mtl.read_text().splitlines():
            parts = line.split()
            if parts and parts[0].lower() == "map_kd":
                tex = mtl.parent / parts[-1]
                img = cv2.imread(str(tex), cv2.IMREAD_COLOR)
                img = cv2.resize(img, (TEXTURE_SIDE, TEXTURE_SIDE), interpolation=cv2.INTER_CUBIC)
                noise = rng.integers(-12, 13, img.shape, dtype=np.int16)
                cv2.imwrite(str(tex), np.clip(img + noise, 0, 255).astype(np.uint8))
    return dest


def describe_set(path: Path) -> tuple[list, dict]:
    """The models as simdata loads them, and their count, triangles and texture sizes."""
    from simdata.assets import load_models

    models = load_models(path)
    sizes = []
    for m in models:
        if m.texture is not None:  # a texture file, (H,W,4)
            sizes.append([m.texture.shape[1], m.texture.shape[0]])
        else:  # a look pyrender formats itself
            img = getattr(getattr(m.mesh.visual, "material", None), "image", None) if m.textured else None
            sizes.append(list(img.size) if img is not None else None)
    return models, {"path": str(path), "models": len(models),
                    "triangles_mean": round(sum(len(m.mesh.faces) for m in models) / len(models)),
                    "textured_models": sum(s is not None for s in sizes), "texture_sizes": sizes,
                    "load_warnings": sum(len(m.warnings) for m in models)}


def mesh_sets(names: list[str], tmp: Path, real: Path = SHARED_YCB) -> tuple[dict, dict, dict]:
    """{name: path}, {name: loaded models}, {name: description} of the sets found."""
    found, missing = {}, {}
    for name in names:
        if name == "proxies":
            found[name] = REPO / "assets" / "ycb"
        elif name == "real":
            if real.is_dir():
                found[name] = real
            else:
                missing[name] = f"{real} not found"
        elif name == "textured":
            found[name] = make_textured_set(tmp / "textured_ycb")
    loaded = {n: describe_set(p) for n, p in found.items()}
    info = {n: d for n, (_, d) in loaded.items()}
    if "textured" in info:
        bad = [s for s in info["textured"]["texture_sizes"] if s != [TEXTURE_SIDE] * 2]
        if bad:
            raise RuntimeError(f"textured set: textures did not load as {TEXTURE_SIDE}x"
                               f"{TEXTURE_SIDE} images: {info['textured']['texture_sizes']}")
    return (found, {n: m for n, (m, _) in loaded.items()},
            {**info, **{n: {"skipped": why} for n, why in missing.items()}})


# ---------------------------------------------------------------- measurements

def measure_scenes(meshes: Path, workers: int, scenes: int, views: int, tmp: Path,
                   cores: int, keep: bool = False, layouts: Path | None = None,
                   msaa: int | None = None) -> dict:
    """One render_dataset run in a fresh process (with ``layouts``, a saved-layouts file: their
    replay, physics skipped); ``keep``: keep the dataset (row["_out"])."""
    out = tmp / f"ds-{time.monotonic_ns()}"
    spec = {"meshes": str(meshes), "out": str(out), "scenes": scenes, "workers": workers,
            "views": views, "layouts": str(layouts or ""), "msaa": msaa}
    from simdata.bop_layout import SPLIT

    res, samples = run_child("scenes", spec, tmp, watch=out / SPLIT, views=views)
    if not keep:
        shutil.rmtree(out, ignore_errors=True)
    n, sec, t = res["images"], res["seconds"], res["timings"]
    total = sum(t.values()) or 1.0
    row = {"workers": workers, "msaa": msaa, "images": n, "seconds": round(sec, 2),
           "images_per_s": round(n / sec, 3), "images_per_s_per_core": round(n / sec / cores, 3),
           "split": {k: round(v / total, 3) for k, v in t.items()},
           "seconds_per_image": {k: round(v / n, 4) for k, v in t.items()},
           "peak_rss_mb": peak_rss_mb(samples),
           "main_maxrss_mb": round(res["maxrss_mb"], 1)}
    done = [(s, k) for s, k, *_ in samples if k > 0]
    if len(done) >= 2 and done[-1][1] > done[0][1]:
        (s0, k0), (s1, k1) = done[0], done[-1]
        # a scene finishes between two polls: the first is seen up to poll_s late, so this
        # rate can be high by poll_s / (s1 - s0); fine for runs of tens of seconds
        row["steady_images_per_s"] = round((k1 - k0) / (s1 - s0), 3)
    row["_samples"], row["_out"] = samples, out
    return row


def peak_rss_mb(samples: list) -> float:
    """Peak RSS of the process tree: the largest sum over live processes of each one's
    high-water mark (exact for one process; for several, their peaks may not coincide)."""
    return round(max([sum(h.values()) for _, _, _, h, _ in samples] or [0.0]), 1)


def memory_report(samples: list, rss_every: int) -> dict:
    """RSS of the process tree at 100 images vs at the end of the run (the last sample with
    as many processes alive as at 100 images, so a pool shutting down is not the end), and its
    PSS (a page shared by n processes counts 1/n in each: the fork server's pages, which its
    children share, and mapped texture files count once in the sum)."""
    live = [(s, k, r, p) for s, k, r, _, p in samples if r]
    ref = next(((s, k, r, p) for s, k, r, p in live if k >= 100), None)
    if ref is None:
        return {"error": "fewer than 100 images sampled"}
    end = [x for x in live if len(x[2]) == len(ref[2]) and x[1] >= ref[1]][-1]
    at100, at_end = sum(ref[2].values()), sum(end[2].values())
    thinned, next_k = [], 0
    for _, k, r, _ in live:
        if k >= next_k:
            thinned.append([k, round(sum(r.values()), 1)])
            next_k = (k // rss_every + 1) * rss_every
    return {"images_at_ref": ref[1], "rss_mb_at_100": round(at100, 1),
            "images_at_end": end[1], "rss_mb_end": round(at_end, 1),
            "growth_mb": round(at_end - at100, 1), "growth_frac": round(at_end / at100 - 1, 4),
            "per_process_mb_at_100": [round(v, 1) for _, v in sorted(ref[2].items())],
            "per_process_mb_end": [round(v, 1) for _, v in sorted(end[2].items())],
            "pss_mb_at_100": round(sum(ref[3].values()), 1),
            "pss_mb_end": round(sum(end[3].values()), 1),
            "peak_sampled_pss_mb": round(max(sum(p.values()) for *_, p in live), 1),
            "peak_rss_mb": peak_rss_mb(samples),
            "peak_sampled_rss_mb": round(max(sum(r.values()) for _, _, r, _ in live), 1),
            "processes": len(ref[2]), "samples_images_mb": thinned}


def plain_spec(models, cfg, scene_indices, layouts: list | None = None) -> dict:
    from simdata.scene import layout_scene

    K = cfg.scene.intrinsics
    scenes = []
    for i in scene_indices:
        lay = layouts[i] if layouts else layout_scene(models, cfg, i)
        scenes.append({
            "objects": [[models[p.model_index].name, p.T_world_obj.tolist()] for p in lay.objects],
            "table": [*lay.table.size_xy, lay.table.thickness],
            "ambient": list(lay.lighting.ambient),
            "lights": [[list(map(float, d)), float(w)]
                       for d, w in zip(lay.lighting.directions, lay.lighting.intensities)],
            "cameras": [T.tolist() for T in lay.cameras]})
    return {"width": K.width, "height": K.height, "K": [K.fx, K.fy, K.cx, K.cy],
            "models": {m.name: {"path": str(m.source), "scale": m.scale} for m in models},
            "scenes": scenes}


def measure_plain(spec: dict, processes: int, tmp: Path, cores: int) -> dict:
    """benchmarks/plain_pyrender.py as ``processes`` copies, each on its share of the scenes
    of ``spec`` (see plain_spec), started together once all have loaded; images/s = all
    images / the slowest copy's loop."""
    procs, errs = [], []
    for p in range(processes):
        spec_file = tmp / f"plain-{p}-{time.monotonic_ns()}.json"
        spec_file.write_text(json.dumps({**spec, "scenes": spec["scenes"][p::processes]}))
        errs.append(spec_file.with_suffix(".err"))
        with open(errs[-1], "w") as fe:
            procs.append(subprocess.Popen(
                [sys.executable, str(PLAIN), str(spec_file), str(tmp / f"plain-out-{p}"), "--wait"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=fe, text=True, env=_child_env()))
    for pr, err in zip(procs, errs):
        if pr.stdout.readline().strip() != "ready":
            raise RuntimeError(f"plain_pyrender.py failed before rendering:\n{err.read_text()[-2000:]}")
    for pr in procs:
        pr.stdin.write("go\n")
        pr.stdin.flush()
    results = []
    for pr, err in zip(procs, errs):
        out, _ = pr.communicate()
        if pr.returncode != 0:
            raise RuntimeError(f"plain_pyrender.py failed ({pr.returncode}):\n{err.read_text()[-2000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    for p in range(processes):
        shutil.rmtree(tmp / f"plain-out-{p}", ignore_errors=True)
    n = sum(r["images"] for r in results)
    sec = max(r["seconds"] for r in results)
    render, write = (sum(r[k] for r in results) for k in ("render_s", "write_s"))
    return {"processes": processes, "images": n, "seconds": round(sec, 2),
            "images_per_s": round(n / sec, 3), "images_per_s_per_core": round(n / sec / cores, 3),
            "split": {"render": round(render / (render + write), 3),
                      "write": round(write / (render + write), 3)}}


def measure_startup(meshes: Path, tmp: Path, user_env: dict) -> dict:
    """`simdata render` of 1 scene x 1 view, process start -> first image on disk (the scene
    folder appears when its files are complete; if it is never seen, the process's exit),
    with an empty cache and then warm."""
    from simdata.bop_layout import SPLIT

    cache = tmp / f"startup-cache-{time.monotonic_ns()}"
    env = dict(user_env, SIMDATA_CACHE=str(cache))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    res = {"pyopengl_platform_set": "PYOPENGL_PLATFORM" in user_env}
    for label in ("cold", "warm"):
        out = tmp / f"startup-{label}-{time.monotonic_ns()}"
        cmd = [sys.executable, "-c", "import sys; from simdata.cli import main; sys.exit(main())",
               "render", "--meshes", str(meshes), "--out", str(out), "--scenes", "1",
               "--views", "1", "--objects", f"{OBJECTS}:{OBJECTS}", "--no-progress"]
        first = out / SPLIT / "000000"
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        t_first = None
        while proc.poll() is None:
            if t_first is None and first.is_dir():
                t_first = time.perf_counter() - t0
            time.sleep(0.005)
        t_exit = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"start-up run failed: {proc.stderr.read().decode()[-2000:]}")
        res[f"{label}_s"] = round(t_first if t_first is not None else t_exit, 2)
        res[f"{label}_first_image_seen"] = t_first is not None
        res[f"{label}_exit_s"] = round(t_exit, 2)
        shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    return res


# ---------------------------------------------------------------- GPU

def gpu_name(device: int) -> str | None:
    """The NVIDIA GPU's name from nvidia-smi (index ``device``), None when there is none."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader",
                              "-i", str(device)], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    name = out.stdout.strip().splitlines()[0].strip() if out.returncode == 0 and out.stdout.strip() else ""
    return name or None


# ---------------------------------------------------------------- main

def mark(ok: bool | None) -> str:
    return "-" if ok is None else ("met" if ok else "NOT met")


def main():
    if sys.argv[1:2] == ["--child"]:
        return child_main(sys.argv[2], json.loads(sys.argv[3]))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=["proxies", "real", "textured"],
                    choices=["proxies", "real", "textured"], help="mesh sets to measure")
    ap.add_argument("--workers", type=int, nargs="+",
                    help="worker counts [1 and the cores; with --gpu 1 2 4 8]")
    ap.add_argument("--scenes", type=int, help="scenes per run [25; with --gpu 250]")
    ap.add_argument("--views", type=int, default=4, help="views per scene")
    ap.add_argument("--long-images", type=int, default=1000,
                    help="images of the memory run (0: none)")
    ap.add_argument("--long-set", default="", help="mesh set of the memory run [real if present, "
                    "else the first set]")
    ap.add_argument("--long-workers", type=int, default=1, help="workers of the memory run")
    ap.add_argument("--rss-every", type=int, default=50, help="RSS samples kept every N images")
    ap.add_argument("--plain-scenes", type=int,
                    help="scenes the plain pyrender script renders per measurement, shared among "
                         "its copies [8; with --gpu 64]")
    ap.add_argument("--msaa-off-sets", nargs="*", default=["real"],
                    choices=["proxies", "real", "textured"],
                    help="mesh sets also rendered with --msaa 0 (no antialiasing of the RGB), "
                         "at every worker count [real]")
    ap.add_argument("--crops", type=int, default=2000,
                    help="crops per mesh set and worker count (0: none); a user renders thousands, "
                         "so the pool start-up weighs as little as it will for them")
    ap.add_argument("--crop-size", type=int, default=64)
    ap.add_argument("--crop-workers", type=int, nargs="+",
                    help="worker counts of the crops part [those of --workers]")
    ap.add_argument("--skip", nargs="*", default=[], choices=["plain", "startup"],
                    help="parts to leave out")
    ap.add_argument("--gpu", action=argparse.BooleanOptionalAction, default=None,
                    help="EGL on a GPU [when nvidia-smi lists one]")
    ap.add_argument("--egl-device", type=int, default=int(os.environ.get("EGL_DEVICE_ID", "0")),
                    help="EGL_DEVICE_ID (and nvidia-smi index) of the GPU")
    ap.add_argument("--save-layouts", default="", metavar="DIR",
                    help="settle the scenes of every run (physics, timed) and save them in DIR, "
                         "with the real meshes, for a machine without pybullet; then stop. "
                         "Counts default to --gpu's")
    ap.add_argument("--layouts", default="", metavar="DIR",
                    help="render the scenes saved by --save-layouts in DIR instead of settling "
                         "them (rendering + writing measured; physics as timed where saved); "
                         "the real set comes from DIR/meshes/real when ../shared/ycb is absent; "
                         "no start-up part (it runs physics)")
    ap.add_argument("--out", default="", help="JSON [benchmarks/results/render_throughput.json; "
                    "with --gpu render_throughput_gpu_<device>.json]")
    args = ap.parse_args()
    t_start = time.perf_counter()

    from results_io import save_results
    from simdata.render import choose_gl_platform

    logging.getLogger("simdata").setLevel(logging.ERROR)  # load warnings: counted in the JSON

    user_env = dict(os.environ)  # for the start-up runs: what a user's shell would have
    gpu = gpu_name(args.egl_device)
    use_gpu = bool(gpu) if args.gpu is None else args.gpu
    if use_gpu:
        os.environ["PYOPENGL_PLATFORM"] = "egl"
        os.environ["EGL_DEVICE_ID"] = str(args.egl_device)  # inherited by every worker
        user_env.update(PYOPENGL_PLATFORM="egl", EGL_DEVICE_ID=str(args.egl_device))
    gl = choose_gl_platform()  # probed once here; children inherit $PYOPENGL_PLATFORM
    from simdata.pools import usable_cores

    cores = usable_cores()
    workers = sorted(set(args.workers or ([1, 2, 4, 8] if use_gpu else [1, cores])))
    crop_workers = sorted(set(args.crop_workers or workers))
    if min(workers + crop_workers) < 1:
        sys.exit("--workers and --crop-workers: counts of at least 1")
    gpu_counts = use_gpu or bool(args.save_layouts)
    scenes = args.scenes or (250 if gpu_counts else 25)
    plain_scenes = args.plain_scenes or (64 if gpu_counts else 8)
    if args.save_layouts:
        dest = Path(args.save_layouts)
        dest.mkdir(parents=True, exist_ok=True)
        n = max(scenes, plain_scenes, -(-args.long_images // args.views))
        with tempfile.TemporaryDirectory(prefix="render-bench-") as tmp_name:
            paths, _, _ = mesh_sets(args.sets, Path(tmp_name))
            for name, path in paths.items():
                print(f"settling {n} scenes of {name} on {cores} processes ...", flush=True)
                print(f"  {save_layouts(name, path, n, args.views, dest, cores)}", flush=True)
        return
    layouts: dict = {}
    if args.layouts:
        if "startup" not in args.skip:
            print("--layouts: no start-up part (`simdata render` runs physics)")
            args.skip.append("startup")
        for name in args.sets:
            f = Path(args.layouts) / f"layouts_{name}.pkl"
            if not f.is_file():
                sys.exit(f"--layouts {args.layouts}: no {f.name}; save it with --save-layouts "
                         f"--sets {name}")
            layouts[name] = (f, load_layouts(f))
            need = max(scenes, plain_scenes, -(-args.long_images // args.views))
            if layouts[name][1]["info"]["scenes"] < need or layouts[name][1]["info"]["views"] != args.views:
                sys.exit(f"{f} holds {layouts[name][1]['info']['scenes']} scenes of "
                         f"{layouts[name][1]['info']['views']} views; this run needs {need} of {args.views}")
    target_rate = TARGETS["images_per_s_gpu" if use_gpu else "images_per_s_cpu"]
    if args.out:
        out_path = Path(args.out)
    elif use_gpu:
        slug = re.sub(r"[^a-z0-9]+", "_", (gpu or "unknown").lower()).strip("_")
        out_path = REPO / "benchmarks" / "results" / f"render_throughput_gpu_{slug}.json"
    else:
        out_path = REPO / "benchmarks" / "results" / "render_throughput.json"

    runs, plain, crops, startup, memory, glinfo, sets_info = [], [], [], [], None, {}, {}

    def snapshot(partial: bool = True) -> dict:
        """The result so far, saved (``partial``: after each measurement, so that a run cut
        short, e.g. by a device's time limit, keeps what it measured)."""
        for r in runs:
            base = next((p for p in plain if p["set"] == r["set"] and p["processes"] == r["workers"]), None)
            r["plain_images_per_s"] = base["images_per_s"] if base else None
            r["ratio_vs_plain"] = round(r["images_per_s"] / base["images_per_s"], 2) if base else None
            r["met"] = {"images_per_s": r["images_per_s"] >= target_rate,
                        "ratio_vs_plain": None if base is None else r["ratio_vs_plain"] >= TARGETS["ratio_vs_plain"]}
        if memory and "growth_frac" in memory:
            memory["met"] = memory["growth_frac"] <= TARGETS["rss_growth_frac"]

        result = {
            **({"partial": True} if partial else {}),
            "benchmark": "render_throughput", "date": time.strftime("%Y-%m-%d"),
            "machine": {"cores": cores, "cpu_count": os.cpu_count(), "platform": platform.platform(),
                        "processor": platform.processor() or platform.machine(),
                        "gl_platform": gl, "gl": glinfo, "gpu": gpu if use_gpu else None,
                        "egl_device_id": args.egl_device if use_gpu else None},
            "setup": {"width": 640, "height": 480, "objects_per_scene": OBJECTS, "views": args.views,
                      "scenes_per_run": scenes, "long_images": args.long_images,
                      "plain_scenes": plain_scenes, "crops": args.crops,
                      "crop_size": args.crop_size,
                      "modalities": "rgb jpg, depth png, mask + mask_visib png, normals png, depth_m npy",
                      "plain_script": "benchmarks/plain_pyrender.py: colour+depth, 1 instance-id "
                                      "pass, 1 silhouette pass per object, PNGs via cv2"},
            "targets": {**TARGETS, "images_per_s": target_rate},
            "physics": ("settled here" if not layouts else
                        {"replayed": "scenes settled on another machine (--save-layouts): the split's "
                                     "physics is ~0 here; theirs is below",
                         **{n: d["info"] for n, (_, d) in layouts.items()}}),
            "mesh_sets": sets_info, "runs": runs, "plain": plain, "crops": crops,
            "startup": startup, "memory": memory,
        }

        save_results(out_path, result, t_start)
        return result

    with tempfile.TemporaryDirectory(prefix="render-bench-") as tmp_name:
        tmp = Path(tmp_name)
        glinfo, _ = run_child("glinfo", {}, tmp)
        glinfo.pop("maxrss_mb", None)
        if use_gpu and "llvmpipe" in glinfo.get("renderer", "").lower():
            print(f"WARNING: --gpu, but EGL device {args.egl_device} is {glinfo['renderer']}: "
                  f"set --egl-device to the GPU's EGL index", file=sys.stderr)
        print(f"GL {gl}: {glinfo.get('renderer')}; {cores} cores; GPU {gpu if use_gpu else 'not used'}")
        real = SHARED_YCB
        if args.layouts and not SHARED_YCB.is_dir():
            real = Path(args.layouts) / "meshes" / "real"
        paths, models, sets_info = mesh_sets(args.sets, tmp, real)
        for name, info in sets_info.items():
            print(f"  {name}: {info}" if "skipped" in info else
                  f"  {name}: {info['models']} models, {info['triangles_mean']} triangles on "
                  f"average, {info['textured_models']} textured ({info['path']})")
        long_set = args.long_set or ("real" if "real" in paths else next(iter(paths)))
        long_scenes = -(-args.long_images // args.views) if args.long_images > 0 else 0

        kept = {}
        for name, path in paths.items():
            for w in sorted(set(workers) | ({args.long_workers} if name == long_set and long_scenes else set())):
                is_long = name == long_set and w == args.long_workers and long_scenes > 0
                n_sc = long_scenes if is_long else scenes
                print(f"scenes: {name}, {w} worker(s), {n_sc} scenes x {args.views} views ...", flush=True)
                keep = args.crops > 0 and not is_long and name not in kept
                row = measure_scenes(path, w, n_sc, args.views, tmp, cores, keep,
                                     layouts[name][0] if name in layouts else None)
                samples, out = row.pop("_samples"), row.pop("_out")
                if keep:  # the crops baseline cuts this dataset
                    kept[name] = (out, row["images"])
                if is_long:
                    memory = {"set": name, "workers": w, "images": row["images"],
                              "main_maxrss_mb": row["main_maxrss_mb"],
                              **memory_report(samples, args.rss_every)}
                runs.append({"set": name, **row})
                print(f"  {row['images_per_s']:.2f} images/s", flush=True)
                snapshot()
        for name in args.msaa_off_sets:
            if name not in paths or name in layouts:
                why = "replayed layouts" if name in layouts else "set not in this run"
                print(f"--msaa-off-sets {name}: not measured ({why})")
                continue
            for w in workers:
                print(f"scenes: {name}, {w} worker(s), {scenes} scenes x {args.views} views, "
                      f"--msaa 0 ...", flush=True)
                row = measure_scenes(paths[name], w, scenes, args.views, tmp, cores, msaa=0)
                row.pop("_samples"), row.pop("_out")
                runs.append({"set": name, **row})
                print(f"  {row['images_per_s']:.2f} images/s", flush=True)
                snapshot()
        if "plain" not in args.skip:
            for name, path in paths.items():
                spec = plain_spec(models[name], scene_config(path, args.views), range(plain_scenes),
                                  layouts[name][1]["layouts"] if name in layouts else None)
                long_w = {args.long_workers} if name == long_set and long_scenes else set()
                for w in sorted(set(workers) | long_w):
                    print(f"plain pyrender: {name}, {w} process(es), {plain_scenes} scenes ...",
                          flush=True)
                    plain.append({"set": name, **measure_plain(spec, w, tmp, cores)})
                    print(f"  {plain[-1]['images_per_s']:.2f} images/s", flush=True)
                    snapshot()

        def crop_row(name, path, w, msaa=None):
            tag = f"{name}-w{w}" + ("" if msaa is None else f"-msaa{msaa}")
            res, _ = run_child("crops", {"meshes": str(path), "out": str(tmp / f"crops-{tag}"),
                                         "count": args.crops, "size": args.crop_size,
                                         "workers": w, "msaa": msaa}, tmp)
            shutil.rmtree(tmp / f"crops-{tag}", ignore_errors=True)
            rate = res["crops"] / res["seconds"]
            return {"set": name, "workers": w, **({} if msaa is None else {"msaa": msaa}),
                    "crops": res["crops"], "seconds": round(res["seconds"], 2),
                    "crops_per_s": round(rate, 2), "crops_per_s_per_core": round(rate / cores, 2),
                    "met": rate / cores >= TARGETS["crops_per_s_per_core"]}

        for name, path in paths.items() if args.crops > 0 else []:
            for w in crop_workers:  # per core: the rate over every core, whatever the worker count
                print(f"crops: {name}, {args.crops} of {args.crop_size}x{args.crop_size}, "
                      f"{w} worker(s) ...", flush=True)
                row = crop_row(name, path, w)
                if name in kept and w == min(crop_workers):  # baseline: scenes, then `simdata crops`
                    ds, images = kept.pop(name)
                    cut, _ = run_child("cut", {"dataset": str(ds), "out": str(tmp / f"cut-{name}"),
                                               "size": args.crop_size}, tmp)
                    one = next(r for r in runs if r["set"] == name and r["workers"] == min(workers))
                    base = cut["crops"] / (images / one["images_per_s"] + cut["seconds"])
                    row["scenes_then_cut"] = {"crops": cut["crops"],
                                              "cut_seconds": round(cut["seconds"], 2),
                                              "crops_per_s": round(base, 2),
                                              "mode_crops_speedup": round(row["crops_per_s"] / base, 2)}
                    shutil.rmtree(ds, ignore_errors=True)
                    shutil.rmtree(tmp / f"cut-{name}", ignore_errors=True)
                crops.append(row)
                print(f"  {row['crops_per_s']:.1f} crops/s", flush=True)
                snapshot()
                if name in args.msaa_off_sets:  # the same crops without antialiasing
                    print(f"crops: {name}, --msaa 0, {w} worker(s) ...", flush=True)
                    crops.append(crop_row(name, path, w, msaa=0))
                    print(f"  {crops[-1]['crops_per_s']:.1f} crops/s", flush=True)
                    snapshot()
        if "startup" not in args.skip:
            for name, path in paths.items():
                print(f"start-up: {name} ...", flush=True)
                s = measure_startup(path, tmp, user_env)
                startup.append({"set": name, **s, "met": s["warm_s"] < TARGETS["startup_warm_s"]})
                snapshot()

    result = snapshot(partial=False)

    print(f"\n{'mesh set':<9} {'workers':>7} {'images':>6} {'img/s':>7} {'/core':>6} {'steady':>7} "
          f"{'physics':>7} {'render':>6} {'write':>5} {'plain':>7} {'ratio':>6}  "
          f"target >= {target_rate:g} img/s, >= {TARGETS['ratio_vs_plain']}x plain")
    for r in runs:
        sp, ratio = r["split"], r["ratio_vs_plain"]
        plain_s = f"{r['plain_images_per_s']:>7.2f}" if ratio is not None else f"{'-':>7}"
        ratio_s = f"{ratio:>5.2f}x" if ratio is not None else f"{'-':>6}"
        label = r["set"] + (" msaa0" if r.get("msaa", 4) == 0 else "")
        print(f"{label:<9} {r['workers']:>7} {r['images']:>6} {r['images_per_s']:>7.2f} "
              f"{r['images_per_s_per_core']:>6.2f} {r.get('steady_images_per_s', float('nan')):>7.2f} "
              f"{sp['physics']:>7.0%} {sp['render']:>6.0%} {sp['write']:>5.0%} {plain_s} {ratio_s}  "
              f"{mark(r['met']['images_per_s'])}, {mark(r['met']['ratio_vs_plain'])}")
    for p in plain:
        print(f"  plain pyrender {p['set']}, {p['processes']} process(es): {p['images_per_s']:.2f} "
              f"img/s ({p['images_per_s_per_core']:.2f} per core), render {p['split']['render']:.0%}"
              f", write {p['split']['write']:.0%}")
    for c in crops:
        cut = c.get("scenes_then_cut")
        vs = (f" ({cut['mode_crops_speedup']:.1f}x rendering scenes then cutting them: "
              f"{cut['crops_per_s']:.1f} crops/s)" if cut else "")
        label = c["set"] + (" msaa0" if c.get("msaa") == 0 else "")
        print(f"crops {args.crop_size}x{args.crop_size} {label:<12} {c.get('workers', 1)} worker(s) "
              f"{c['crops_per_s']:>7.1f} crops/s, "
              f"{c['crops_per_s_per_core']:>6.1f} per core{vs}  target >= "
              f"{TARGETS['crops_per_s_per_core']:g} per core: {mark(c['met'])}")
    for s in startup:
        print(f"start-up {s['set']:<9} cold {s['cold_s']:.2f} s, warm {s['warm_s']:.2f} s (to the "
              f"first image; exit {s['cold_exit_s']:.2f} / {s['warm_exit_s']:.2f} s)  target warm < "
              f"{TARGETS['startup_warm_s']:g} s: {mark(s['met'])}")
    if memory and "growth_frac" in memory:
        print(f"memory {memory['set']}, {memory['workers']} worker(s), {memory['processes']} "
              f"process(es): RSS {memory['rss_mb_at_100']:.0f} MB at {memory['images_at_ref']} images, "
              f"{memory['rss_mb_end']:.0f} MB at {memory['images_at_end']} ({memory['growth_frac']:+.1%})"
              f"; peak {memory['peak_rss_mb']:.0f} MB (high-water marks; {memory['peak_sampled_rss_mb']:.0f}"
              f" MB in the samples); PSS {memory['pss_mb_at_100']:.0f} -> {memory['pss_mb_end']:.0f} MB"
              f"  target growth <= "
              f"{TARGETS['rss_growth_frac']:.0%}: {mark(memory['met'])}")
    elif memory:
        print(f"memory: {memory['error']}")
    print(f"saved {out_path} ({result['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
