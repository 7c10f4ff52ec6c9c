"""render_dataset: meshes -> settled scenes -> rendered views -> a BOP dataset on disk.

Resumable and order-independent: scene i is drawn from the generator of (seed, i) and written
atomically, so a rerun skips finished scenes, and any number of workers gives the same files.
"""
from __future__ import annotations

import json
import logging
import multiprocessing as mp
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import __version__
from .assets import load_models, models_fingerprint
from .errors import SimdataError
from .fileio import disk_error, write_json_atomic
from .bop_layout import SPLIT
from .config import EXTRAS, RenderConfig
from .render import SceneRenderer, choose_gl_platform
from .symmetry import symmetries_for_models
from .scene import render_scene
from .types import ObjectModel
from .writers.bop import write_dataset_header, write_models

log = logging.getLogger(__name__)

SETTINGS_FILE = "simdata_settings.json"
# Settings that may change between runs into the same --out without changing its content.
# "symmetries" only changes models/models_info.json, which every run rewrites (and datasets made
# before the option existed have no such key).
_FREE_KEYS = {"scenes", "workers", "out", "meshes", "scene.physics.cache_dir", "symmetries"}


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
    a, b = _flatten(old), _flatten(new)
    diffs = [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
             if k.split("config.", 1)[-1] not in _FREE_KEYS and a.get(k) != b.get(k)
             and k != "simdata_version"]
    if diffs:
        shown = "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")
        raise SimdataError(f"{path.parent} was rendered with other settings ({shown}); use a new "
                           f"--out, or rerun with the settings saved in {path}")


def prepare_output(cfg: RenderConfig, models: list[ObjectModel], fingerprint: dict) -> Path:
    """Create --out (or check it matches), write the dataset-level files, clear stale temps."""
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise SimdataError(f"--out {out} is a file; give a folder path")
    try:
        (out / SPLIT).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise disk_error(out, e) from None
    settings = dataset_settings(cfg, fingerprint)
    path = out / SETTINGS_FILE
    if path.exists():
        _check_settings(path, settings)
    else:
        existing = [p for p in out.iterdir() if p.name != SPLIT]
        if existing or any((out / SPLIT).iterdir()):
            raise SimdataError(f"--out {out} is not empty and holds no simdata dataset; "
                               f"choose an empty or new folder")
    # settings first: a run killed right after this is recognised (and resumed) by the next
    write_json_atomic(path, settings)
    write_dataset_header(out, cfg.scene.intrinsics, cfg.depth_scale)
    write_models(out, models, symmetries_for_models(models, cfg.symmetries))
    for stale in (out / SPLIT).glob(".tmp-*"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    return out


# Per-process state of pool workers (set once by the pool initializer, never in the parent).
_worker: dict = {}


def _init_worker(models, cfg):
    _worker["models"], _worker["cfg"] = models, cfg
    _worker["renderer"] = SceneRenderer(models, cfg.scene.intrinsics)


def _work(scene_index: int) -> dict:
    try:
        return render_scene(_worker["models"], _worker["cfg"], _worker["renderer"], scene_index)
    except SimdataError as e:
        return {"error": str(e)}


def pending_scenes(out: Path, scenes: int) -> list[int]:
    return [i for i in range(scenes) if not (out / SPLIT / f"{i:06d}").is_dir()]


def render_dataset(cfg: RenderConfig, progress: bool = True) -> RenderSummary:
    """Render ``cfg.scenes`` scenes into ``cfg.out`` (resuming), returning a summary."""
    from tqdm import tqdm

    cfg.validate()
    models = load_models(cfg.meshes, cfg.units)
    fingerprint = models_fingerprint(cfg.meshes)
    out = prepare_output(cfg, models, fingerprint)
    todo = pending_scenes(out, cfg.scenes)
    summary = RenderSummary(out=out, scenes_skipped=cfg.scenes - len(todo))
    summary.platform = choose_gl_platform()
    start = time.perf_counter()
    bar = tqdm(total=len(todo) * cfg.scene.views, unit="img", disable=not progress or not todo,
               desc="render", dynamic_ncols=True)

    def collect(stats):
        if "error" in stats:
            raise SimdataError(stats["error"])
        summary.scenes_done += 1
        summary.images += stats["images"]
        summary.instances += stats["instances"]
        summary.dropped += stats["dropped"]
        for k in summary.timings:
            summary.timings[k] += stats[k]
        bar.update(stats["images"])

    try:
        if cfg.workers == 1 or len(todo) <= 1:
            with SceneRenderer(models, cfg.scene.intrinsics) as renderer:
                for i in todo:
                    collect(render_scene(models, cfg, renderer, i))
        else:
            ctx = mp.get_context("spawn")  # GL contexts do not survive fork
            with ctx.Pool(min(cfg.workers, len(todo)), initializer=_init_worker,
                          initargs=(models, cfg)) as pool:
                for stats in pool.imap_unordered(_work, todo):
                    collect(stats)
    finally:
        bar.close()
    summary.seconds = time.perf_counter() - start
    return summary
