"""The one training loop: devices, precision, logging, sample grids, checkpoints, resume and
evaluation. Methods plug in through adapt.methods.base.Method."""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from simdata.errors import SimdataError

from . import distributed
from .config import TrainConfig, check_numbers, describe, non_defaults, resume_changes
from .data import seed_for
from .distributed import Ranks
from .ema import EMA_NET, averaged_task_net, deployed_nets, ema_decay, make_ema, update_ema
from .methods import METHODS, Method
from .tasks import TASKS, DataSpec, Task

log = logging.getLogger(__name__)
CKPT = "checkpoints/last.pt"
BEST = "checkpoints/best.pt"  # written when training stops early: the weights to use
STREAMS = {"source": 1, "target": 2, "target_labelled": 3}  # batch generators per domain
# the parts of a method's state every rank holds alike under torchrun; the rest is per rank
SHARED_STATE = ("nets", "optimizers", "schedulers")


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
    """torch.save to a temporary name, flushed to the disk, then renamed: a kill, a full disk
    or an object that fails to pickle leaves the previous file as it was."""
    from simdata.fileio import atomic_file

    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def load_checkpoint(path: Path, device) -> dict:
    """A checkpoint written by :func:`save_atomic`, or a one-line error naming the file when
    it cannot be read (truncated, overwritten, not a checkpoint)."""
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except Exception as e:  # torch raises whatever its unpickler or zip reader meets
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        raise SimdataError(f"{path} is not a readable checkpoint ({why}): truncated or damaged; "
                           f"restore it from a copy, or train again with another --out") from None
    if not isinstance(state, dict) or not {"step", "method", "config"} <= state.keys():
        raise SimdataError(f"{path} is not an adapt checkpoint (no step, method and config); "
                           f"point to a run folder written by `adapt train`")
    return state


def sample_grid(columns: dict[str, torch.Tensor], rows: int = 8) -> np.ndarray:
    """(H*rows, W*cols, 3) uint8 grid of [-1,1] images (first three channels), one column each."""
    cols = []
    for t in columns.values():
        t = t[:rows, :3].detach().float().cpu().clamp(-1, 1)
        t = t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t  # depth-only inputs as grey
        cols.append(((t + 1) * 127.5).round().byte().permute(0, 2, 3, 1).reshape(-1, t.shape[-1], 3))
    return torch.cat(cols, 1).numpy()


class Trainer:
    """Runs ``cfg.steps`` iterations of a method, resuming from the run folder if asked.

    ``resume``: continue the run in ``cfg.out`` (a new run when it holds no checkpoint, with a
    warning); settings that differ from the checkpoint's are listed, and those that break its
    equality with an uninterrupted run (adapt.config.RESUME_SAFE) are refused unless
    ``force_resume``. ``ranks``: this process's place among several (adapt.distributed)."""

    def __init__(self, cfg: TrainConfig, method_cfg, resume: bool = False, task_cfg=None,
                 force_resume: bool = False, ranks: Ranks = Ranks()):
        if cfg.method not in METHODS:
            raise SimdataError(f"unknown method {cfg.method!r}; choose from {', '.join(METHODS)}")
        for name in ("steps", "batch", "log_every", "sample_every", "ckpt_every"):
            if getattr(cfg, name) < 1:
                raise SimdataError(f"--{name.replace('_', '-')} {getattr(cfg, name)} must be at least 1")
        check_numbers(cfg)
        check_numbers(method_cfg)
        if not 0 <= cfg.ema < 1:
            raise SimdataError(f"--ema {cfg.ema}: the average's decay is in [0, 1) (0 = off; "
                               f"0.999 averages about the last 1000 steps)")
        self.cfg, self.method_cfg, self.ranks = cfg, method_cfg, ranks
        self.share = ranks.share(cfg.batch)
        self.out = Path(cfg.out)
        if self.out.exists() and not self.out.is_dir():
            raise SimdataError(f"--out {self.out} is a file; a run is a folder: choose another --out")
        if (self.out / CKPT).exists() and not resume:
            raise SimdataError(f"{self.out} already holds a run; pass --resume to continue it or "
                               f"choose another --out")
        self.device = resolve_device(cfg.device)
        if self.device.type == "cuda" and ranks.world > 1:
            self.device = torch.device("cuda", ranks.local)
        for flag in ("amp", "cudnn_benchmark"):  # options a CPU run cannot honour
            if getattr(cfg, flag) and self.device.type != "cuda":
                raise SimdataError(f"--{flag.replace('_', '-')} needs CUDA; this run is on "
                                   f"{self.device}: drop the option or pass --device cuda")
        if cfg.cudnn_benchmark:
            # process-wide: it picks algorithms by timing them, so reruns may differ in the last bits
            torch.backends.cudnn.benchmark = True
        self.task = resolve_task(cfg, METHODS[cfg.method], task_cfg)
        check_numbers(self.task.cfg)
        self.domains = open_domains(cfg, METHODS[cfg.method], self.task)
        data = self.task.data_spec(cfg, [d for d in self.domains.values() if d.labelled])
        self.method = build_method(cfg, method_cfg, self.task, data, self.device)
        resuming = resume and (self.out / CKPT).exists()
        if not resuming:  # a resumed run's weights come from its checkpoint
            if cfg.init_task:
                init_task_net(self.method, cfg.init_task, self.run_config(), self.device)
            self.method.task_started(bool(cfg.init_task))
        if cfg.ema:  # a net among the method's, so checkpoints, resume and best.pt keep it
            self.method.nets[EMA_NET] = make_ema(self.method.task_net)
        self.start = 0
        if resuming:
            self._resume(load_checkpoint(self.out / CKPT, self.device), force_resume)
        elif resume:
            log.warning("--resume: %s holds no checkpoint (%s); starting a new run", self.out, CKPT)
        self.saved = self.start if self.start else None  # the step last.pt holds
        self.eval_domain = None
        if cfg.eval_data:
            self.eval_domain = self.task.open_domain(cfg, cfg.eval_data, stream=99)
            if not self.eval_domain.labelled:
                raise SimdataError(f"--eval-data {cfg.eval_data} has no labels")
        self.history: list[dict] = []
        self.stopped: tuple[int, str] | None = None
        self._healthy: dict | None = None  # last checkpoint taken before any early-stop signal

    def _resume(self, state: dict, force: bool) -> None:
        """Load a checkpoint after comparing its settings with this run's."""
        if "ensemble" in state["config"]:
            raise SimdataError(f"{self.out} is an ensemble (adapt ensemble), not a training run: "
                               f"resume its members and ensemble them again")
        if state["config"]["train"]["method"] != self.cfg.method:
            raise SimdataError(f"{self.out} holds a {state['config']['train']['method']} run, "
                               f"not {self.cfg.method}")
        if self.cfg.steps < state["step"]:
            raise SimdataError(f"--steps {self.cfg.steps}: {self.out / CKPT} is at step "
                               f"{state['step']} already; pass --steps {state['step']} or more")
        safe, breaking = resume_changes(state["config"], self.run_config())
        if breaking and not force:
            raise SimdataError(f"--resume with changed settings: {'; '.join(breaking)}; the "
                               f"resumed run would no longer equal an uninterrupted one: pass the "
                               f"run's settings, or --force-resume to continue with these")
        if safe or breaking:
            log.warning("resuming %s at step %d with changed settings: %s%s", self.out, state["step"],
                        "; ".join(safe + breaking), " (forced)" if breaking else "")
        own = state.get("ranks") or []  # each rank's own method state (pools, buffers)
        method_state = state["method"]
        if len(own) == self.ranks.world:
            method_state = {**method_state, **own[self.ranks.rank]}
        if EMA_NET in method_state["nets"] and not self.cfg.ema:  # --force-resume without --ema
            method_state = {**method_state, "nets": {k: v for k, v in method_state["nets"].items()
                                                     if k != EMA_NET}}
        self.method.load_state_dict(method_state)
        if self.cfg.ema and EMA_NET not in method_state["nets"]:  # --ema added by --force-resume
            self.method.nets[EMA_NET].load_state_dict(self.method.task_net.state_dict())
        self.start = state["step"]

    def run_config(self) -> dict:
        task_cfg = self.task.cfg
        return {"train": {**asdict(self.cfg), "task": self.task.name}, "method": asdict(self.method_cfg),
                "task": asdict(task_cfg), "world_size": self.ranks.world,
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
        """Train from ``self.start`` to ``cfg.steps``; rank 0 writes the run folder. Raises
        SimdataError (and writes no checkpoint) when a loss or a weight stops being finite."""
        from tqdm import tqdm

        from simdata.fileio import disk_error, write_bytes_atomic, write_json_atomic

        cfg, m, main = self.cfg, self.method, self.ranks.main
        metrics_path = self.out / "metrics.jsonl"
        if main:
            try:
                self.out.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise disk_error(self.out, e) from None
            write_json_atomic(self.out / "config.json", self.run_config())
            log.info("%s\n%s\n%s", describe("train", cfg), describe(cfg.method, self.method_cfg),
                     describe(f"task {self.task.name}", self.task.cfg))
            if metrics_path.exists():  # keep what the checkpoint covers, drop what a kill left after it
                kept = [r for r in _read_jsonl(metrics_path) if r["step"] <= self.start]
                write_bytes_atomic(metrics_path, "".join(json.dumps(r) + "\n" for r in kept).encode())
        tb = _tensorboard(self.out / "tb") if main else None
        if self.start and metrics_path.exists():  # every rank: the early-stopping window goes on
            records = _read_jsonl(metrics_path)
            self.history = [r for r in records if r["step"] <= self.start
                            and "eval" not in r and "early_stop" not in r]
            # a run that stopped early is finished: training on would fire the rule again at
            # once and replace best.pt (taken before the signal) with weights taken after it
            ended = [r for r in records if r["step"] == self.start and "early_stop" in r]
            if ended and (self.out / BEST).is_file():
                self.stopped = (self.start, ended[-1]["early_stop"])
                log.warning("%s stopped early at step %d (%s): it is finished, and checkpoints/best.pt "
                            "is its result; --resume trains nothing (to train on, start a new run "
                            "with --init-task %s)", self.out, self.start, self.stopped[1], self.out)
        m.train(True)
        watch = FiniteWatch(self.device)
        last, t0, done = {}, time.perf_counter(), 0
        end = self.start if self.stopped else cfg.steps
        bar = tqdm(range(self.start, end), initial=self.start, total=cfg.steps, unit="step",
                   disable=not (progress and main), desc=cfg.method, dynamic_ncols=True)
        try:
            for step in bar:
                # noise and dropout of this step (each rank its own stream; rank 0 one process's)
                torch.manual_seed(seed_for(cfg.seed, self.ranks.noise_stream(), step))
                batch = _to({k: d.batch(step, cfg.batch, self.share) for k, d in self.domains.items()},
                            self.device)
                with self._autocast():
                    losses = m.training_step(batch, step)
                distributed.average_buffers(m.nets.values())
                if cfg.ema:
                    update_ema(m.nets[EMA_NET], m.task_net, ema_decay(cfg.ema, step))
                done += 1
                n = step + 1
                watch.update(n, losses)
                log_now = n % cfg.log_every == 0 or n == cfg.steps
                sample_now = n % cfg.sample_every == 0 or n == cfg.steps
                ckpt_now = n % cfg.ckpt_every == 0 or n == cfg.steps
                if log_now or sample_now or ckpt_now:  # a host sync: only where one happens anyway
                    self._check_finite(watch, losses)
                if log_now:
                    values = distributed.mean_over_ranks([float(v) for v in losses.values()], self.device)
                    last = {"step": n, **{k: round(v, 6) for k, v in zip(losses, values)},
                            "steps_per_s": round(done / (time.perf_counter() - t0), 3)}
                    if main:
                        with open(metrics_path, "a") as f:
                            f.write(json.dumps(last) + "\n")
                        if tb:
                            for k, v in last.items():
                                if k != "step":
                                    tb.add_scalar(k, v, n)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in list(last.items())[1:5]})
                    self.history.append(last)
                stop = m.stop_check(self.history) if n % cfg.log_every == 0 else None
                if (sample_now or stop) and main:
                    self._samples(batch, n)
                if ckpt_now or stop:
                    self.save(n)
                    if stop is None and main:
                        self._healthy = {"step": n, "method": _cpu_copy(m.state_dict())}
                if stop:
                    self._early_stop(n, stop)
                    break
                if (self.eval_domain and cfg.eval_every and n % cfg.eval_every == 0 and n != cfg.steps
                        and main):
                    self._evaluate(n, tb)
            result = {"steps": cfg.steps if self.stopped is None else self.stopped[0], "last": last,
                      "steps_per_s": round(done / max(time.perf_counter() - t0, 1e-9), 3)}
            if self.stopped:
                result["early_stop"] = self.stopped[1]
            if main and self.stopped:
                best = load_checkpoint(self.out / BEST, self.device)
                m.load_state_dict(best["method"], nets_only=True)  # evaluate the kept weights
            if main and self.eval_domain:
                result["eval"] = self._evaluate(result["steps"], tb)
        finally:
            bar.close()
            if tb:
                tb.close()
        return result

    def _check_finite(self, watch: FiniteWatch, losses: dict) -> None:
        """Stop at the first non-finite loss any rank saw, before anything of it is written."""
        first = watch.first_bad()
        first = distributed.min_over_ranks(first if first is not None else 2 ** 62, self.device)
        if first == 2 ** 62:
            return
        names = [k for k, v in losses.items() if not math.isfinite(float(v))]
        raise SimdataError(_non_finite_message(f"the loss became NaN or infinite at step {first}"
                                               + (f" ({', '.join(names)})" if names else ""),
                                               self.out, self.saved))

    def _early_stop(self, step: int, reason: str) -> None:
        """Log the decision and keep the last checkpoint taken before the signal as best.pt."""
        log.warning("early stop at step %d: %s", step, reason)
        self.stopped = (step, reason)
        if not self.ranks.main:
            return
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": step, "early_stop": reason,
                                "best_step": self._healthy["step"] if self._healthy else step}) + "\n")
        best = self._healthy or {"step": step, "method": self.method.state_dict()}
        save_atomic({**best, "config": self.run_config(), "early_stop": reason}, self.out / BEST)

    def save(self, step: int) -> None:
        """Checkpoint ``step`` (rank 0 writes it, with every rank's own method state); refused
        when a weight is not finite, so last.pt keeps the last good step."""
        state = self.method.state_dict()
        named = [(f"{name}.{k}", t) for name, net in self.method.nets.items()
                 for k, t in net.state_dict().items() if t.is_floating_point()]
        finite = torch.stack([t.isfinite().all() for _, t in named]).tolist() if named else []
        if not all(finite):  # one host sync for all tensors
            raise SimdataError(_non_finite_message(
                f"weights became NaN or infinite by step {step} ({named[finite.index(False)][0]})",
                self.out, self.saved))
        own = None
        if self.ranks.world > 1:  # pools and buffers differ per rank; nets and optimizers do not
            own = distributed.gather(_cpu_copy({k: v for k, v in state.items() if k not in SHARED_STATE}))
        if self.ranks.main:
            save_atomic({"step": step, "method": state, "config": self.run_config(),
                         **({"ranks": own} if own else {})}, self.out / CKPT)
        self.saved = step

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

        with averaged_task_net(self.method):  # the weights the run deploys
            res = evaluate(self.method, self.eval_domain)
        self.method.train(True)
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": step, "eval": res}) + "\n")
        if tb:
            for k, v in res.items():
                if isinstance(v, (int, float)):
                    tb.add_scalar(f"eval/{k}", v, step)
        return res


class FiniteWatch:
    """The first step whose losses were not all finite. Tensor losses are checked on their
    device and read only by :meth:`first_bad` (at log, sample and checkpoint steps), so a step
    does not wait for the GPU."""

    def __init__(self, device: torch.device):
        self.device = device
        self._first = torch.full((), -1, dtype=torch.int64, device=device)  # -1: none yet
        self._host: int | None = None  # from losses given as Python floats

    def update(self, step: int, losses: dict) -> None:
        tensors = [v.detach().reshape(-1).float().to(self.device) for v in losses.values()
                   if isinstance(v, torch.Tensor)]
        if self._host is None and any(not math.isfinite(v) for v in losses.values()
                                      if not isinstance(v, torch.Tensor)):
            self._host = step
        if tensors:
            bad = ~torch.isfinite(torch.cat(tensors)).all()
            self._first = torch.where(bad & (self._first < 0), step, self._first)

    def first_bad(self) -> int | None:
        steps = [s for s in (int(self._first), self._host) if s is not None and s >= 0]
        return min(steps) if steps else None


def _non_finite_message(what: str, out: Path, saved: int | None) -> str:
    kept = (f"{out / CKPT} keeps step {saved}" if saved else "no checkpoint was written")
    return (f"{what}; stopped, {kept}: lower the learning rate(s) or loss weights, or check the "
            f"data, and train again")


def _read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON-lines log; lines are appended, so a kill or a full disk can
    leave a last line cut short: a line that does not parse is dropped (resume rewrites the
    file with the records up to the checkpoint)."""
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


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


def deployed_checkpoint(run: str | Path, device) -> dict:
    """The checkpoint a run deploys: the best one when training stopped early, else the last."""
    path = Path(run) / BEST if (Path(run) / BEST).is_file() else Path(run) / CKPT
    if not path.is_file():
        raise SimdataError(f"{run} holds no checkpoint ({CKPT}); train first with `adapt train`")
    return load_checkpoint(path, device)


def init_task_net(method: Method, run: str | Path, run_config: dict, device) -> None:
    """Start ``method``'s task net from the deployed task net of the finished run ``run``
    (--init-task), refusing a run of another task, input, label set or architecture."""
    if not Path(run).is_dir():
        raise SimdataError(f"--init-task {run}: no such run folder; train it first with "
                           f"`adapt train seg-source-only ... --out {run}`")
    state = deployed_checkpoint(run, device)
    conf = state["config"]
    if "ensemble" in conf:
        raise SimdataError(f"--init-task {run} is an ensemble of several nets (adapt ensemble); "
                           f"start from one of its members")
    ours, theirs = run_config["data"], conf["data"]
    differ = [f"{what} {theirs.get(key)!r} there, {ours.get(key)!r} here"
              for what, key in (("input channels", "channels"), ("classes", "classes"))
              if theirs.get(key) != ours.get(key)]
    if conf["train"].get("task") != run_config["train"]["task"]:
        differ.insert(0, f"task {conf['train'].get('task')!r} there, "
                         f"{run_config['train']['task']!r} here")
    if differ:
        raise SimdataError(f"--init-task {run}: {'; '.join(differ)}; train the run to start "
                           f"from with the same --task, --channels and labels")
    weights = deployed_nets(state["method"]["nets"])["task"]
    try:
        method.task_net.load_state_dict(weights)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[1:2] or [str(e)[:120]]
        raise SimdataError(f"--init-task {run}: its task net is another architecture "
                           f"({first[0].strip()[:120]}); pass the --task-net and --task-width "
                           f"it was trained with") from None
    log.info("task net initialised from %s (step %d)", run, state["step"])


def load_run(run: str | Path, device: str = "auto") -> tuple[Method, dict]:
    """Rebuild a method from a run folder (weights only, eval mode): the best checkpoint when
    training stopped early, else the last one; a run trained with ``--ema`` gets its averaged
    task net as the task net."""
    dev = resolve_device(device)
    state = deployed_checkpoint(run, dev)
    conf = state["config"]
    if "ensemble" in conf:  # adapt ensemble: several runs' task nets as one
        from .ensemble import ensemble_method

        method = ensemble_method(conf, dev)
    else:
        method = method_from_config(conf, dev)
    method.load_state_dict({**state["method"], "nets": deployed_nets(state["method"]["nets"])},
                           nets_only=True)
    method.train(False)
    return method, conf


def method_from_config(conf: dict, device: torch.device) -> Method:
    """The method of a run's saved ``conf``, built for inference (training=False); its nets
    stay untrained until a checkpoint is loaded into them."""
    cfg = TrainConfig(**conf["train"])
    method_cls = METHODS[cfg.method]
    task_cls = TASKS[cfg.task]
    task = task_cls(task_cls.Config(**conf.get("task", {})))
    d = conf["data"]
    data = DataSpec(d["input_channels"], d["size"], d["classes"], d.get("extras", {}))
    method_cfg = method_cls.Config(**{**method_cls.saved_defaults, **conf["method"]})
    return build_method(cfg, method_cfg, task, data, device, training=False)
