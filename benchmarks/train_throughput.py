#!/usr/bin/env python3
"""Training steps per second of the pose methods, by precision and cuDNN setting, with a
profile of where a step's time goes.

Each row builds the real Trainer (the run's data, nets and optimizers) and times
``--steps`` iterations of its loop body (batch, transfer, ``training_step``) after
``--warmup`` untimed ones, the device synchronised at both ends. Variants:

- ``sync``: a host-device synchronisation after every step (every logged loss read as a
  Python float), as the trainer did before its losses stayed on the device between log lines:
  the baseline of the ratios;
- ``fp32``: the trainer as it is;
- ``cudnn``: ``--cudnn-benchmark`` (cuDNN times its algorithms; reruns may differ in the last bits);
- ``amp+cudnn``: bfloat16 autocast as well (``--amp``).

``--profile`` adds torch.profiler's table of the ten most expensive operators over 20 steps
of the fastest variant, for the first method. Data: crops folders saved by
``benchmarks/adapt_pixelda.py --save-data`` (``--data``), else crops rendered here from
assets/ycb. Saves benchmarks/results/train_throughput_<device>.json.

    python benchmarks/train_throughput.py [--data .devdata] [--paper] [--methods pixelda,source-only]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

VARIANTS = {"sync": {}, "fp32": {}, "cudnn": {"cudnn_benchmark": True},
            "amp+cudnn": {"amp": True, "cudnn_benchmark": True}}


def build(method: str, source: str, target: str, out: Path, size: int, batch: int, device,
          nets: dict, variant: dict):
    from adapt.config import TrainConfig
    from adapt.methods import METHODS
    from adapt.trainer import Trainer

    cls = METHODS[method]
    mcfg = cls.Config(**{k: v for k, v in nets.items() if k in cls.Config.__dataclass_fields__})
    cfg = TrainConfig(method=method, source=source, target=target, out=str(out), steps=10**6,
                      batch=batch, size=size, device=str(device), **variant)
    return Trainer(cfg, mcfg)


def time_steps(trainer, steps: int, warmup: int, sync_each: bool, profile: bool = False) -> dict:
    import torch

    from adapt.trainer import _to

    dev, m = trainer.device, trainer.method
    m.train(True)

    def one(step):
        batch = _to({k: d.batch(step, trainer.cfg.batch) for k, d in trainer.domains.items()}, dev)
        with trainer._autocast():
            losses = m.training_step(batch, step)
        if sync_each:
            {k: float(v) for k, v in losses.items()}

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for s in range(warmup):
        one(s)
    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for s in range(warmup, warmup + steps):
        one(s)
    sync()
    seconds = time.perf_counter() - t0
    row = {"steps_per_s": round(steps / seconds, 2), "ms_per_step": round(1000 * seconds / steps, 2)}
    if dev.type == "cuda":
        row["peak_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
    if profile:
        from torch.profiler import ProfilerActivity, profile as prof

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
        with prof(activities=acts) as p:
            for s in range(20):
                one(warmup + steps + s)
            sync()
        key = "cuda_time_total" if dev.type == "cuda" else "cpu_time_total"
        row["profile"] = p.key_averages().table(sort_by=key, row_limit=10, max_name_column_width=40)
        print(row["profile"], flush=True)
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default="pixelda,source-only", help="comma-separated methods")
    ap.add_argument("--variants", default="", help=f"comma-separated, of {', '.join(VARIANTS)} "
                    "[all on CUDA; sync,fp32 on a CPU]")
    ap.add_argument("--steps", type=int, default=200, help="timed steps per row")
    ap.add_argument("--warmup", type=int, default=30, help="untimed steps before them")
    ap.add_argument("--paper", action="store_true", help="paper-size nets, 64 px, batch 32")
    ap.add_argument("--data", default="", help="crops folders saved by adapt_pixelda.py --save-data")
    ap.add_argument("--crops", type=int, default=300, help="crops per domain rendered without --data")
    ap.add_argument("--profile", action="store_true", help="torch.profiler table for the first method")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--out", default="", help="JSON path [benchmarks/results/train_throughput_<device>.json]")
    args = ap.parse_args()

    import torch

    from adapt.trainer import resolve_device
    from adapt_pixelda import render, saved

    device = resolve_device(args.device)
    variants = [v for v in (args.variants or ("sync,fp32" if device.type != "cuda" else
                                              ",".join(VARIANTS))).split(",") if v]
    for v in variants:
        if v not in VARIANTS:
            raise SystemExit(f"unknown variant {v!r}; choose from {', '.join(VARIANTS)}")
    if args.paper:
        size, batch, nets = 64, 32, {}
    else:
        size, batch, nets = 32, 16, {"gen_filters": 32, "gen_blocks": 3, "disc_filters": 32, "task_width": 16}
    out = Path(args.out or REPO / "benchmarks" / "results" / f"train_throughput_{device.type}.json")
    results = {"benchmark": "train_throughput", "date": time.strftime("%Y-%m-%d"),
               "device": torch.cuda.get_device_name() if device.type == "cuda" else
               f"cpu ({torch.get_num_threads()} threads)", "torch": torch.__version__,
               "config": {"size": size, "batch": batch, "nets": nets or "paper", "steps": args.steps,
                          "warmup": args.warmup}, "methods": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.data:
            data = saved(Path(args.data), ("source", "target"), tmp)
        else:
            meshes = str(REPO / "assets" / "ycb")
            data = {"source": render(meshes, tmp / "source", args.crops, size, 0, "clean"),
                    "target": render(meshes, tmp / "target", args.crops, size, 1, "real")}
        for i, method in enumerate(m for m in args.methods.split(",") if m):
            rows = results["methods"][method] = {}
            for v in variants:
                trainer = build(method, data["source"]["path"], data["target"]["path"],
                                tmp / f"run_{method}_{v}", size, batch, device, nets, VARIANTS[v])
                rows[v] = time_steps(trainer, args.steps, args.warmup, sync_each=v == "sync")
                torch.backends.cudnn.benchmark = False  # the trainer's switch is process-wide
                print(f"{method:>12} {v:>10}: {rows[v]['steps_per_s']:.1f} steps/s "
                      f"({rows[v]['ms_per_step']:.1f} ms)", flush=True)
            base = rows.get("sync", {}).get("steps_per_s")
            if base:
                for r in rows.values():
                    r["vs_sync"] = round(r["steps_per_s"] / base, 2)
            if args.profile and i == 0:
                best = max(variants, key=lambda v: rows[v]["steps_per_s"])
                trainer = build(method, data["source"]["path"], data["target"]["path"],
                                tmp / f"run_{method}_profile", size, batch, device, nets, VARIANTS[best])
                rows[best]["profile"] = time_steps(trainer, 10, args.warmup, False, profile=True)["profile"]
                torch.backends.cudnn.benchmark = False
            out.parent.mkdir(parents=True, exist_ok=True)
            out.with_suffix(".json.tmp").write_text(json.dumps(results, indent=2) + "\n")
            out.with_suffix(".json.tmp").replace(out)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
