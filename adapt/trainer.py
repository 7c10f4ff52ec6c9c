"""The one training loop: devices, precision, logging, sample grids, checkpoints, resume and
evaluation. Methods plug in through adapt.methods.base.Method."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from simdata.errors import SimdataError

from .config import TrainConfig, describe, non_defaults
from .data import seed_for
from .methods import METHODS, Method
from .tasks import TASKS, DataSpec, Task

log = logging.getLogger(__name__)
CKPT = "checkpoints/last.pt"
BEST = "checkpoints/best.pt"  # written when training stops early: the weights to use
STREAMS = {"source": 1, "target": 2, "target_labelled": 3}  # batch generators per domain


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SimdataError("--device cuda but no CUDA GPU is visible; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise SimdataError(f"--device {name!r}: use auto, cpu or cuda")
    return torch.device(name)


def resolve_task(cfg: TrainConfig, method_cls: type[Method], task_cfg=None) -> Task:
    """The task the run trains: --task, or the method's first; refused if the method cannot."""
    name = cfg.task or method_cls.tasks[0]
    if name not in TASKS:
        raise SimdataError(f"--task {name!r}: choose from {', '.join(TASKS)}")
    if name not in method_cls.tasks:
        raise SimdataError(f"{method_cls.name} cannot train the {name} task; it trains "
                           f"{', '.join(method_cls.tasks)}")
    return TASKS[name](task_cfg)


def open_domains(cfg: TrainConfig, method_cls: type[Method], task: Task) -> dict:
    paths = {"source": cfg.source, "target": cfg.target,
             "target_labelled": cfg.target_labelled or (cfg.target if "target_labelled" in method_cls.needs else "")}
    needs = method_cls.needs + tuple(k for k in method_cls.optional if paths[k])
    domains = {}
    for key in needs:
        if not paths[key]:
            flag = "--target" if key == "target_labelled" else f"--{key.replace('_', '-')}"
            raise SimdataError(f"{method_cls.name} needs {flag} (a {key.replace('_', ' ')} folder)")
        if not Path(paths[key]).exists():
            raise SimdataError(f"{key.replace('_', ' ')} folder {paths[key]} does not exist")
        domains[key] = task.open_domain(cfg, paths[key], STREAMS[key])
        if key in ("source", "target_labelled") and not domains[key].labelled:
            raise SimdataError(f"{paths[key]} has no labels; {key.replace('_', ' ')} data for the "
                               f"{task.name} task must be {task.data_kind}")
    names = [d.names for d in domains.values() if d.labelled]
    if any(n != names[0] for n in names):
        raise SimdataError("labelled folders name different object classes; make them from the same meshes")
    return domains


def build_method(cfg: TrainConfig, method_cfg, task: Task, data: DataSpec, device,
                 training: bool = True) -> Method:
    torch.manual_seed(cfg.seed)  # initial weights
    return METHODS[cfg.method](method_cfg, data, device, training=training, task=task,
                               total_steps=cfg.steps if training else 0)


def _to(batch, device):
    return {k: ({kk: vv.to(device) for kk, vv in v.items()} if isinstance(v, dict) else v.to(device))
            for k, v in batch.items()}


def save_atomic(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def sample_grid(columns: dict[str, torch.Tensor], rows: int = 8) -> np.ndarray:
    """(H*rows, W*cols, 3) uint8 grid of [-1,1] images (first three channels), one column each."""
    cols = []
    for t in columns.values():
        t = t[:rows, :3].detach().float().cpu().clamp(-1, 1)
        t = t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t  # depth-only inputs as grey
        cols.append(((t + 1) * 127.5).round().byte().permute(0, 2, 3, 1).reshape(-1, t.shape[-1], 3))
    return torch.cat(cols, 1).numpy()


class Trainer:
    """Runs ``cfg.steps`` iterations of a method, resuming from the run folder if asked."""

    def __init__(self, cfg: TrainConfig, method_cfg, resume: bool = False, task_cfg=None):
        if cfg.method not in METHODS:
            raise SimdataError(f"unknown method {cfg.method!r}; choose from {', '.join(METHODS)}")
        for name in ("steps", "batch", "log_every", "sample_every", "ckpt_every"):
            if getattr(cfg, name) < 1:
                raise SimdataError(f"--{name.replace('_', '-')} {getattr(cfg, name)} must be at least 1")
        self.cfg, self.method_cfg = cfg, method_cfg
        self.out = Path(cfg.out)
        if (self.out / CKPT).exists() and not resume:
            raise SimdataError(f"{self.out} already holds a run; pass --resume to continue it or "
                               f"choose another --out")
        self.device = resolve_device(cfg.device)
        for flag in ("amp", "cudnn_benchmark"):  # options a CPU run cannot honour
            if getattr(cfg, flag) and self.device.type != "cuda":
                raise SimdataError(f"--{flag.replace('_', '-')} needs CUDA; this run is on "
                                   f"{self.device}: drop the option or pass --device cuda")
        if cfg.cudnn_benchmark:
            # process-wide: it picks algorithms by timing them, so reruns may differ in the last bits
            torch.backends.cudnn.benchmark = True
        self.task = resolve_task(cfg, METHODS[cfg.method], task_cfg)
        self.domains = open_domains(cfg, METHODS[cfg.method], self.task)
        data = self.task.data_spec(cfg, [d for d in self.domains.values() if d.labelled])
        self.method = build_method(cfg, method_cfg, self.task, data, self.device)
        self.start = 0
        if resume and (self.out / CKPT).exists():
            state = torch.load(self.out / CKPT, map_location=self.device, weights_only=False)
            if state["config"]["train"]["method"] != cfg.method:
                raise SimdataError(f"{self.out} holds a {state['config']['train']['method']} run, "
                                   f"not {cfg.method}")
            self.method.load_state_dict(state["method"])
            self.start = state["step"]
        self.eval_domain = None
        if cfg.eval_data:
            self.eval_domain = self.task.open_domain(cfg, cfg.eval_data, stream=99)
            if not self.eval_domain.labelled:
                raise SimdataError(f"--eval-data {cfg.eval_data} has no labels")
        self.history: list[dict] = []
        self.stopped: tuple[int, str] | None = None
        self._healthy: dict | None = None  # last checkpoint taken before any early-stop signal

    def run_config(self) -> dict:
        task_cfg = self.task.cfg
        return {"train": {**asdict(self.cfg), "task": self.task.name}, "method": asdict(self.method_cfg),
                "task": asdict(task_cfg),
                "changed": {"train": non_defaults(self.cfg), "method": non_defaults(self.method_cfg),
                            "task": non_defaults(task_cfg)},
                "data": {"classes": self.method.data.classes, "channels": self.cfg.channels,
                         "input_channels": self.method.data.channels,
                         "size": self.method.data.size, "input_range": [-1, 1],
                         "extras": self.method.data.extras}}

    def _autocast(self):
        if self.cfg.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def fit(self, progress: bool = True) -> dict:
        from tqdm import tqdm

        cfg, m = self.cfg, self.method
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.json").write_text(json.dumps(self.run_config(), indent=2) + "\n")
        log.info("%s\n%s\n%s", describe("train", cfg), describe(cfg.method, self.method_cfg),
                 describe(f"task {self.task.name}", self.task.cfg))
        tb = _tensorboard(self.out / "tb")
        metrics_path = self.out / "metrics.jsonl"
        if metrics_path.exists():  # keep what the checkpoint covers, drop what a kill left after it
            kept = [json.loads(line) for line in metrics_path.read_text().splitlines() if line]
            kept = [r for r in kept if r["step"] <= self.start]
            metrics_path.write_text("".join(json.dumps(r) + "\n" for r in kept))
            # the early-stopping window goes on where it was
            self.history = [r for r in kept if "eval" not in r and "early_stop" not in r]
        m.train(True)
        last, t0, done = {}, time.perf_counter(), 0
        bar = tqdm(range(self.start, cfg.steps), initial=self.start, total=cfg.steps, unit="step",
                   disable=not progress, desc=cfg.method, dynamic_ncols=True)
        try:
            for step in bar:
                torch.manual_seed(seed_for(cfg.seed, 0, step))  # noise and dropout of this step
                batch = _to({k: d.batch(step, cfg.batch) for k, d in self.domains.items()}, self.device)
                with self._autocast():
                    losses = m.training_step(batch, step)
                done += 1
                n = step + 1
                if n % cfg.log_every == 0 or n == cfg.steps:
                    last = {"step": n, **{k: round(float(v), 6) for k, v in losses.items()},
                            "steps_per_s": round(done / (time.perf_counter() - t0), 3)}
                    with open(metrics_path, "a") as f:
                        f.write(json.dumps(last) + "\n")
                    if tb:
                        for k, v in last.items():
                            if k != "step":
                                tb.add_scalar(k, v, n)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in list(losses.items())[:4]})
                    self.history.append(last)
                stop = m.stop_check(self.history) if n % cfg.log_every == 0 else None
                if n % cfg.sample_every == 0 or n == cfg.steps or stop:
                    self._samples(batch, n)
                if n % cfg.ckpt_every == 0 or n == cfg.steps or stop:
                    self.save(n)
                    if stop is None:
                        self._healthy = {"step": n, "method": _cpu_copy(m.state_dict())}
                if stop:
                    self._early_stop(n, stop)
                    break
                if self.eval_domain and cfg.eval_every and n % cfg.eval_every == 0 and n != cfg.steps:
                    self._evaluate(n, tb)
        finally:
            bar.close()
        result = {"steps": cfg.steps if self.stopped is None else self.stopped[0], "last": last,
                  "steps_per_s": round(done / max(time.perf_counter() - t0, 1e-9), 3)}
        if self.stopped:
            result["early_stop"] = self.stopped[1]
            best = torch.load(self.out / BEST, map_location=self.device, weights_only=False)
            m.load_state_dict(best["method"], nets_only=True)  # evaluate the kept weights
        if self.eval_domain:
            result["eval"] = self._evaluate(result["steps"], tb)
        if tb:
            tb.close()
        return result

    def _early_stop(self, step: int, reason: str) -> None:
        """Log the decision and keep the last checkpoint taken before the signal as best.pt."""
        log.warning("early stop at step %d: %s", step, reason)
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": step, "early_stop": reason,
                                "best_step": self._healthy["step"] if self._healthy else step}) + "\n")
        best = self._healthy or {"step": step, "method": self.method.state_dict()}
        save_atomic({**best, "config": self.run_config(), "early_stop": reason}, self.out / BEST)
        self.stopped = (step, reason)

    def save(self, step: int) -> None:
        save_atomic({"step": step, "method": self.method.state_dict(), "config": self.run_config()},
                    self.out / CKPT)

    def _samples(self, batch, step):
        from simdata.fileio import write_image

        self.method.train(False)
        try:
            grid = sample_grid(self.method.samples(batch))
        finally:
            self.method.train(True)
        (self.out / "samples").mkdir(exist_ok=True)
        write_image(self.out / "samples" / f"step_{step:07d}.png", grid)

    def _evaluate(self, step, tb):
        from .evaluate import evaluate

        res = evaluate(self.method, self.eval_domain)
        self.method.train(True)
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": step, "eval": res}) + "\n")
        if tb:
            for k, v in res.items():
                if isinstance(v, (int, float)):
                    tb.add_scalar(f"eval/{k}", v, step)
        return res


def _tensorboard(path: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.warning("tensorboard is not installed: metrics go to metrics.jsonl only")
        return None
    return SummaryWriter(str(path))


def _cpu_copy(state):
    if isinstance(state, dict):
        return {k: _cpu_copy(v) for k, v in state.items()}
    if isinstance(state, list):
        return [_cpu_copy(v) for v in state]
    return state.detach().to("cpu", copy=True) if isinstance(state, torch.Tensor) else state


def load_run(run: str | Path, device: str = "auto") -> tuple[Method, dict]:
    """Rebuild a method from a run folder (weights only, eval mode): the best checkpoint when
    training stopped early, else the last one."""
    path = Path(run) / BEST if (Path(run) / BEST).is_file() else Path(run) / CKPT
    if not path.is_file():
        raise SimdataError(f"{run} holds no checkpoint ({CKPT}); train first with `adapt train`")
    dev = resolve_device(device)
    state = torch.load(path, map_location=dev, weights_only=False)
    conf = state["config"]
    cfg = TrainConfig(**conf["train"])
    method_cls = METHODS[cfg.method]
    task_cls = TASKS[cfg.task]
    task = task_cls(task_cls.Config(**conf.get("task", {})))
    d = conf["data"]
    data = DataSpec(d["input_channels"], d["size"], d["classes"], d.get("extras", {}))
    method = build_method(cfg, method_cls.Config(**conf["method"]), task, data, dev, training=False)
    method.load_state_dict(state["method"], nets_only=True)
    method.train(False)
    return method, conf
