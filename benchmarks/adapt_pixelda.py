#!/usr/bin/env python3
"""Pose from crops: source-only, source-only on domain-randomized renders, PixelDA and
target-only, on the viewpoint protocol (objects upright, cameras on the upper hemisphere,
in-plane rotations; `simdata render --mode crops --poses viewpoints`).

Part 1, synthetic -> "real-looking" (always): every domain is rendered by simdata from
assets/ycb:
- source: clean renders, original textures, white directional light, black background;
- source (DR): the same objects with randomized lights, procedural backgrounds and the
  realsense sensor model: domain randomization, the cheap competitor (Tobin et al. 2017);
- target ("real-looking", a documented appearance gap): warm light colours and point lights,
  photo backgrounds (../shared/real/ycbv_demo frames when present, else procedural clutter)
  and the primesense sensor model. A train split (PixelDA's unlabelled target, target-only's
  labelled data) and a held-out test split (another seed).

Part 2, synthetic -> real LineMOD (when ../shared/real/lm_dev is present): source crops are
rendered from the 8 LineMOD models (mm, vertex colours); the target is the 48 real crops cut
from the lm_dev frames around their annotated boxes. With so few real frames they are both
PixelDA's unlabelled target and the test set (transductive, as stated in the JSON); no
target-only row (it would train on the test set).

Every row is scored on all test crops with the pose task's metrics (adapt.tasks.pose):
accuracy, PixelDA's angle (2 acos|q.q'|, no symmetries), the symmetry-aware rotation error
(mean, median, share under 5/10/20 deg), translation error and ADD(-S) recall at 10 % of the
diameter; plus steps/s, peak memory and the evaluation curve. Saves
benchmarks/results/adapt_pixelda_<device>.json after every row (a run cut short keeps what it
measured). CPU default: part 1 only, 32 px, small nets, 3000 steps, under 20 minutes on 2
cores; on a GPU both parts, 10000 steps; `--paper` uses the paper's sizes (64 px, 64 filters,
6 blocks, batch 32).

    python benchmarks/adapt_pixelda.py [--steps N] [--paper] [--device auto] [--linemod auto|yes|no]
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from results_io import save_results  # noqa: E402 (benchmarks/, the script's folder)
SHARED = REPO.parent / "shared"
SHARED_PHOTOS = SHARED / "real" / "ycbv_demo"
LM_DEV = SHARED / "real" / "lm_dev"
KEYS = ("accuracy", "pixelda_angle_mean_deg", "pixelda_angle_median_deg", "mean_rot_err_deg",
        "median_rot_err_deg", "rot_under_5deg", "rot_under_10deg", "rot_under_20deg",
        "median_trans_err_mm", "add_s_recall_10")


def render(meshes: str, out: Path, count: int, size: int, seed: int, look: str,
           rest: str = "stable") -> dict:
    from simdata.crop_render import ViewpointConfig, render_crops
    from simdata.pipeline import RenderConfig
    from simdata.randomize import RandomizationConfig

    photos = str(SHARED_PHOTOS) if SHARED_PHOTOS.is_dir() else ""
    looks = {
        "clean": (RandomizationConfig(), "clean"),
        "dr": (RandomizationConfig(lights=True, backgrounds=True), "realsense"),
        "real": (RandomizationConfig(lights=True, backgrounds=True, background_dir=photos,
                                     light_temperature_k=(2500.0, 4500.0)), "primesense"),
    }
    dr, sensor = looks[look]
    cfg = RenderConfig(meshes=meshes, out=str(out), seed=seed, sensor=sensor, randomize=dr)
    res = render_crops(cfg, count, size, progress=False, viewpoints=ViewpointConfig(rest=rest))
    return {"path": str(out), "crops": count, "look": look, "rest": rest,
            "crops_per_s": round(res["crops"] / res["seconds"], 1)}


def train(method: str, source: str, target: str, test: str, out: Path, steps: int, batch: int,
          size: int, device, nets: dict, evals: int, speed: dict | None = None,
          task: str = "") -> dict:
    """Train one pose-from-crops run into ``out`` and score it on ``test`` (``task``: empty = the
    method's first task, ``pose`` for methods that also train others)."""
    import torch

    from adapt.config import TrainConfig
    from adapt.methods import METHODS
    from adapt.trainer import Trainer

    cls = METHODS[method]
    known = set(cls.Config.__dataclass_fields__)
    mcfg = cls.Config(**{k: v for k, v in nets.items() if k in known})
    cfg = TrainConfig(method=method, task=task, source=source, target=target, out=str(out),
                      steps=steps, batch=batch, size=size, device=str(device), log_every=50,
                      sample_every=steps, ckpt_every=steps, eval_data=test,
                      eval_every=max(steps // evals, 1), **(speed or {}))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    res = Trainer(cfg, mcfg).fit(progress=False)
    entry = {k: res["eval"].get(k) for k in KEYS}
    entry["steps_per_s"] = res["steps_per_s"]
    entry["peak_memory_mb"] = (round(torch.cuda.max_memory_allocated() / 2**20) if device.type == "cuda"
                               else round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    curve = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    entry["curve"] = [{"step": r["step"], "mean_rot_err_deg": r["eval"]["mean_rot_err_deg"],
                       "accuracy": r["eval"]["accuracy"]} for r in curve if "eval" in r]
    entry["per_class"] = res["eval"]["per_class"]
    print(f"  {method:>16}: accuracy {entry['accuracy']:.3f}, rotation error mean "
          f"{entry['mean_rot_err_deg']:.1f} / median {entry['median_rot_err_deg']:.1f} deg, PixelDA "
          f"angle {entry['pixelda_angle_mean_deg']:.1f}, ADD(-S) {entry['add_s_recall_10']}, "
          f"{entry['steps_per_s']:.1f} steps/s", flush=True)
    return entry


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=0, help="training steps of PixelDA "
                    "[3000 on a CPU, 10000 on a GPU]")
    ap.add_argument("--baseline-steps", type=int, default=0,
                    help="steps of the task-net-only rows (0 = as --steps)")
    ap.add_argument("--paper", action="store_true", help="paper-size nets, 64 px, batch 32")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--source-crops", type=int, default=4000)
    ap.add_argument("--target-crops", type=int, default=2000)
    ap.add_argument("--test-crops", type=int, default=500)
    ap.add_argument("--evals", type=int, default=6, help="evaluations along each run (the curve)")
    ap.add_argument("--linemod", choices=("auto", "yes", "no"), default="auto",
                    help="part 2 on real LineMOD frames: auto = on a GPU only (a CPU's 20 minutes "
                    "cover part 1)")
    ap.add_argument("--data", default="", help="use the crops folders saved by --save-data in this "
                    "folder instead of rendering (e.g. on a GPU machine without a renderer)")
    ap.add_argument("--save-data", default="", help="save compact copies of the crops folders here "
                    "(rgb as JPEG, masks as bits, no depth: the benchmark's nets take rgb), to "
                    "carry to a GPU machine without a renderer")
    ap.add_argument("--prepare-only", action="store_true", help="with --save-data: render and save "
                    "the data, train nothing")
    ap.add_argument("--pictures", default="", help="folder for pictures of PixelDA's predicted poses "
                    "on the test crops (pose_predictions_<part>.png)")
    ap.add_argument("--rows", default="source-only,source-only (DR),pixelda,target-only",
                    help="part 1 rows to run, in this order (empty: none)")
    ap.add_argument("--amp", action="store_true", help="bfloat16 autocast (CUDA)")
    ap.add_argument("--cudnn-benchmark", action="store_true", help="cuDNN picks its fastest "
                    "algorithms by timing (CUDA; reruns may differ in the last bits)")
    ap.add_argument("--out", default="", help="JSON path [benchmarks/results/adapt_pixelda_<device>.json]")
    args = ap.parse_args()

    import torch

    from adapt.trainer import resolve_device

    device = resolve_device(args.device)
    args.steps = args.steps or (10000 if device.type == "cuda" else 3000)
    args.no_linemod = args.linemod == "no" or (args.linemod == "auto" and device.type != "cuda")
    if args.paper:
        size, batch, nets = 64, 32, {}
    else:
        size, batch, nets = 32, 16, {"gen_filters": 32, "gen_blocks": 3, "disc_filters": 32,
                                     "task_width": 16}
    base_steps = args.baseline_steps or args.steps
    results = {"benchmark": "adapt_pixelda", "date": time.strftime("%Y-%m-%d"),
               "device": torch.cuda.get_device_name() if device.type == "cuda" else
               f"cpu ({torch.get_num_threads()} threads, {platform.processor() or platform.machine()})",
               "config": {"size": size, "batch": batch, "steps": args.steps, "baseline_steps": base_steps,
                          "nets": nets or "paper", "amp": args.amp,
                          "cudnn_benchmark": args.cudnn_benchmark, "poses": "viewpoints", "task": "defaults of adapt.tasks.pose"},
               "synthetic": {"methods": {}}}
    out = Path(args.out or REPO / "benchmarks" / "results" / f"adapt_pixelda_{device.type}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    results["partial"] = True  # until the last row is in

    def save():
        save_results(out, results, t_start)

    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        meshes = str(REPO / "assets" / "ycb")
        t0 = time.perf_counter()
        if args.data:
            data = saved(Path(args.data), ("source", "source_dr", "target", "test"), tmp)
        else:
            data = {"source": render(meshes, tmp / "source", args.source_crops, size, 0, "clean"),
                    "source_dr": render(meshes, tmp / "source_dr", args.source_crops, size, 3, "dr"),
                    "target": render(meshes, tmp / "target", args.target_crops, size, 1, "real"),
                    "test": render(meshes, tmp / "test", args.test_crops, size, 2, "real")}
            save_compact(args.save_data, data)
        if not args.data:
            data["backgrounds"] = "ycbv_demo photos" if SHARED_PHOTOS.is_dir() else "procedural (../shared absent)"
        data["seconds"] = round(time.perf_counter() - t0, 1)
        results["synthetic"]["data"] = data
        print(f"part 1 data ready in {data['seconds']} s", flush=True)
        has_linemod = (Path(args.data) / "lm_real").is_dir() if args.data else LM_DEV.is_dir()
        if args.prepare_only:
            if has_linemod and args.linemod != "no":
                linemod(tmp, args, size, batch, nets, device, base_steps)
            print(f"saved the data in {args.save_data}")
            return
        rows = {"source-only": ("source-only", data["source"], base_steps),
                "source-only (DR)": ("source-only", data["source_dr"], base_steps),
                "pixelda": ("pixelda", data["source"], args.steps),
                "target-only": ("target-only", data["target"], base_steps)}
        wanted = [r for r in args.rows.split(",") if r]  # none: part 2 only
        for label in wanted:
            if label not in rows:
                raise SystemExit(f"--rows: unknown row {label!r}; choose from {', '.join(rows)}")
        for label in wanted:
            method, source, steps = rows[label]
            results["synthetic"]["methods"][label] = train(
                method, source["path"], data["target"]["path"], data["test"]["path"],
                tmp / f"run_{label.replace(' ', '_')}", steps, batch, size, device, nets, args.evals,
                {"amp": args.amp, "cudnn_benchmark": args.cudnn_benchmark})
            save()
        picture(args.pictures, tmp / "run_pixelda", data["test"]["path"], tmp / "pred", "synthetic")
        m = results["synthetic"]["methods"]
        checks = results["synthetic"]["checks"] = {}
        if "target-only" in m:
            checks["target_only_mean_rot_err_le_20deg"] = m["target-only"]["mean_rot_err_deg"] <= 20
        if "pixelda" in m and "source-only" in m:
            checks["pixelda_le_half_source_only"] = (m["pixelda"]["mean_rot_err_deg"]
                                                     <= 0.5 * m["source-only"]["mean_rot_err_deg"])
        if has_linemod and not args.no_linemod:
            results["linemod"] = {}
            linemod(tmp, args, size, batch, nets, device, base_steps, results["linemod"], save)
    del results["partial"]
    save()
    print(f"saved {out} ({results['seconds']} s)")


def linemod(tmp: Path, args, size, batch, nets, device, base_steps, out=None, save=None) -> dict:
    from simdata.crops import CropsConfig, crops_from_dataset

    t0 = time.perf_counter()
    if args.data:
        data = saved(Path(args.data), ("lm_source", "lm_source_dr", "lm_real"), tmp)
        data = {"source": data["lm_source"], "source_dr": data["lm_source_dr"], "real": data["lm_real"]}
    else:
        real = tmp / "lm_real"
        crops_from_dataset(LM_DEV, real, CropsConfig(size=size, background="scene"), split="test",
                           progress=False)
        models = str(LM_DEV / "models")
        # LineMOD's models are authored standing (+z up), as the objects stand in its frames
        data = {"source": render(models, tmp / "lm_source", args.source_crops, size, 0, "clean", "upright"),
                "source_dr": render(models, tmp / "lm_source_dr", args.source_crops, size, 3, "dr", "upright"),
                "real": {"path": str(real), "crops": 48}}
        save_compact(args.save_data, {"lm_" + k: v for k, v in data.items()})
        if args.prepare_only:
            return {}
    real = Path(data["real"]["path"])
    data["real"]["note"] = "unlabelled target and test set (transductive)"
    data["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"part 2 (LineMOD) data ready in {data['seconds']} s", flush=True)
    out = {} if out is None else out
    out.update({"data": data, "methods": {}})
    for label, method, source, steps in (("source-only", "source-only", data["source"], base_steps),
                                         ("source-only (DR)", "source-only", data["source_dr"], base_steps),
                                         ("pixelda", "pixelda", data["source"], args.steps)):
        out["methods"][label] = train(method, source["path"], str(real), str(real),
                                      tmp / f"lm_run_{label.replace(' ', '_')}", steps, batch, size,
                                      device, nets, args.evals,
                                      {"amp": args.amp, "cudnn_benchmark": args.cudnn_benchmark})
        if save:
            save()
    picture(args.pictures, tmp / "lm_run_pixelda", str(real), tmp / "lm_pred", "linemod")
    return out


def save_compact(folder: str, data: dict) -> None:
    """Copies of crops folders small enough to carry to a machine without a renderer: rgb as
    JPEG (quality 95) and masks as bits in one packed.npz, depth dropped (the benchmark's nets
    take rgb); labels and models as they are. :func:`saved` unpacks them."""
    if not folder:
        return
    import shutil

    import cv2
    import numpy as np

    from simdata import CropsDataset

    for name, entry in data.items():
        if not isinstance(entry, dict) or "path" not in entry:
            continue
        src, dst = Path(entry["path"]), Path(folder) / name
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("shard_*.npz"))
        ds = CropsDataset(src, cache_shards=1 << 20)
        jpegs, masks = [], []
        for i in range(len(ds)):
            arrays, _ = ds.raw(i)
            ok, buf = cv2.imencode(".jpg", arrays["rgb"][..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
            jpegs.append(np.frombuffer(buf.tobytes(), np.uint8))
            masks.append(np.packbits(arrays["mask"]))
        lengths = np.array([len(j) for j in jpegs])
        np.savez_compressed(dst / "packed.npz", jpeg=np.concatenate(jpegs), lengths=lengths,
                            masks=np.stack(masks), shape=np.array(arrays["mask"].shape))
        (dst / "entry.json").write_text(json.dumps(entry))


def saved(folder: Path, names, tmp: Path) -> dict:
    """Unpack the crops folders written by :func:`save_compact` into ``tmp`` (zero depth)."""
    import shutil

    import cv2
    import numpy as np

    out = {}
    for name in names:
        src, dst = folder / name, tmp / f"saved_{name}"
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("packed.npz", "entry.json"))
        with np.load(src / "packed.npz") as z:
            jpeg, ends, masks, shape = z["jpeg"], np.cumsum(z["lengths"]), z["masks"], tuple(z["shape"])
        labels = [json.loads(x) for x in (dst / "labels.jsonl").read_text().splitlines() if x]
        shards: dict[int, list] = {}
        for k, lb in enumerate(labels):
            rgb = cv2.imdecode(jpeg[(ends[k - 1] if k else 0):ends[k]], cv2.IMREAD_COLOR)[..., ::-1]
            mask = np.unpackbits(masks[k])[:shape[0] * shape[1]].reshape(shape).astype(bool)
            shards.setdefault(lb["shard"], []).append((rgb, mask))
        for sid, items in shards.items():
            rgb = np.stack([r for r, _ in items])
            np.savez(dst / f"shard_{sid:06d}.npz", rgb=rgb, mask=np.stack([m for _, m in items]),
                     depth=np.zeros(rgb.shape[:3], np.float32))
        entry = json.loads((src / "entry.json").read_text())
        out[name] = {**entry, "path": str(dst), "carried": "rgb as JPEG q95, no depth"}
    return out


def picture(folder: str, run: Path, crops: str, tmp: Path, part: str) -> None:
    """poses.png of `adapt predict` (predicted axes and model points; true axes thin)."""
    if not folder:
        return
    import shutil

    from adapt.predict import predict

    predict(run, crops, tmp, device="cpu")
    Path(folder).mkdir(parents=True, exist_ok=True)
    shutil.copy(tmp / "poses.png", Path(folder) / f"pose_predictions_{part}.png")


if __name__ == "__main__":
    main()
