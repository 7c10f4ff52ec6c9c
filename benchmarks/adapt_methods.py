#!/usr/bin/env python3
"""Every adaptation method in one table: each method of the registry (adapt.methods.METHODS,
iterated: a method added later is benchmarked without editing this script) against
source-only, source-only on domain-randomized data and target-only, on three benchmarks:

- pose: the pose crops benchmark of benchmarks/adapt_pixelda.py (part 1: crops of
  assets/ycb rendered by simdata, clean source, domain-randomized source, a "real-looking"
  target with a train split and a held-out test split); metric: accuracy and the
  symmetry-aware rotation error (mean, median), with the rest of adapt_pixelda's keys in the JSON;
- scenes: the synthetic scene benchmark of benchmarks/adapt_spigan.py (object / not-object
  segmentation of 320x240 scenes, clean and DR sources, a "real-looking" target: unlabelled
  train split, labelled test split); metric: object IoU and mIoU;
- tabletop: ../shared/real/tabletop_dev (10 labelled real PrimeSense frames), scored only; the
  methods adapt to the unlabelled real frames of ../shared/real/ycbv_demo. The source-only
  nets are those of `scenes` (trained once, scored on both); no target-only row.

Rows per benchmark: source-only (clean), source-only (DR), target-only (where the target is
labelled), then every adaptation method whose `tasks` has the benchmark's task (pose, or
segmentation for scenes and tabletop), adapted from the DR source to the benchmark's target
(rgb input). A method that refuses the configuration (SimdataError) gets its refusal text in
its row. Columns: the task metric; negative transfer against source-only (DR) on the same test
images (the share of test crops whose rotation error rises, or of images whose IoU falls);
steps, steps/s; peak memory (CPU: the process's peak resident set during the row,
VmHWM of /proc/self/status after resetting it through /proc/self/clear_refs; GPU:
torch.cuda.max_memory_allocated); train seconds. Saved to
benchmarks/results/adapt_methods_<device>.json after every row (`partial: true` until the
last), a markdown table printed at the end.

CPU configuration (2 cores, at most 40 minutes in all): 2000 + 2000 source crops (clean, DR),
1000 target and 300 test crops at 32 px (batch 16); 24 + 24 source scenes (4 views each), 8
target and 8 test scenes at 120 px high, 96 px crops (batch 4); small nets (generators 32 or
16 filters, 3 blocks, discriminators 32 filters, task nets 16 wide; CUT's PatchNCE 64
patches and 64-unit heads, DANN's classifier 256 units); every row 300 steps, baselines
included (`--steps`; `--baseline-steps` gives the baselines their own count): the same
iterations of the task net for all, so the rows compare methods, not training lengths, and a
rerun gives the same table; about 25 minutes on 2 idle cores, the GAN methods at 2-5 steps/s,
DANN and SimGAN faster; pre-training phases, SimGAN's *_pretrain, are cut to 15 % of a run too
short for them. `--steps 0` gives every run the same wall-clock budget instead:
(`--budget-min` 40 - 7 min for data and baselines) / the number of method runs, less 15 s for
setup and scoring; a probe of 8 steps measures the method's steps/s and its run gets budget x
steps/s x 0.9 steps, at least 20 and at most the baselines' steps; it fits any machine but
depends on its load, so it is not deterministic. On a GPU the paper's sizes are
the default (each method's Config defaults, 64 px crops, batch 32, 240 px images, 224 px
crops), baselines 4000 / 3000 steps, methods `--steps`.

    PYOPENGL_PLATFORM=egl python benchmarks/adapt_methods.py [--benchmarks pose,scenes,tabletop]
        [--methods cut,dann,...] [--steps N] [--budget-min 40] [--paper|--small] [--device auto]
    python benchmarks/adapt_methods.py --smoke --steps 2 --benchmarks pose --methods dann,cut
        (plumbing check: a few images, writes /tmp/adapt_methods_smoke_<device>.json)
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))
from adapt_pixelda import render as render_crops  # noqa: E402 (benchmarks/, the script's folder)
from adapt_pixelda import save_compact, saved  # noqa: E402
from adapt_pixelda import train as train_pose  # noqa: E402
from adapt_spigan import SHARED, TABLETOP, YCBV  # noqa: E402
from adapt_spigan import render as render_scenes  # noqa: E402
from adapt_spigan import score_run as score_scenes  # noqa: E402
from adapt_spigan import train_run as train_scenes  # noqa: E402
from results_io import save_results  # noqa: E402

TASK = {"pose": "pose", "scenes": "segmentation", "tabletop": "segmentation"}
DR = "source-only (DR)"
# CPU sizes (method options a method's Config lacks are skipped)
CPU_NETS = {"pose": {"gen_filters": 32, "gen_blocks": 3, "disc_filters": 32, "task_width": 16},
            "segmentation": {"gen_filters": 16, "gen_blocks": 3, "disc_filters": 32, "task_width": 16}}
CPU_KNOBS = {"num_patches": 64, "mlp_units": 64, "disc_hidden": 256}
GEOMETRY = {("pose", False): {"size": 32, "batch": 16}, ("pose", True): {"size": 64, "batch": 32},
            ("segmentation", False): {"height": 120, "crop": 96, "batch": 4},
            ("segmentation", True): {"height": 240, "crop": 224, "batch": 4}}
BASELINE_STEPS = {("pose", "cpu"): 1500, ("segmentation", "cpu"): 1000,
                  ("pose", "cuda"): 4000, ("segmentation", "cuda"): 3000}
RESERVE_S = 420      # CPU: data (~2.5 min) and the six baseline runs (~3 min), with a margin
OVERHEAD_S = 15      # per method run: probe, building, scoring
PROBE_STEPS = 8      # speed measured over steps 2..8
SAFETY = 0.9
MIN_STEPS = 20
PRETRAIN_SHARE = 0.15


def adaptation_methods(task: str) -> list[str]:
    """Registry methods that adapt (read target data) and train ``task``; the *source-only and
    *target-only baselines are the baseline rows, not methods."""
    from adapt.methods import METHODS

    return [name for name, cls in METHODS.items()
            if task in cls.tasks and "target" in cls.needs + cls.optional
            and not name.endswith(("source-only", "target-only"))]


def method_options(method: str, task: str, paper: bool, steps: int) -> dict:
    """The options a method run gets: nothing on top of its Config defaults with --paper, else
    the CPU sizes; pre-training phases longer than the run allows cut to PRETRAIN_SHARE."""
    from adapt.methods import METHODS

    cls = METHODS[method]
    known = cls.Config.__dataclass_fields__
    opts = {} if paper else {k: v for k, v in {**CPU_NETS[task], **CPU_KNOBS}.items() if k in known}
    defaults = cls.Config()
    pre = {k: getattr(defaults, k) for k in known if k.endswith("_pretrain")}
    if sum(pre.values()) > steps * 0.25:
        f = PRETRAIN_SHARE * steps / sum(pre.values())
        opts.update({k: int(v * f) for k, v in pre.items()})
    return opts


def probe_speed(method: str, task: str, source: str, target: str, out: Path, geometry: dict,
                opts: dict, device, vgg: str) -> float:
    """Steps/s of a method in its adversarial phase (pre-training off), over steps 2..PROBE_STEPS."""
    from adapt.config import TrainConfig
    from adapt.methods import METHODS
    from adapt.tasks.segmentation import SegmentationConfig
    from adapt.trainer import Trainer

    cls = METHODS[method]
    known = cls.Config.__dataclass_fields__
    o = {**opts, "vgg_weights": vgg, **{k: 0 for k in known if k.endswith("_pretrain")}}
    mcfg = cls.Config(**{k: v for k, v in o.items() if k in known})
    cfg = TrainConfig(method=method, task=task, source=source, target=target, out=str(out),
                      steps=PROBE_STEPS, device=str(device), log_every=1, sample_every=PROBE_STEPS,
                      ckpt_every=PROBE_STEPS, **geometry)
    task_cfg = SegmentationConfig(objectness=True) if task == "segmentation" else None
    try:
        Trainer(cfg, mcfg, task_cfg=task_cfg).fit(progress=False)
        lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x]
        lines = [r for r in lines if "steps_per_s" in r]
        (n1, s1), (nk, sk) = ((r["step"], r["steps_per_s"]) for r in (lines[0], lines[-1]))
        return (nk - n1) / max(nk / sk - n1 / s1, 1e-9)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def pose_errors(run: Path, test: str, device) -> list[float]:
    """Symmetry-aware rotation error (deg) of every test crop, in the test folder's order (the
    per-crop values behind adapt.tasks.pose's mean_rot_err_deg)."""
    import torch

    from adapt.config import TrainConfig
    from adapt.pose_metrics import symmetric_rotation_error_deg
    from adapt.rotations import quat_wxyz_to_matrix
    from adapt.trainer import load_run

    method, conf = load_run(run, str(device))
    task, data = method.task, method.data
    domain = task.open_domain(TrainConfig(**conf["train"]), test, stream=99)
    sym_R, _, valid, _ = task._table(data, "cpu", domain.models_info or data.extras.get("models_info", {}))
    errs = []
    with torch.no_grad():
        for start in range(0, len(domain), 256):
            b = domain.items(range(start, min(start + 256, len(domain))))
            _, R, _ = (t.cpu() for t in method.task_net(b["x"].to(device)))
            lab = b["label"]
            errs.append(symmetric_rotation_error_deg(R, quat_wxyz_to_matrix(b["quat"]), sym_R[lab], valid[lab]))
    return torch.cat(errs).tolist()


def reset_peak_memory(device) -> bool:
    """Start a row's peak memory afresh: CUDA's counter, or the process's peak RSS (Linux)."""
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        return True
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_memory_mb(device) -> int:
    import torch

    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated() / 2**20)
    try:  # VmHWM: the peak that clear_refs resets (ru_maxrss never falls)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def metric_text(task: str, e: dict) -> str:
    if "refused" in e:
        return f"refused: {e['refused']}"
    if "error" in e:
        return f"error: {e['error']}"
    if task == "pose":
        return (f"acc {e['accuracy']:.3f}, rot err {e['mean_rot_err_deg']:.1f} deg "
                f"(median {e['median_rot_err_deg']:.1f})")
    return f"object IoU {e['object_iou']:.3f}, mIoU {e['miou']:.3f}"


def table(results: dict) -> str:
    head = ("| benchmark | row | task metric | negative transfer vs DR | steps | steps/s | "
            "peak memory (MB) | train s |")
    lines = [head, "|" + "---|" * 8]
    for bench, b in results["benchmarks"].items():
        if "skipped" in b:
            lines.append(f"| {bench} | - | skipped: {b['skipped']} | | | | | |")
        for label, e in b.get("rows", {}).items():
            nt = e.get("negative_transfer_vs_dr")
            lines.append("| " + " | ".join([
                bench, label, metric_text(b["task"], e), "-" if nt is None else f"{nt:.3f}",
                str(e.get("steps", "")), f"{e['steps_per_s']:.1f}" if "steps_per_s" in e else "",
                str(e.get("peak_memory_mb", "")), str(e.get("train_s", ""))]) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--benchmarks", default="pose,scenes,tabletop", help="comma list of pose, scenes, tabletop")
    ap.add_argument("--methods", default="", help="comma list of registry methods [every adaptation method]")
    ap.add_argument("--steps", type=int, default=300, help="steps of every method run (0 = from the "
                    "time budget, see the description: fits any machine, but is no longer deterministic)")
    ap.add_argument("--baseline-steps", type=int, default=0, help="steps of the source-only and "
                    "target-only rows [--steps when given, else 1500 pose / 1000 segmentation on a "
                    "CPU, 4000 / 3000 on a GPU]")
    ap.add_argument("--budget-min", type=float, default=40.0, help="the whole run's time budget "
                    "(minutes), split among the method runs of the full configuration")
    ap.add_argument("--run-seconds", type=float, default=0.0, help="training seconds per method run "
                    "(0 = from --budget-min)")
    ap.add_argument("--paper", action="store_true", help="the paper's sizes (each method's Config "
                    "defaults, larger images): the default on a GPU")
    ap.add_argument("--small", action="store_true", help="the CPU sizes on a GPU too")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--source-crops", type=int, default=2000)
    ap.add_argument("--target-crops", type=int, default=1000)
    ap.add_argument("--test-crops", type=int, default=300)
    ap.add_argument("--scenes", type=int, default=24, help="source scenes (4 views each); target "
                    "and test: a third each, at least 4")
    ap.add_argument("--evals", type=int, default=2, help="evaluations along each pose run (the curve)")
    ap.add_argument("--vgg-weights", default="", help="SPIGAN's VGG19: auto, a path, or random "
                    "[auto if found, else random]")
    ap.add_argument("--smoke", action="store_true", help="plumbing check: a few crops and scenes, "
                    "--steps 5 unless --steps or --run-seconds, output in /tmp unless --out")
    ap.add_argument("--data", default="", help="use the data saved by --save-data in this folder "
                    "instead of rendering (e.g. on a GPU machine without a renderer)")
    ap.add_argument("--save-data", default="", help="save the rendered data here (pose crops in "
                    "adapt_pixelda's compact form, a few MB; scenes as rendered, about 150 MB at the CPU "
                    "sizes)")
    ap.add_argument("--prepare-only", action="store_true", help="with --save-data: render, save, "
                    "train nothing")
    ap.add_argument("--out", default="", help="JSON path [benchmarks/results/adapt_methods_<device>.json]")
    args = ap.parse_args()

    import torch

    from adapt.evaluate import negative_transfer
    from adapt.methods import METHODS
    from adapt.nets.vgg import hub_weights_path
    from adapt.trainer import resolve_device
    from simdata.errors import SimdataError

    device = resolve_device(args.device)
    paper = args.paper or (device.type == "cuda" and not args.small)
    benches = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    for b in benches:
        if b not in TASK:
            raise SystemExit(f"--benchmarks: unknown {b!r}; choose from {', '.join(TASK)}")
    every = {b: adaptation_methods(TASK[b]) for b in TASK}
    wanted = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in wanted:
        if m not in METHODS or not any(m in v for v in every.values()):
            raise SystemExit(f"--methods: {m!r} is not an adaptation method of the registry; choose "
                             f"from {', '.join(sorted({x for v in every.values() for x in v}))}")
    plan = {b: [m for m in every[b] if not wanted or m in wanted] for b in benches}
    if args.smoke:
        args.steps = args.steps or (0 if args.run_seconds else 5)
        args.source_crops, args.target_crops, args.test_crops, args.scenes = 48, 32, 16, 2
    n_full = sum(len(v) for v in every.values())  # the full configuration's method runs
    run_s = args.run_seconds or max(20.0, (args.budget_min * 60 - RESERVE_S) / max(n_full, 1) - OVERHEAD_S)
    base_steps = {t: args.baseline_steps or args.steps or BASELINE_STEPS[(t, device.type)]
                  for t in ("pose", "segmentation")}
    vgg = args.vgg_weights or ("auto" if hub_weights_path().is_file() else "random")
    scene_meshes = str(SHARED / "ycb") if (SHARED / "ycb").is_dir() else str(REPO / "assets" / "ycb")
    out = Path(args.out or (Path(tempfile.gettempdir()) / f"adapt_methods_smoke_{device.type}.json"
                            if args.smoke else BENCH / "results" / f"adapt_methods_{device.type}.json"))
    results = {
        "benchmark": "adapt_methods", "date": time.strftime("%Y-%m-%d"),
        "device": torch.cuda.get_device_name() if device.type == "cuda" else
        f"cpu ({torch.get_num_threads()} threads, {platform.processor() or platform.machine()})",
        "config": {"sizes": "paper (Config defaults)" if paper else {"nets": CPU_NETS, "knobs": CPU_KNOBS},
                   "geometry": {t: GEOMETRY[(t, paper)] for t in ("pose", "segmentation")},
                   "baseline_steps": base_steps,
                   "method_steps": args.steps or (f"time budget: {run_s:.0f} s per run x probed steps/s x "
                                                  f"{SAFETY}, {MIN_STEPS}..baseline steps"),
                   "budget_min": args.budget_min, "method_runs_full_config": n_full,
                   "channels": "rgb", "methods_adapt_from": "source (DR)", "vgg_weights": vgg,
                   "smoke": args.smoke, "peak_memory": "per row" if device.type == "cuda" or
                   Path("/proc/self/clear_refs").exists() else "process peak so far",
                   "negative_transfer": "share of test crops whose rotation error rises (pose) or "
                   "images whose IoU falls (segmentation) against source-only (DR)"},
        "benchmarks": {}, "partial": True}
    t_start = time.perf_counter()
    failures = []

    def save():
        save_results(out, results, t_start)

    def run_row(bench: str, label: str, fn) -> dict | None:
        """One row: fn() -> entry; refusals and failures recorded in the row, saved after it."""
        rows = results["benchmarks"][bench]["rows"]
        reset_peak_memory(device)
        t0 = time.perf_counter()
        try:
            entry = fn()
        except SimdataError as e:
            entry = {"refused": str(e)}
        except Exception as e:  # noqa: BLE001 (one broken method must not lose the others' rows)
            traceback.print_exc()
            entry = {"error": f"{type(e).__name__}: {e}"}
            failures.append(f"{bench}/{label}")
        entry["row_s"] = round(time.perf_counter() - t0, 1)
        rows[label] = entry
        nt = entry.get("negative_transfer_vs_dr")
        print(f"[{bench}] {label:<22} {metric_text(TASK[bench], entry)}, negative transfer "
              f"{'-' if nt is None else nt}, {entry.get('steps', '-')} steps, "
              f"{entry.get('steps_per_s', '-')} steps/s, {entry.get('peak_memory_mb', '-')} MB, "
              f"{entry['row_s']} s", flush=True)
        save()
        return None if "refused" in entry or "error" in entry else entry

    def budget_steps(method, task, source, target, folder, geometry) -> tuple[int, dict]:
        if args.steps:
            return args.steps, {"chosen_by": "--steps"}
        speed = probe_speed(method, task, source, target, folder, geometry,
                            method_options(method, task, paper, 10**9), device, vgg)
        steps = int(min(max(run_s * speed * SAFETY, MIN_STEPS), base_steps[task]))
        return steps, {"chosen_by": f"time budget {run_s:.0f} s", "probe_steps_per_s": round(speed, 2)}

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data_dir = Path(args.data) if args.data else None
        save_dir = Path(args.save_data) if args.save_data else None

        # -- pose crops --------------------------------------------------------------------------
        if "pose" in benches:
            t0 = time.perf_counter()
            if data_dir:
                data = saved(data_dir / "pose", ("source", "source_dr", "target", "test"), tmp)
            else:
                meshes = str(REPO / "assets" / "ycb")
                size = GEOMETRY[("pose", paper)]["size"]
                data = {"source": render_crops(meshes, tmp / "source", args.source_crops, size, 0, "clean"),
                        "source_dr": render_crops(meshes, tmp / "source_dr", args.source_crops, size, 3, "dr"),
                        "target": render_crops(meshes, tmp / "target", args.target_crops, size, 1, "real"),
                        "test": render_crops(meshes, tmp / "test", args.test_crops, size, 2, "real")}
                if save_dir:
                    save_compact(str(save_dir / "pose"), data)
            data["seconds"] = round(time.perf_counter() - t0, 1)
            results["benchmarks"]["pose"] = {"task": "pose", "data": data, "rows": {},
                                             "test": "test split of the real-looking target"}
            print(f"pose data ready in {data['seconds']} s", flush=True)
        # -- scenes (scenes and tabletop share the sources and the source-only nets) -------------------
        seg = [b for b in benches if TASK[b] == "segmentation"]
        has_tabletop = TABLETOP.is_dir() and YCBV.is_dir()
        if seg:
            t0 = time.perf_counter()
            looks = {"source": (args.scenes, 0, "clean"), "source_dr": (args.scenes, 0, "dr")}
            if "scenes" in benches:
                looks.update({"target": (max(args.scenes // 3, 4) if not args.smoke else 1, 1, "real-looking"),
                              "test": (max(args.scenes // 3, 4) if not args.smoke else 1, 2, "real-looking")})
            sdata = {}
            for name, (n, seed, look) in looks.items():
                if data_dir:
                    sdata[name] = {**json.loads((data_dir / "scenes" / name / "entry.json").read_text()),
                                   "path": str(data_dir / "scenes" / name / "data")}
                else:
                    sdata[name] = render_scenes(scene_meshes, tmp / f"scenes_{name}", n, seed, look)
                    if save_dir:
                        dst = save_dir / "scenes" / name
                        shutil.rmtree(dst, ignore_errors=True)
                        shutil.copytree(sdata[name]["path"], dst / "data")
                        (dst / "entry.json").write_text(json.dumps(sdata[name]))
            sdata["seconds"] = round(time.perf_counter() - t0, 1)
            print(f"scene data ready in {sdata['seconds']} s", flush=True)
            if "scenes" in benches:
                results["benchmarks"]["scenes"] = {
                    "task": "segmentation", "data": sdata, "rows": {},
                    "target": "train split of the real-looking target (unlabelled for the methods)",
                    "test": "test split of the real-looking target"}
            if "tabletop" in benches:
                results["benchmarks"]["tabletop"] = (
                    {"task": "segmentation", "data": {k: v for k, v in sdata.items() if k.startswith("source")},
                     "rows": {}, "target": f"{YCBV} (real, unlabelled)",
                     "test": f"{TABLETOP} (real, labelled)"} if has_tabletop else
                    {"task": "segmentation", "rows": {}, "skipped": f"{TABLETOP} or {YCBV} is missing"})
        save()
        if args.prepare_only:
            print(f"saved the data in {args.save_data}")
            return

        # -- pose rows ---------------------------------------------------------------------------------
        if "pose" in benches:
            data, geo = results["benchmarks"]["pose"]["data"], GEOMETRY[("pose", paper)]
            test, base_err = data["test"]["path"], {}

            def pose_row(label, method, source, steps, opts, extra=None):
                run = tmp / f"pose_{label.replace(' ', '_').replace('(', '').replace(')', '')}"
                t0 = time.perf_counter()
                e = train_pose(method, source, data["target"]["path"], test, run, steps, geo["batch"],
                               geo["size"], device, opts, args.evals, task="pose")
                e["peak_memory_mb"] = peak_memory_mb(device)
                e.update({"steps": steps, "train_s": round(time.perf_counter() - t0, 1),
                          "method": method, "options": opts, **(extra or {})})
                errs = pose_errors(run, test, device)
                if label == DR:
                    base_err["errs"] = errs
                elif "errs" in base_err:  # a rise in error = a fall in -error
                    e["negative_transfer_vs_dr"] = negative_transfer([-x for x in errs],
                                                                     [-x for x in base_err["errs"]])
                shutil.rmtree(run, ignore_errors=True)
                return e

            base_opts = {} if paper else {"task_width": CPU_NETS["pose"]["task_width"]}
            for label, method, source in ((DR, "source-only", data["source_dr"]["path"]),
                                          ("source-only (clean)", "source-only", data["source"]["path"]),
                                          ("target-only", "target-only", data["target"]["path"])):
                run_row("pose", label, lambda: pose_row(label, method, source, base_steps["pose"], base_opts))
            for m in plan["pose"]:
                def fn(m=m):
                    steps, how = budget_steps(m, "pose", data["source_dr"]["path"], data["target"]["path"],
                                              tmp / f"probe_{m}", geo)
                    return pose_row(m, m, data["source_dr"]["path"], steps,
                                    method_options(m, "pose", paper, steps), how)
                run_row("pose", m, fn)

        # -- segmentation rows -----------------------------------------------------------------------
        if seg:
            geo = GEOMETRY[("segmentation", paper)]
            base_opts = {} if paper else {"task_width": CPU_NETS["segmentation"]["task_width"]}
            tests = {}
            if "scenes" in benches:
                tests["scenes"] = (str(Path(sdata["target"]["path"]) / "train_pbr"), sdata["test"]["path"])
            if "tabletop" in benches and has_tabletop:
                tests["tabletop"] = (str(YCBV), str(TABLETOP))

            def seg_train(name, method, source, target, steps, opts, extra=None):
                run = tmp / name
                t0 = time.perf_counter()
                info = train_scenes(run, method, source, target, "rgb", steps, device, geo, opts, vgg,
                                    task="segmentation")
                info.update({"train_s": round(time.perf_counter() - t0, 1), "method": method,
                             "options": opts, **(extra or {})})
                return run, info

            def seg_entry(bench, run, info):
                e = {**score_scenes(run, tests[bench][1], device), **info}
                base = results["benchmarks"][bench]["rows"].get(DR)
                if base and "per_image_iou" in base:
                    e["negative_transfer_vs_dr"] = negative_transfer(e["per_image_iou"], base["per_image_iou"])
                return e

            # the source-only nets know no target: trained once, scored on every test set
            for label, source in ((DR, sdata["source_dr"]["path"]), ("source-only (clean)", sdata["source"]["path"])):
                first = [b for b in tests]
                if not first:
                    break
                holder = {}

                def fn_first(label=label, source=source, bench=first[0]):
                    holder["run"], holder["info"] = seg_train(f"seg_{label.split(' ')[1].strip('()')}",
                                                              "seg-source-only", source, "",
                                                              base_steps["segmentation"], base_opts)
                    return seg_entry(bench, holder["run"], holder["info"])
                run_row(first[0], label, fn_first)
                for bench in first[1:]:
                    if "run" in holder:
                        run_row(bench, label, lambda bench=bench: seg_entry(bench, holder["run"],
                                                                            dict(holder["info"])))
                    else:
                        results["benchmarks"][bench]["rows"][label] = dict(results["benchmarks"][first[0]]["rows"][label])
            if "scenes" in tests:  # the synthetic target is labelled: its train split trains target-only
                run_row("scenes", "target-only", lambda: seg_entry("scenes", *seg_train(
                    "seg_target_only", "seg-source-only", sdata["target"]["path"], "",
                    base_steps["segmentation"], base_opts)))
            for bench, (target, _) in tests.items():
                for m in plan[bench]:
                    def fn(m=m, bench=bench, target=target):
                        steps, how = budget_steps(m, "segmentation", sdata["source_dr"]["path"], target,
                                                  tmp / f"probe_{bench}_{m}", geo)
                        run, info = seg_train(f"{bench}_{m}", m, sdata["source_dr"]["path"], target, steps,
                                              method_options(m, "segmentation", paper, steps), how)
                        try:
                            return seg_entry(bench, run, info)
                        finally:
                            shutil.rmtree(run, ignore_errors=True)
                    run_row(bench, m, fn)
    for b in results["benchmarks"].values():  # rows in reading order (DR trained first: the reference)
        rows = b["rows"]
        b["rows"] = {k: rows[k] for k in ("source-only (clean)", DR, "target-only") if k in rows}
        b["rows"].update({k: v for k, v in rows.items() if k not in b["rows"]})
    del results["partial"]
    save()
    print()
    print(table(results))
    print(f"\nsaved {out} ({results['seconds']} s)")
    if failures:
        raise SystemExit(f"rows that failed (see the tracebacks): {', '.join(failures)}")


if __name__ == "__main__":
    main()
