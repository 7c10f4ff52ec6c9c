"""render_dataset: meshes -> settled scenes -> rendered views -> a dataset on disk, in BOP
(and COCO beside it, ``formats``) through the writers of simdata.writers.

Resumable and order-independent: scene i is drawn from the generator of (seed, i) and written
atomically, so a rerun skips finished scenes, and any number of workers, local processes or
Ray tasks on a cluster (simdata.cluster), gives the same files.
"""
from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import time
import uuid
from collections import deque
from concurrent.futures import as_completed
from contextlib import ExitStack, closing
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterator

from . import __version__
from .assets import load_models, models_fingerprint
from .errors import SimdataError
from .pools import worker_executor, start_fork_server, usable_cores
from .fileio import disk_error, write_json_atomic
from .config import RenderConfig
from .render import DEFAULT_MSAA, SceneRenderer, choose_gl_platform, resolve_msaa
from .symmetry import symmetries_for_models
from .scene import layout_scene, render_scene
from .types import ObjectModel, Scene
from .writers import DatasetWriter, SceneWriters, make_writers, open_scene

log = logging.getLogger(__name__)

SETTINGS_FILE = "simdata_settings.json"
# Settings that may change between runs into the same --out without changing its content.
# "symmetries" only changes models/models_info.json, which every run rewrites (and datasets made
# before the option existed have no such key).
_FREE_KEYS = {"scenes", "workers", "ray", "out", "meshes", "scene.physics.cache_dir", "symmetries"}
# Settings added after datasets were made with them: what those datasets were made with.
_NEWER_KEYS = {"config.formats": ["bop"], "config.msaa": 4}


@dataclass
class RenderSummary:
    out: Path
    scenes_done: int = 0
    scenes_skipped: int = 0
    images: int = 0
    instances: int = 0
    dropped: int = 0
    seconds: float = 0.0
    timings: dict = field(default_factory=lambda: {"physics": 0.0, "render": 0.0, "write": 0.0})
    platform: str = ""

    def line(self) -> str:
        rate = self.images / self.seconds if self.seconds else 0.0
        return (f"rendered {self.scenes_done} scenes ({self.images} images, {self.instances} "
                f"object instances, {self.dropped} dropped by physics) in {self.seconds:.1f} s "
                f"= {rate:.2f} img/s; skipped {self.scenes_skipped} finished scenes; "
                f"GL {self.platform}; out: {self.out}")


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = list(v) if isinstance(v, tuple) else v
    return out


def dataset_settings(cfg: RenderConfig, fingerprint: dict) -> dict:
    """What is saved in simdata_settings.json and compared when rerunning into the same --out."""
    return {"simdata_version": __version__, "config": json.loads(json.dumps(asdict(cfg))),
            "models": fingerprint}


def _check_settings(path: Path, new: dict) -> None:
    old = json.loads(path.read_text())
    a, b = {**_NEWER_KEYS, **_flatten(old)}, _flatten(new)
    diffs = [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
             if k.split("config.", 1)[-1] not in _FREE_KEYS and a.get(k) != b.get(k)
             and k != "simdata_version"]
    if diffs:
        shown = "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")
        raise SimdataError(f"{path.parent} was rendered with other settings ({shown}); use a new "
                           f"--out, or rerun with the settings saved in {path}")


def prepare_output(cfg: RenderConfig, models: list[ObjectModel], fingerprint: dict,
                   writers: list[DatasetWriter]) -> Path:
    """Create --out (or check it matches), then let every writer prepare its dataset-level
    files and clear what a killed run left."""
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise SimdataError(f"--out {out} is a file; give a folder path")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise disk_error(out, e) from None
    settings = dataset_settings(cfg, fingerprint)
    path = out / SETTINGS_FILE
    if path.exists():
        _check_settings(path, settings)
    elif any(not (p.is_dir() and not any(p.iterdir())) for p in out.iterdir()):
        raise SimdataError(f"--out {out} is not empty and holds no simdata dataset; "
                           f"choose an empty or new folder")
    # settings first: a run killed right after this is recognised (and resumed) by the next
    write_json_atomic(path, settings)
    symmetries = symmetries_for_models(models, cfg.symmetries)
    for writer in writers:
        writer.prepare(models, symmetries)
    return out


def render_one_scene(models: list[ObjectModel], cfg: RenderConfig, scene_index: int,
                     renderer: SceneRenderer, scene: Scene | None = None) -> dict:
    """Render scene ``scene_index`` in every format that lacks it: what this process, pool
    workers and Ray tasks run. ``scene``: its layout, settled in another process (else here).
    Returns render_scene's counts and timings, or {"scene": i, "error": message} for a
    SimdataError (the scene is dropped)."""
    out = Path(cfg.out)
    if not (out / SETTINGS_FILE).is_file():
        return {"scene": scene_index, "error": (
            f"--out {out} is not visible on {socket.gethostname()}; with --ray, put --out on "
            f"storage that every node mounts under the same path")}
    writer = SceneWriters([])  # aborting it is a no-op if opening the scene fails
    try:
        writer = open_scene(make_writers(cfg), scene_index)
        return render_scene(models, cfg, renderer, scene_index, writer, scene)
    except SimdataError as e:
        writer.abort()
        return {"scene": scene_index, "error": str(e)}
    except BaseException:
        writer.abort()
        raise


# Per-process state of pool workers (set once by the pool initializer, never in the parent).
_worker: dict = {}


def _init_worker(models, cfg):
    _worker["models"], _worker["cfg"] = models, cfg
    _worker["renderer"] = SceneRenderer(models, cfg.scene.intrinsics, msaa=cfg.msaa)


def _work(scene_index: int) -> dict:
    return render_one_scene(_worker["models"], _worker["cfg"], scene_index, _worker["renderer"])


# Per-process renderer of Ray tasks: a worker process runs many tasks of a run, and building a
# renderer (GL context, meshes uploaded) per scene costs ~10 % here. Keyed by a token per run,
# since a renderer holds that run's meshes and camera.
_task_renderer: dict = {}


def render_scene_task(models: list[ObjectModel], cfg: RenderConfig, run_token: str,
                      scene_index: int) -> dict:
    """render_one_scene as a Ray task, with a renderer kept from the process's last task of
    the same run (``run_token``)."""
    if _task_renderer.get("token") != run_token:
        old = _task_renderer.pop("renderer", None)
        if old is not None:
            old.close()
        _task_renderer.update(token=run_token,
                              renderer=SceneRenderer(models, cfg.scene.intrinsics, msaa=cfg.msaa))
    return render_one_scene(models, cfg, scene_index, _task_renderer["renderer"])


def pending_scenes(writers: list[DatasetWriter], scenes: int) -> list[int]:
    """Scenes below ``scenes`` that some format lacks."""
    return [i for i in range(scenes) if not all(w.has_scene(i) for w in writers)]


def with_absolute_paths(cfg: RenderConfig) -> RenderConfig:
    """``cfg`` with the folders that scenes read or write as absolute paths: a Ray task on
    another node does not run in the driver's working directory, and a scene records the
    image files it used, so local runs take the same paths for the same records."""
    def absolute(path: str) -> str:
        return str(Path(path).resolve()) if path else path

    r, physics = cfg.randomize, cfg.scene.physics
    return replace(cfg, out=absolute(cfg.out),
                   randomize=replace(r, texture_dir=absolute(r.texture_dir),
                                     background_dir=absolute(r.background_dir)),
                   scene=replace(cfg.scene, physics=replace(physics,
                                                            cache_dir=absolute(physics.cache_dir))))


def layout_models(models: list[ObjectModel]) -> list[ObjectModel]:
    """``models`` as scene layout and physics read them: the same geometry without its look
    (textures, vertex colours), for a process that only settles scenes and need not hold every
    texture. Vertices and faces are the same arrays, so the layouts are the same."""
    import trimesh

    return [replace(m, mesh=trimesh.Trimesh(vertices=m.mesh.vertices, faces=m.mesh.faces,
                                            process=False),
                    content_key="", vertex_colors=None, texture=None)  # the look as loaded
            for m in models]


def portable_models(models: list[ObjectModel]) -> list[ObjectModel]:
    """``models`` for processes on other machines (Ray tasks), which have no file of this
    machine's disk cache: their textures travel in memory."""
    return [replace(m, texture=m.texture.in_memory()) if m.texture is not None else m
            for m in models]


def _init_physics(models, cfg):
    _worker["models"], _worker["cfg"] = models, cfg


def _settle(scene_index: int) -> tuple:
    """(scene_index, layout_scene's Scene or a SimdataError's message, seconds) in the physics
    process of a one-worker run."""
    t0 = time.perf_counter()
    try:
        scene = layout_scene(_worker["models"], _worker["cfg"], scene_index)
    except SimdataError as e:
        scene = str(e)
    return scene_index, scene, time.perf_counter() - t0


KEPT = "finished scenes are kept: rerun the command to resume it"
PHYSICS_AHEAD_MIN = 4  # scenes: fewer do not pay for the physics process's start (~1 s)
PHYSICS_AHEAD = 3      # scenes settled or settling ahead of the one rendered


def _physics_elsewhere(cfg: RenderConfig, scenes: int) -> bool:
    """Whether a run with ``scenes`` scenes to do settles them in a second process: one worker,
    enough scenes to pay for that process's start, and a core for it."""
    return cfg.workers == 1 and scenes >= PHYSICS_AHEAD_MIN and usable_cores() > 1


def _render_settled(models, cfg: RenderConfig, renderer: SceneRenderer, physics, ahead: deque,
                    rest: Iterator[int]) -> Iterator[dict]:
    """Render the scenes that ``physics`` (the one-worker run's second process) settles, in
    order: ``ahead`` holds its futures, ``rest`` the scenes not yet submitted."""
    while True:
        ahead.extend(physics.submit(_settle, i)
                     for i in itertools.islice(rest, PHYSICS_AHEAD - len(ahead)))
        if not ahead:
            return
        i, scene, seconds = ahead.popleft().result()
        if isinstance(scene, str):
            yield {"scene": i, "error": scene}
            continue
        stats = render_one_scene(models, cfg, i, renderer, scene)
        if "error" not in stats:
            stats["physics"] = seconds
        yield stats


def _render_here(models, cfg: RenderConfig, todo: list[int]) -> Iterator[dict]:
    """Scene results from this process, or from a pool of --workers processes. With one
    worker, a few scenes to do and more than one core, a second process settles the next
    scenes while this one renders (pybullet holds the GIL, so a thread could not): physics
    then runs on the core that rendering leaves idle, and the layouts are the very ones this
    process would have made (pools already rely on that). This process settles the first scene
    itself, while the second one starts."""
    if _physics_elsewhere(cfg, len(todo)):
        with worker_executor(1, _init_physics, (layout_models(models),), (cfg,),
                             who="the process settling the scenes' physics", then=KEPT) as physics:
            ahead: deque = deque()  # a few scenes ahead: layouts can hold distractor meshes
            rest = iter(todo[1:])
            ahead.extend(physics.submit(_settle, i) for i in itertools.islice(rest, PHYSICS_AHEAD))
            with SceneRenderer(models, cfg.scene.intrinsics, msaa=cfg.msaa) as renderer:
                # the first scene is settled here: the second process takes about as long to
                # start (Python, imports, the models) as this one takes to settle and render it
                yield render_one_scene(models, cfg, todo[0], renderer)
                yield from _render_settled(models, cfg, renderer, physics, ahead, rest)
    elif cfg.workers == 1 or len(todo) <= 1:
        with SceneRenderer(models, cfg.scene.intrinsics, msaa=cfg.msaa) as renderer:
            for i in todo:
                yield render_one_scene(models, cfg, i, renderer)
    else:
        with worker_executor(min(cfg.workers, len(todo)), _init_worker, (models,), (cfg,),
                             who="a rendering worker process", then=KEPT) as pool:
            yield from (done.result() for done in as_completed([pool.submit(_work, i)
                                                                for i in todo]))


def render_dataset(cfg: RenderConfig, progress: bool = True) -> RenderSummary:
    """Render ``cfg.scenes`` scenes into ``cfg.out`` (resuming), in every format of
    ``cfg.formats``, here or as Ray tasks (``cfg.ray``); returns a summary."""
    from tqdm import tqdm

    cfg.validate()
    if not cfg.ray and (cfg.workers > 1 or _physics_elsewhere(cfg, cfg.scenes)):
        start_fork_server()  # the pool's processes: their imports overlap loading the models
    models = load_models(cfg.meshes, cfg.units, cfg.max_texture)
    fingerprint = models_fingerprint(cfg.meshes)
    with ExitStack() as stack:
        cluster = None
        if cfg.ray:  # connect before --out is touched: a bad address leaves nothing behind
            from .cluster import RAY_ENV_VARS, RayScenes

            env = {k: os.environ[k] for k in RAY_ENV_VARS if k in os.environ}
            cluster = stack.enter_context(RayScenes(cfg.ray, env))
            if cfg.workers != 1:
                log.warning("--workers %d is ignored with --ray: Ray runs one scene per CPU of "
                            "the cluster (%d now)", cfg.workers, cluster.cpus())
        # the antialiasing rendered with is the one recorded; Ray nodes are taken to have EGL's
        # (an OSMesa node refuses any count but 0: its scenes fail, naming the fix)
        cfg = replace(cfg, msaa=resolve_msaa(cfg.msaa) if cluster is None
                      else DEFAULT_MSAA if cfg.msaa is None else cfg.msaa)
        writers = make_writers(cfg)
        out = prepare_output(cfg, models, fingerprint, writers)
        todo = pending_scenes(writers, cfg.scenes)
        summary = RenderSummary(out=out, scenes_skipped=cfg.scenes - len(todo))
        summary.platform = (choose_gl_platform() if cluster is None
                            else f"of the Ray nodes ({cluster.cpus()} CPUs)")
        start = time.perf_counter()
        bar = stack.enter_context(tqdm(total=len(todo) * cfg.scene.views, unit="img",
                                       disable=not progress or not todo, desc="render",
                                       dynamic_ncols=True))
        scene_cfg = with_absolute_paths(cfg)
        results = (_render_here(models, scene_cfg, todo) if cluster is None
                   else cluster.map(render_scene_task,
                                    (portable_models(models), scene_cfg, uuid.uuid4().hex), todo))
        for stats in stack.enter_context(closing(results)):
            if "error" in stats:
                raise SimdataError(f"scene {stats['scene']}: {stats['error']}")
            summary.scenes_done += 1
            summary.images += stats["images"]
            summary.instances += stats["instances"]
            summary.dropped += stats["dropped"]
            for k in summary.timings:
                summary.timings[k] += stats[k]
            bar.update(stats["images"])
        for writer in writers:  # after every scene: files built from all of them (COCO)
            writer.finish()
    summary.seconds = time.perf_counter() - start
    return summary
