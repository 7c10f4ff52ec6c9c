#!/usr/bin/env python3
"""Object / not-object segmentation, the question a robot's camera asks: source-only on clean
renders, source-only on domain-randomized renders (the cheap competitor), SPIGAN and its
ablations; for colour inputs (rgb) and colour plus the height above the table (rgbh, see
adapt.data), scored on data none of them trained on.

Data, rendered by simdata from ../shared/ycb (real YCB geometry; assets/ycb when absent) at
320x240 with PrimeSense intrinsics, cameras 55-90 deg above the table, the primesense sensor
model on every render (a robot's depth is never clean):
- source (clean): original materials, white lights, nothing around the table;
- source (DR): `--randomize all`: materials, lights, backgrounds, distractors, clutter
  (shelves beyond the table, robot links and grippers in view: not objects), bins (the objects
  of half the scenes in a bin where they fit: its walls are not objects), camera jitter;
- synthetic target ("real-looking", a documented appearance gap): warm and point lights, photo
  backgrounds (../shared/real/ycbv_demo), half the objects re-materialled; an unlabelled train
  split and a labelled test split (another seed);
- real: ../shared/real/ycbv_demo (RGB-D, unlabelled) is SPIGAN's real target, and
  ../shared/real/tabletop_dev (10 labelled PrimeSense frames) the real test set.

Inputs (`--channels`): rgb and height by default, rgbh on request (SPIGAN rows for inputs with
colour only: SPIGAN on height alone, which restyles the height map, is measured in
benchmarks/results/seg_recipe_seeds_cpu.json, spigan_on_height). Rows per input: source-only (clean) and source-only (DR) (`--rows`),
trained once and scored on every test set (`--tests`: synthetic; tabletop_dev when
../shared/real, or DIR/real with --data, holds it and ycbv_demo), and SPIGAN, one run per
variant (`--variants`; by default one, the recommended way: from the clean renders, since
adapting randomized renders lost to source-only in every variant measured,
benchmarks/results/adapt_spigan_schedule_cpu.json; started from the source-only (clean) net,
with the perceptual loss on that net's own features, benchmarks/results/adapt_spigan_task_features_cuda.json),
adapted to the real frames (scored on tabletop_dev) and to the synthetic target (scored on its
test split); `--ablations` adds SPIGAN-no-PI and SPIGAN-base (the first variant without its
privileged depth, and without that and its perceptual loss). Each row: object IoU, mIoU,
negative transfer against the source-only net of the same source on the same test images (the
share of images whose IoU falls; when that row runs), steps/s, peak memory; saved to
benchmarks/results/adapt_spigan_<device>.json after every row. CPU default (2 cores, about 15
minutes with the render): 120 px high images, 96 px crops, small nets, 1500 task-net steps, 2400 SPIGAN steps;
`--ablations` (meant for a GPU) adds four SPIGAN runs, `--paper` the paper's sizes.

Variants: `--variants "LABEL:KEY=VALUE,KEY=VALUE;LABEL2:..."`, KEY a field of
adapt.methods.spigan.SpiganConfig (g_steps, gamma, delta, alpha, beta, lr, pi, ...; an unknown
one is an error), VALUE read as the field's type (true/false, int, float, text), plus
`source=dr|clean`: the rendered source SPIGAN adapts from (default dr); a row is named "LABEL
(DR source)" or "LABEL (clean source)", and its negative transfer is against the source-only
net of the same source. `init=true`: SPIGAN's task net starts from that source-only net
(`adapt train --init-task`: source-only first, then adaptation, as CyCADA trains), which must
be among `--rows`; the fair baseline of such a row, "source-only (SOURCE), continued", the
same net trained on for `--gan-steps` more steps at SPIGAN's learning rate, is added (once per
source), and the row's negative transfer is given against it too
(negative_transfer_vs_continued). The default "spigan:source=clean,init=true,perceptual=task" is the recommended
run (`adapt train spigan --init-task RUN --perceptual task` from clean renders); e.g. --variants
"spigan-g5:g_steps=5;spigan-g1:g_steps=1;dr:source=dr" for the method's own defaults otherwise.

On a GPU machine without the renderer (no pybullet, pyrender, trimesh, PyOpenGL, open3d,
rosbags, pycocotools, no ../shared): render here and save compact copies of the data with
`--save-data DIR --prepare-only`, carry DIR there and run with `--data DIR` (depth inputs only
if DIR was saved for them). DIR/manifest.json says what each folder is, the render settings and
the counts. Kept: what the rows read. Synthetic sets: the rgb JPEGs as rendered, byte for byte;
the scene JSONs; for the labelled sets (both sources, the synthetic test split) the
visible-object and clutter masks (as bits) and the simulator's clean depth (depth_m: the labels'
table plane and SPIGAN's privileged target) in 1 mm steps, the pixels whose label would change
kept exact, so the labels are exact and the privileged depth within 0.5 mm; the primesense
sensor depth, exact, only when --channels has a depth input (rgbh, height, ...; else zeros stand
in, and --data refuses depth inputs). Real folders: colour as lossless WebP, labels, intrinsics,
the README, depth only with depth inputs. Left out: rgb_clean, normals (no `pi=normals` variant
on carried data), amodal masks, the meshes. --data unpacks them into a temporary folder in the
layouts the loaders read. Size: 41 MiB at --scenes 100 --channels rgb (20 MiB at the default 40
scenes); the depth inputs add the sensor depth, about 0.33 MiB per --scenes and 3 MiB of real
depth: 36 MiB at 40 scenes, some 77 MiB at 100 (more than a device run carries: use --channels
rgb there).

    python benchmarks/adapt_spigan.py [--steps 1500] [--gan-steps 2400] [--ablations] [--paper]
    python benchmarks/adapt_spigan.py --save-data DIR --prepare-only [--scenes 100 --channels rgb]
    python benchmarks/adapt_spigan.py --data DIR --device cuda [--variants ...] [--rows ...] [--tests ...]
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
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]  # the latter for runpy.run_path too
from results_io import save_results  # noqa: E402 (benchmarks/, the script's folder)
SHARED = REPO.parent / "shared"
YCBV = SHARED / "real" / "ycbv_demo"
TABLETOP = SHARED / "real" / "tabletop_dev"
ROWS = ("source-only (clean)", "source-only (DR)")
TESTS = ("synthetic", "tabletop_dev")
# the rendered sets: name -> (what it is, labelled: masks and clean depth kept)
SETS = {"source": ("source (clean): original materials, white lights, nothing around the table; "
                   "labelled, trains source-only (clean)", True),
        "source_dr": ("source (DR): randomized materials, lights, backgrounds, distractors, clutter, "
                      "bins, camera jitter; labelled, trains source-only (DR) and every SPIGAN row (its "
                      "clean depth is SPIGAN's privileged information)", True),
        "target": ("synthetic target, train split (real-looking, seed 1): SPIGAN's unlabelled "
                   "target for the synthetic test (read as an image folder: train_pbr)", False),
        "test": ("synthetic target, test split (real-looking, seed 2): the labelled synthetic "
                 "test set", True)}
REAL = {"ycbv_demo": "real RGB-D frames, unlabelled: SPIGAN's real target (for tabletop_dev)",
        "tabletop_dev": "10 labelled real PrimeSense frames: the real test set"}
COMPACT_FORMAT = 1
DEPTH_M_STEP = 0.001  # the clean depth's step in the compact copies, metres
MIB = 2 ** 20


def render(meshes: str, out: Path, scenes: int, seed: int, look: str) -> dict:
    from simdata.pipeline import RenderConfig, render_dataset
    from simdata.randomize import RandomizationConfig
    from simdata.sampling import SceneConfig
    from simdata.types import PRIMESENSE

    photos = str(YCBV) if YCBV.is_dir() else ""
    dr = {"clean": RandomizationConfig(),
          "dr": RandomizationConfig(materials=True, lights=True, backgrounds=True, distractors=(2, 5),
                                    clutter=(1, 4), bins=0.5, camera_jitter_m=0.01,
                                    camera_jitter_deg=2.0),  # simdata render --randomize all
          "real-looking": RandomizationConfig(lights=True, backgrounds=True, background_dir=photos,
                                              materials=True, material_prob=0.5,
                                              light_temperature_k=(2500.0, 4500.0))}[look]
    cfg = RenderConfig(meshes=meshes, out=str(out), scenes=scenes, seed=seed, sensor="primesense",
                       randomize=dr, scene=SceneConfig(views=4, elevation_deg=(55.0, 90.0),
                                                       intrinsics=PRIMESENSE.resized(320, 240)))
    s = render_dataset(cfg, progress=False)
    return {"path": str(out), "images": s.images, "look": look, "seed": seed}


def score_run(run: Path, test: str, device, confusion: bool = False) -> dict:
    """Object IoU, mIoU and per-image IoUs of a segmentation run on a labelled test set (and,
    with ``confusion``, its pixel confusion matrix, to pool parts of a test set)."""
    from adapt.config import TrainConfig
    from adapt.evaluate import evaluate
    from adapt.trainer import load_run

    method, conf = load_run(run, str(device))
    domain = method.task.open_domain(TrainConfig(**conf["train"]), test, stream=99)
    ev = evaluate(method, domain)
    return {"object_iou": ev["per_class_iou"]["object"], "miou": ev["miou"],
            "per_image_iou": ev["per_image_iou"], **({"confusion": ev["confusion"]} if confusion else {})}


def train_run(out: Path, method: str, source: str, target: str, ch: str, steps: int, device,
              size: dict, nets: dict, vgg: str, flags: dict | None = None, task: str = "",
              init_task: str = "", hflip: bool = False, ckpt_every: int = 0) -> dict:
    """Train one object / not-object segmentation run into ``out`` (``size``: height, crop and
    batch; ``nets`` and ``flags``: method options, those its Config lacks skipped, ``flags``
    winning; ``task``: empty = the method's first, ``segmentation`` for methods whose first is
    another; ``init_task``: a run whose task net this one starts from, adapt train
    --init-task; ``hflip``: --hflip; ``ckpt_every``: steps between checkpoints, 0 = only at the
    end); returns steps, early stop, steps/s and peak memory."""
    import torch

    from adapt.config import TrainConfig
    from adapt.methods import METHODS
    from adapt.tasks.segmentation import SegmentationConfig
    from adapt.trainer import Trainer

    cls = METHODS[method]
    known = cls.Config.__dataclass_fields__
    mcfg = cls.Config(**{k: v for k, v in {**nets, "vgg_weights": vgg, **(flags or {})}.items()
                         if k in known})
    cfg = TrainConfig(method=method, task=task, source=source, target=target, out=str(out),
                      steps=steps, device=str(device), channels=ch, log_every=50,
                      sample_every=steps, ckpt_every=ckpt_every or steps, init_task=init_task,
                      **size)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    res = Trainer(cfg, mcfg, task_cfg=SegmentationConfig(objectness=True, hflip=hflip)).fit(progress=False)
    return {
        "steps": res["steps"], "early_stop": res.get("early_stop"), "steps_per_s": res["steps_per_s"],
        "peak_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20) if device.type == "cuda"
        else round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


# ----------------------------------------------------------------------------- options
def parse_value(text: str, default):
    """``text`` as the type of the field whose default is ``default``: bool (true/false, yes/no,
    1/0), int, float or text; ValueError when it is not one."""
    low = text.strip().lower()
    if isinstance(default, bool):
        if low in ("true", "yes", "1", "on"):
            return True
        if low in ("false", "no", "0", "off"):
            return False
        raise ValueError(f"{text!r} is no bool (true or false)")
    if isinstance(default, int):
        return int(low)
    if isinstance(default, float):
        return float(low)
    return text.strip()


# the recommended SPIGAN run (README): from the clean renders' source-only net, whose own
# features the perceptual loss compares (benchmarks/results/adapt_spigan_task_features_cuda.json)
DEFAULT_VARIANT = "spigan:source=clean,init=true,perceptual=task"


def parse_variants(text: str, ablations: bool) -> dict[str, dict]:
    """``--variants`` "LABEL:KEY=VALUE,...;..." -> {label: SpiganConfig overrides}; with
    ``ablations`` SPIGAN-no-PI and SPIGAN-base are added (unless a label has their name)."""
    from dataclasses import MISSING

    from adapt.methods.spigan import SpiganConfig

    fields = {k: f for k, f in SpiganConfig.__dataclass_fields__.items() if f.metadata.get("cli", True)}
    out: dict[str, dict] = {}
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        label, colon, body = part.partition(":")
        label = label.strip()
        if not label or not colon:
            raise SystemExit(f"--variants: {part!r} is not LABEL:KEY=VALUE,... (e.g. spigan-g1:g_steps=1, "
                             f"or spigan: for the defaults)")
        if label in out:
            raise SystemExit(f"--variants: the label {label!r} is given twice")
        flags = {}
        for kv in (x.strip() for x in body.split(",")):
            if not kv:
                continue
            key, eq, value = kv.partition("=")
            key = key.strip()
            if not eq:
                raise SystemExit(f"--variants {label}: {kv!r} is not KEY=VALUE")
            if key == "source":  # the benchmark's: which rendered source SPIGAN adapts from
                if value.strip() not in ("dr", "clean"):
                    raise SystemExit(f"--variants {label}: source={value}: use dr or clean")
                flags[key] = value.strip()
                continue
            if key == "init":  # the benchmark's: T starts from the source-only row's net
                try:
                    flags[key] = parse_value(value, False)
                except ValueError as e:
                    raise SystemExit(f"--variants {label}: init={value}: {e}") from None
                continue
            if key not in fields:
                raise SystemExit(f"--variants {label}: {key!r} is no option of SPIGAN; choose from "
                                 f"{', '.join(sorted(fields))}")
            f = fields[key]
            default = f.default if f.default is not MISSING else f.default_factory()
            try:
                flags[key] = parse_value(value, default)
            except ValueError as e:
                raise SystemExit(f"--variants {label}: {key}={value}: {e} "
                                 f"({key} takes {type(default).__name__})") from None
        out[label] = flags
    if ablations:  # the first variant without its privileged depth, and without both losses
        first = next(iter(out.values()), {})
        for label, flags in (("spigan-no-pi", {"no_pi": True}), ("spigan-base", {"base": True})):
            out.setdefault(label, {**first, **flags})
    return out


def parse_choice(option: str, text: str, choices) -> list[str]:
    """A comma list of some of ``choices``, in their order as given."""
    wanted = [x.strip() for x in text.split(",") if x.strip()]
    for w in wanted:
        if w not in choices:
            raise SystemExit(f"{option}: unknown {w!r}; choose from {', '.join(choices)}")
    return list(dict.fromkeys(wanted))


def needs_depth(channels) -> bool:
    """Whether any of the input sets reads the sensor's depth."""
    return any(c != "rgb" for c in channels)


# ----------------------------------------------------------------------------- compact copies
def _array_bytes(a) -> bytes:
    """An array's bytes for lzma: bool as bits, others byte plane after byte plane."""
    import numpy as np

    if a.dtype == bool:
        return np.packbits(a).tobytes()
    return np.ascontiguousarray(a).view(np.uint8).reshape(-1, a.itemsize).T.tobytes()


def _write_arrays(stem: Path, arrays: list) -> None:
    """(name, array) pairs -> STEM.json (names, dtypes, shapes) and STEM.xz (lzma)."""
    import lzma

    index, comp = [], lzma.LZMACompressor(preset=9)
    with open(stem.with_suffix(".xz"), "wb") as f:
        for name, a in arrays:
            index.append([name, a.dtype.str, list(a.shape)])
            f.write(comp.compress(_array_bytes(a)))
        f.write(comp.flush())
    stem.with_suffix(".json").write_text(json.dumps(index))


def _read_arrays(stem: Path):
    """The (name, array) pairs of :func:`_write_arrays`."""
    import lzma

    import numpy as np

    index = json.loads(stem.with_suffix(".json").read_text())
    buf = memoryview(lzma.decompress(stem.with_suffix(".xz").read_bytes()))
    at = 0
    for name, dtype, shape in index:
        dtype, n = np.dtype(dtype), int(np.prod(shape))
        size = (n + 7) // 8 if dtype == bool else n * dtype.itemsize
        raw = np.frombuffer(buf[at:at + size], np.uint8)
        at += size
        if dtype == bool:
            a = np.unpackbits(raw, count=n).astype(bool)
        else:
            a = raw.reshape(dtype.itemsize, n).T.copy().view(dtype)
        yield name, a.reshape(shape)
    if at != len(buf):
        raise SystemExit(f"{stem}.xz holds {len(buf) - at} bytes more than {stem}.json lists")


def _dequantised(q):
    import numpy as np

    return q.astype(np.float32) * np.float32(DEPTH_M_STEP)


def _geometry(sample: dict, depth_clean):
    """What the clean depth decides in adapt.scenes.label_map, per pixel: no surface (0), table
    (1), above the table (2), another surface (255); masks and clutter, which override it, left
    out."""
    import torch

    from adapt.scenes import label_map

    h, w = depth_clean.shape
    s = {k: v for k, v in sample.items() if k != "clutter"}
    s.update(depth_clean=torch.from_numpy(depth_clean.copy())[None],
             masks_visib=torch.zeros((0, h, w), dtype=torch.bool), obj_ids=torch.zeros(0, dtype=torch.int64))
    return label_map(s, [], agnostic=True, objectness=True)


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def _save_bop(src: Path, dst: Path, labelled: bool, sensor_depth: bool) -> dict:
    """A compact copy of the rendered BOP dataset ``src`` (see the module docstring)."""
    import tarfile

    import cv2
    import numpy as np
    import torch

    from simdata.bop_layout import find_rgb, list_images
    from simdata.datasets import BopDataset

    dst.mkdir(parents=True)
    items = list_images(src)
    scenes = sorted({scene for scene, _ in items})
    rel = lambda p: str(p.relative_to(src))  # noqa: E731
    with tarfile.open(dst / "json.tar.xz", "w:xz", preset=9) as tar:
        for name in ("camera.json", "objects.json", "simdata_settings.json", "models/models_info.json"):
            if (src / name).is_file():
                tar.add(src / name, name)
        for scene in scenes:
            for name in ("scene_camera.json", "scene_gt.json", "scene_gt_info.json"):
                if (scene / name).is_file():
                    tar.add(scene / name, rel(scene / name))
    with tarfile.open(dst / "rgb.tar", "w") as tar:
        for scene, im in items:
            tar.add(find_rgb(scene, im), rel(find_rgb(scene, im)))
    shape = list(cv2.imread(str(find_rgb(*items[0])), cv2.IMREAD_GRAYSCALE).shape)
    info = {"scenes": len(scenes), "images": len(items), "image_size": shape, "labelled": labelled,
            "kept": ["rgb (the rendered JPEGs)", "scene_camera.json", "scene_gt.json", "scene_gt_info.json",
                     "camera.json", "objects.json", "models/models_info.json"]}
    if sensor_depth:
        _write_arrays(dst / "depth", [(rel(scene / "depth" / f"{im:06d}.png"),
                                       cv2.imread(str(scene / "depth" / f"{im:06d}.png"), cv2.IMREAD_UNCHANGED))
                                      for scene, im in items])
        info["kept"].append("depth (primesense sensor, exact)")
    if labelled:
        masks = []
        for scene, im in items:
            for folder in ("mask_visib", "mask_clutter"):
                for p in sorted((scene / folder).glob(f"{im:06d}*.png")):
                    m = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
                    if m is None or m.ndim != 2:
                        raise SystemExit(f"{p}: no single-channel mask")
                    masks.append((rel(p), m > 0))
        _write_arrays(dst / "masks", masks)
        ds = BopDataset(src, load_full_masks=False, load_normals=False)
        arrays, exact_pixels = [], 0
        for i, (scene, im) in enumerate(ds.items):
            path = scene / "depth_m" / f"{im:06d}.npy"
            if not path.is_file():
                raise SystemExit(f"{path} is missing: the labels need the clean depth (--extras depth_m)")
            exact = np.load(path)
            if exact.dtype != np.float32 or exact.max() / DEPTH_M_STEP >= 65535:
                raise SystemExit(f"{path}: expected float32 metres under 65 m")
            q = np.round(exact.astype(np.float64) / DEPTH_M_STEP).astype(np.uint16)
            approx = _dequantised(q)
            sample = ds[i]
            want = _geometry(sample, exact)
            at = np.flatnonzero((_geometry(sample, approx) != want).numpy()).astype(np.int32)
            approx.flat[at] = exact.flat[at]
            if not torch.equal(_geometry(sample, approx), want):
                raise SystemExit(f"{path}: the compact clean depth changes the labels")
            exact_pixels += len(at)
            arrays += [(rel(path), q), (rel(path) + ":exact_at", at), (rel(path) + ":exact", exact.flat[at])]
        _write_arrays(dst / "depth_m", arrays)
        info["depth_m_exact_pixels"] = exact_pixels
        info["kept"] += ["mask_visib", "mask_clutter", "depth_m (clean depth, 1 mm steps, the pixels "
                         "whose label would change exact)"]
    info["bytes"] = _folder_bytes(dst)
    return info


def _load_bop(src: Path, dst: Path, info: dict, sensor_depth: bool) -> None:
    """Unpack :func:`_save_bop`'s copy into ``dst``, in the layout simdata.BopDataset reads."""
    import tarfile

    import cv2
    import numpy as np

    from simdata.bop_layout import list_images

    def extract(path):
        with tarfile.open(path) as tar:
            tar.extractall(dst, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))

    def write_png(path: Path, image):
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), image):
            raise SystemExit(f"cannot write {path}")

    extract(src / "json.tar.xz")
    extract(src / "rgb.tar")
    if sensor_depth:
        for name, a in _read_arrays(src / "depth"):
            write_png(dst / name, a)
    else:  # BopDataset reads a depth file per image: zeros (the rows' inputs take none)
        zeros = np.zeros(info["image_size"], np.uint16)
        for scene, im in list_images(dst):
            write_png(scene / "depth" / f"{im:06d}.png", zeros)
    if not info["labelled"]:
        return
    for name, a in _read_arrays(src / "masks"):
        write_png(dst / name, a.astype(np.uint8) * 255)
    parts: dict[str, dict] = {}
    for name, a in _read_arrays(src / "depth_m"):
        path, _, key = name.partition(":")
        parts.setdefault(path, {})[key] = a
    for path, p in parts.items():
        d = _dequantised(p[""])
        d.flat[p["exact_at"]] = p["exact"]
        (dst / path).parent.mkdir(parents=True, exist_ok=True)
        np.save(dst / path, d)


def _save_real(src: Path, dst: Path, sensor_depth: bool) -> dict:
    """A compact copy of a real image folder: colour PNGs as lossless WebP, depth (only with
    ``sensor_depth``: .npy lzma-packed, PNG as it is), everything else (labels, classes.json,
    meta.yml, README) as it is."""
    import shutil

    import cv2
    import numpy as np

    dst.mkdir(parents=True)
    kept, dropped, arrays = [], [], []
    for p in sorted(src.iterdir()):
        depth = p.name.endswith("-depth.png") or (p.name.startswith("depth_") and p.suffix == ".npy")
        if not p.is_file() or (depth and not sensor_depth):
            dropped.append(p.name)
        elif depth and p.suffix == ".npy":
            arrays.append((p.name, np.load(p)))
            kept.append(p.name)
        elif p.suffix.lower() == ".png" and not depth and not p.stem.endswith("_labels"):
            img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
            ok, buf = cv2.imencode(".webp", img, [cv2.IMWRITE_WEBP_QUALITY, 101])  # > 100: lossless
            if (ok and img.dtype == np.uint8 and img.ndim == 3
                    and np.array_equal(cv2.imdecode(buf, cv2.IMREAD_UNCHANGED), img)):
                (dst / f"{p.name}.webp").write_bytes(buf.tobytes())
            else:
                shutil.copy(p, dst / p.name)
            kept.append(p.name)
        else:
            shutil.copy(p, dst / p.name)
            kept.append(p.name)
    if arrays:
        _write_arrays(dst / "depth_npy", arrays)
    return {"kept": kept, "dropped": dropped, "bytes": _folder_bytes(dst)}


def _load_real(src: Path, dst: Path) -> None:
    import shutil

    import cv2
    import numpy as np

    dst.mkdir(parents=True)
    for p in sorted(src.iterdir()):
        if p.name in ("depth_npy.json", "depth_npy.xz"):
            continue
        if p.name.endswith(".png.webp"):
            img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
            if img is None or not cv2.imwrite(str(dst / p.name[:-len(".webp")]), img):
                raise SystemExit(f"cannot decode {p} (OpenCV without WebP?)")
        else:
            shutil.copy(p, dst / p.name)
    if (src / "depth_npy.json").is_file():
        for name, a in _read_arrays(src / "depth_npy"):
            np.save(dst / name, a)


def save_compact(folder: Path, data: dict, real: dict, channels: list[str], settings: dict) -> dict:
    """Compact copies of the rendered sets and the real folders in ``folder`` (replaced), with
    manifest.json; returns the manifest."""
    import shutil

    sensor_depth = needs_depth(channels)
    if folder.exists() and any(folder.iterdir()) and not (folder / "manifest.json").is_file():
        raise SystemExit(f"--save-data {folder}: a folder with other things in it; name a new one")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    manifest = {"format": COMPACT_FORMAT, "benchmark": "adapt_spigan", "date": time.strftime("%Y-%m-%d"),
                "use": f"python benchmarks/adapt_spigan.py --data {folder} (unpacks into a temporary folder)",
                "render": settings, "channels": channels, "sensor_depth": sensor_depth,
                "encoding": {
                    "rgb.tar": "the rendered rgb JPEGs, byte for byte",
                    "json.tar.xz": "camera.json, objects.json, simdata_settings.json, models/models_info.json "
                                   "and every scene's scene_camera/scene_gt/scene_gt_info.json",
                    "masks.json/.xz": "mask_visib and mask_clutter PNGs as bits (lzma); unpacked as 0/255 PNGs",
                    "depth_m.json/.xz": f"clean depth (float32 m) in {DEPTH_M_STEP * 1000:g} mm steps (uint16) "
                                        "plus the exact float32 value at every pixel whose table / above-the-"
                                        "table label (adapt.scenes.label_map) would change: labels exact",
                    "depth.json/.xz": "the sensor depth PNGs' uint16 arrays, exact (lzma); absent without depth "
                                      "inputs: zeros are written instead",
                    "real/*/NAME.png.webp": "colour PNG as lossless WebP",
                    "real/*/depth_npy.json/.xz": "depth .npy arrays, exact (lzma)"},
                "dropped": "rgb_clean, normals, mask (amodal), the models' meshes" +
                           ("" if sensor_depth else ", the sensor depth (--channels rgb)"),
                "sets": {}, "real": {}}
    for name, (what, labelled) in SETS.items():
        entry = {k: v for k, v in data[name].items() if k != "path"}
        manifest["sets"][name] = {"what": what, **entry,
                                  **_save_bop(Path(data[name]["path"]), folder / name, labelled, sensor_depth)}
    for name, path in real.items():
        manifest["real"][name] = {"what": REAL[name], "from": str(path),
                                  **_save_real(Path(path), folder / "real" / name, sensor_depth)}
    manifest["bytes"] = _folder_bytes(folder)  # all but manifest.json
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_manifest(folder: Path) -> dict:
    path = folder / "manifest.json"
    if not path.is_file():
        raise SystemExit(f"--data {folder}: no manifest.json; make the folder with "
                         f"--save-data {folder} --prepare-only")
    manifest = json.loads(path.read_text())
    if manifest.get("benchmark") != "adapt_spigan" or manifest.get("format") != COMPACT_FORMAT:
        raise SystemExit(f"--data {folder}: not adapt_spigan's compact data of format {COMPACT_FORMAT}")
    return manifest


def load_compact(folder: Path, manifest: dict, tmp: Path) -> tuple[dict, dict]:
    """Unpack ``folder`` (:func:`save_compact`) into ``tmp``: the data entries and the real folders."""
    data, real = {}, {}
    for name, info in manifest["sets"].items():
        dst = tmp / f"saved_{name}"
        _load_bop(folder / name, dst, info, manifest["sensor_depth"])
        data[name] = {"path": str(dst), **{k: info[k] for k in ("images", "look", "seed") if k in info},
                      "carried": f"compact copy ({folder})"}
    for name in manifest["real"]:
        _load_real(folder / "real" / name, tmp / "real" / name)
        real[name] = tmp / "real" / name
    return data, real


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1500, help="steps of the source-only rows")
    ap.add_argument("--gan-steps", type=int, default=2400, help="steps of the SPIGAN rows (and of "
                    "the continued source-only rows of init=true variants)")
    ap.add_argument("--scenes", type=int, default=40, help="source scenes (4 views each)")
    ap.add_argument("--channels", default="rgb,height", help="input sets, comma list "
                    "(SPIGAN rows for those with colour)")
    ap.add_argument("--rows", default=",".join(ROWS), help="source-only rows to run, comma list of "
                    f"{', '.join(ROWS)} (empty: none)")
    ap.add_argument("--tests", default=",".join(TESTS), help="test sets, comma list of "
                    f"{', '.join(TESTS)} (tabletop_dev when the real frames are there)")
    ap.add_argument("--variants", default=DEFAULT_VARIANT, help="SPIGAN runs, "
                    "LABEL:KEY=VALUE,...;... (KEY a field of SpiganConfig, or source=dr|clean, init=true; "
                    f"empty: none) [{DEFAULT_VARIANT}: from the clean renders' source-only net, with "
                    "the perceptual loss on its features]")
    ap.add_argument("--ablations", action="store_true", help="also SPIGAN-no-PI and SPIGAN-base: "
                    "the first variant with no_pi=true, and with base=true")
    ap.add_argument("--paper", action="store_true", help="paper sizes (for a GPU)")
    ap.add_argument("--seed", type=int, default=0, help="training seed of every run (weights, batches, "
                    "noise; the data stay the same)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--vgg-weights", default="", help="auto, a path, or random [auto if found, else random]")
    ap.add_argument("--data", default="", help="use the compact data saved by --save-data in this "
                    "folder instead of rendering (a machine without the renderer or ../shared)")
    ap.add_argument("--save-data", default="", help="save compact copies of the rendered data and "
                    "the real folders here (replaced), to carry to a machine without the renderer")
    ap.add_argument("--prepare-only", action="store_true", help="with --save-data: render and save "
                    "the data, train nothing")
    ap.add_argument("--out", default="", help="JSON path [benchmarks/results/adapt_spigan_<device>.json]")
    args = ap.parse_args()
    if args.data and args.save_data:
        ap.error("--data and --save-data exclude each other")
    if args.prepare_only and not args.save_data:
        ap.error("--prepare-only needs --save-data")

    import torch

    from adapt.data import CHANNELS
    from adapt.evaluate import negative_transfer
    from adapt.methods.spigan import SpiganConfig
    from adapt.nets.vgg import hub_weights_path
    from adapt.trainer import resolve_device

    channels = parse_choice("--channels", args.channels, list(CHANNELS))
    rows_wanted = parse_choice("--rows", args.rows, ROWS)
    tests_wanted = parse_choice("--tests", args.tests, TESTS)
    gans = parse_variants(args.variants, args.ablations)
    for label, f in gans.items():
        row = f"source-only ({'DR' if f.get('source', 'dr') == 'dr' else 'clean'})"
        if f.get("init") and row not in rows_wanted:
            raise SystemExit(f"--variants {label}: init=true starts from the {row} row's net; "
                             f"add it to --rows")
    manifest = read_manifest(Path(args.data)) if args.data else None
    if manifest:
        if needs_depth(channels) and not manifest["sensor_depth"]:
            raise SystemExit(f"--data {args.data} holds no sensor depth (saved for --channels "
                             f"{','.join(manifest['channels'])}); use --channels rgb or save it again "
                             f"with the depth inputs")
        if any(f.get("pi") == "normals" for f in gans.values()):
            raise SystemExit("--variants pi=normals: the compact data carry no normals; render here")
    device = resolve_device(args.device)
    vgg = args.vgg_weights or ("auto" if hub_weights_path().is_file() else "random")
    if args.paper:
        size, nets = dict(height=240, crop=224, batch=4), {}
    else:
        size = dict(height=120, crop=96, batch=4)
        nets = {"gen_filters": 16, "gen_blocks": 4, "disc_filters": 32, "task_width": 16}
    size["seed"] = args.seed
    meshes = (manifest["render"]["meshes"] if manifest else
              str(SHARED / "ycb") if (SHARED / "ycb").is_dir() else str(REPO / "assets" / "ycb"))
    out = Path(args.out or REPO / "benchmarks" / "results" / f"adapt_spigan_{device.type}.json")
    results = {"benchmark": "adapt_spigan", "date": time.strftime("%Y-%m-%d"),
               "device": torch.cuda.get_device_name() if device.type == "cuda" else
               f"cpu ({torch.get_num_threads()} threads)", "vgg_weights": vgg, "meshes": meshes,
               "labels": "object / not object (--objectness)",
               "config": {**size, "steps": args.steps, "gan_steps": args.gan_steps,
                          "nets": nets or "paper", "task_net": "fcn", "rows": rows_wanted,
                          "tests": tests_wanted, "variants": gans, "data": args.data or "rendered"},
               "partial": True, "rows": {}}
    t_start = time.perf_counter()

    def save():
        save_results(out, results, t_start)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        if manifest:
            data, real = load_compact(Path(args.data), manifest, tmp)
            data["render"] = manifest["render"]
        else:
            data = {"source": render(meshes, tmp / "source", args.scenes, 0, "clean"),
                    "source_dr": render(meshes, tmp / "source_dr", args.scenes, 0, "dr")}
            data["target"] = render(meshes, tmp / "target", max(args.scenes // 3, 4), 1, "real-looking")
            data["test"] = render(meshes, tmp / "test", max(args.scenes // 3, 4), 2, "real-looking")
            real = {name: path for name, path in (("ycbv_demo", YCBV), ("tabletop_dev", TABLETOP))
                    if path.is_dir()}
        data["seconds"] = round(time.perf_counter() - t0, 1)
        results["data"] = data
        print(f"data ready in {data['seconds']} s", flush=True)
        if args.save_data:
            settings = {"scenes": args.scenes, "views": 4, "image": "320x240, PrimeSense intrinsics",
                        "elevation_deg": [55.0, 90.0], "sensor": "primesense", "meshes": meshes,
                        "photo_backgrounds": str(YCBV) if YCBV.is_dir() else "",
                        "seconds": data["seconds"]}
            t1 = time.perf_counter()
            m = save_compact(Path(args.save_data), data, real, channels, settings)
            print(f"saved the data in {args.save_data}: {m['bytes'] / MIB:.1f} MiB "
                  f"({time.perf_counter() - t1:.0f} s; sensor depth {'kept' if m['sensor_depth'] else 'left out'})",
                  flush=True)
            if args.prepare_only:
                return
        # test set name -> (SPIGAN's unlabelled target, labelled test set)
        tests = {}
        if "synthetic" in tests_wanted:
            tests["synthetic"] = (str(Path(data["target"]["path"]) / "train_pbr"), data["test"]["path"])
        if "tabletop_dev" in tests_wanted:
            if "tabletop_dev" in real and "ycbv_demo" in real:
                tests["tabletop_dev"] = (str(real["ycbv_demo"]), str(real["tabletop_dev"]))
            else:
                results["skipped"] = "tabletop_dev: no real frames (tabletop_dev and ycbv_demo)"
                print(f"skipped {results['skipped']}", flush=True)

        def score(run: Path, test: str) -> dict:
            return score_run(run, test, device)

        def train(name, method, source, target, ch, steps, flags=None, init="") -> tuple[Path, dict]:
            return tmp / name, train_run(tmp / name, method, source, target, ch, steps, device, size,
                                         nets, vgg, flags, init_task=init)

        def report(ch, test_name, label, entry, source="dr"):
            """Negative transfer against the source-only net of the same source: DR for the
            source-only rows and SPIGAN from DR, clean for SPIGAN from clean renders."""
            rows = results["rows"].setdefault(f"{ch} -> {test_name}", {})
            key = f"negative_transfer_vs_{source}"
            base = rows.get("source-only (DR)" if source == "dr" else "source-only (clean)")
            if base and base is not entry:
                entry[key] = negative_transfer(entry["per_image_iou"], base["per_image_iou"])
            rows[label] = entry
            print(f"{ch:>5} -> {test_name:<12} {label:<26} object IoU {entry['object_iou']:.3f}, "
                  f"mIoU {entry['miou']:.3f}, negative transfer {entry.get(key, '-')}, "
                  f"{entry['steps_per_s']:.1f} steps/s", flush=True)
            save()

        sources = {"source-only (clean)": data["source"]["path"], "source-only (DR)": data["source_dr"]["path"]}
        source_runs: dict[tuple[str, str], Path] = {}  # (input, "dr"|"clean") -> source-only run
        for ch in channels:
            # the source-only nets know no target: trained once, scored on every test set
            for label in rows_wanted:
                run, info = train(f"{ch}_{label.split(' ')[1].strip('()')}", "seg-source-only",
                                  sources[label], "", ch, args.steps)
                source_runs[(ch, "dr" if "DR" in label else "clean")] = run
                for test_name, (_, test) in tests.items():
                    report(ch, test_name, label, {**score(run, test), **info})
            # the fair baseline of SPIGAN rows started from a source-only net: that net trained on
            # for as many steps, at SPIGAN's learning rate
            continued = {}
            inits = {f.get("source", "dr") for f in gans.values() if f.get("init")}
            for source in sorted(inits if CHANNELS[ch] >= 3 else ()):  # SPIGAN rows: colour only
                name = f"source-only ({'DR' if source == 'dr' else 'clean'})"
                run, info = train(f"{ch}_{source}_continued", "seg-source-only", sources[name], "", ch,
                                  args.gan_steps, {"lr": SpiganConfig().lr},
                                  init=str(source_runs[(ch, source)]))
                info["init_task"] = f"{name}, {args.steps} steps"
                for test_name, (_, test) in tests.items():
                    entry = {**score(run, test), **info}
                    continued[(source, test_name)] = entry
                    report(ch, test_name, f"{name}, continued", entry, source)
            for test_name, (target, test) in tests.items():
                if CHANNELS[ch] < 3:  # colour inputs only (see the docstring)
                    continue
                for i, (g, flags) in enumerate(gans.items()):  # adapted to each target: scored on its test set
                    flags = dict(flags)
                    source = flags.pop("source", "dr")
                    init = str(source_runs[(ch, source)]) if flags.pop("init", False) else ""
                    run, info = train(f"{ch}_{test_name}_spigan{i}", "spigan",
                                      data["source_dr" if source == "dr" else "source"]["path"],
                                      target, ch, args.gan_steps, flags, init)
                    entry = {**score(run, test), **info}
                    if init:
                        base = continued[(source, test_name)]
                        entry["init_task"] = base["init_task"]
                        entry["negative_transfer_vs_continued"] = negative_transfer(
                            entry["per_image_iou"], base["per_image_iou"])
                    report(ch, test_name, f"{g} ({'DR' if source == 'dr' else 'clean'} source)",
                           entry, source)
    del results["partial"]
    save()
    print(f"saved {out} ({results['seconds']} s; VGG19 features: {vgg})")


if __name__ == "__main__":
    main()
