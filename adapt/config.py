"""Run configuration: one dataclass for the trainer, one per method; printed and saved."""
from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields


@dataclass
class TrainConfig:
    method: str = field(default="pixelda", metadata={"help": "method name (see `adapt train --help`)"})
    task: str = field(default="", metadata={"help": "task: pose (crops) or segmentation (scenes); empty = the method's first"})
    source: str = field(default="", metadata={"help": "labelled synthetic crops folder"})
    target: str = field(default="", metadata={"help": "target domain: crops folder, image folder or ROS bag (.bag, .db3, .mcap, ROS 2 folder)"})
    bag_topics: str = field(default="", metadata={"help": "topics of every ROS bag given as a domain (--source, --target, --target-labelled, --eval-data): colour=TOPIC,depth=TOPIC,camera_info=TOPIC,tolerance_s=S (any of them; the others are found from the message types; depth=none reads colour only)"})
    target_labelled: str = field(default="", metadata={"help": "labelled target crops (semi-supervised / target-only)"})
    out: str = field(default="runs/run", metadata={"help": "run folder"})
    steps: int = field(default=20000, metadata={"help": "training iterations"})
    batch: int = field(default=32, metadata={"help": "batch size per domain (with --nproc N: the global batch, split evenly over the N processes)"})
    size: int = field(default=64, metadata={"help": "crop size the nets see"})
    channels: str = field(default="rgb", metadata={"help": "net input: rgb, rgbd or depth (the sensor's depth relative to the image's median), rgbh or height (the height above the dominant plane, the table), see adapt.data; methods that restyle colour (cut, cycada, simgan) need rgb, rgbd or rgbh; spigan restyles the colour, or depth or height alone"})
    height: int = field(default=320, metadata={"help": "segmentation: images are resized to this height"})
    crop: int = field(default=320, metadata={"help": "segmentation: random square crops of this side"})
    class_agnostic: bool = field(default=False, metadata={"help": "segmentation: one 'object' class"})
    seed: int = field(default=0, metadata={"help": "seed of weights, batches and noise"})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda"})
    amp: bool = field(default=False, metadata={"help": "bfloat16 autocast on CUDA"})
    cudnn_benchmark: bool = field(default=False, metadata={"help": "CUDA: let cuDNN time its convolution algorithms and keep the fastest (faster steps; a rerun is no longer bit-identical)"})
    log_every: int = field(default=50, metadata={"help": "steps between metric lines"})
    sample_every: int = field(default=1000, metadata={"help": "steps between sample grids"})
    ckpt_every: int = field(default=1000, metadata={"help": "steps between checkpoints"})
    eval_data: str = field(default="", metadata={"help": "labelled target crops evaluated during training"})
    eval_every: int = field(default=0, metadata={"help": "steps between evaluations (0 = at the end only)"})
    init_task: str = field(default="", metadata={"help": "a finished run (`adapt train` folder) whose task net this run's starts from, its deployed weights (best.pt when it stopped early; the average with --ema): train source-only first, then adapt from it, as CyCADA does; the task, input channels, classes and task net must be the same (empty = from scratch)"})
    ema: float = field(default=0.0, metadata={"help": "decay of an exponential moving average of the task net's weights, updated every step and used by evaluation, export, predict and ensemble in place of the last step's weights (0 = off; 0.999 averages about the last 1000 steps)"})


def non_defaults(cfg) -> dict:
    """Fields of a config dataclass that differ from their defaults."""
    out = {}
    for f in fields(cfg):
        default = f.default if f.default is not MISSING else (
            f.default_factory() if f.default_factory is not MISSING else MISSING)
        if getattr(cfg, f.name) != default:
            out[f.name] = getattr(cfg, f.name)
    return out


def describe(title: str, cfg) -> str:
    """Readable listing of a config, marking values that differ from the default."""
    changed = non_defaults(cfg)
    lines = [f"{title}:"]
    for k, v in asdict(cfg).items():
        lines.append(f"  {k:<22} {v!r}" + ("   (default changed)" if k in changed else ""))
    return "\n".join(lines)


def flag(name: str) -> str:
    """The command-line flag of a config field."""
    return "--" + name.replace("_", "-")


def check_numbers(cfg) -> None:
    """Refuse numeric options no run can use, naming the flag: every number of these configs is
    a count, size, rate, weight, threshold or share, so none is negative, NaN or infinite, and
    a learning rate (a field named ``lr`` or ``*_lr``) is above 0."""
    from simdata.errors import SimdataError

    for f in fields(cfg):
        v = getattr(cfg, f.name)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if not math.isfinite(v) or v < 0:
            raise SimdataError(f"{flag(f.name)} {v}: must be a finite number, 0 or more")
        if (f.name == "lr" or f.name.endswith("_lr")) and v == 0:
            raise SimdataError(f"{flag(f.name)} 0: a learning rate must be above 0")


# Options a resumed run may change without changing what it computes: its length (schedules
# over the run's length re-plan from where it is) and what it logs, samples, checkpoints and
# evaluates. Everything else (batch, seed, data, nets, losses, rates, device...) changes the
# steps after the checkpoint, so an uninterrupted run would not have made them.
RESUME_SAFE = frozenset({"steps", "log_every", "sample_every", "ckpt_every", "eval_data", "eval_every",
                         "out"})


def resume_changes(saved: dict, now: dict) -> tuple[list[str], list[str]]:
    """Differences between a checkpoint's run configuration and the resumed run's (both
    ``Trainer.run_config()`` dicts: sections train, method, task), as ``--flag old -> new``
    strings: (safe ones, ones that break equality with an uninterrupted run). A field one side
    lacks (a checkpoint from an older version) is not compared. The number of processes
    (``world_size``, adapt.distributed) splits the batch and so breaks it too."""
    safe, breaking = [], []
    if saved.get("world_size", 1) != now.get("world_size", 1):
        breaking.append(f"--nproc {saved.get('world_size', 1)} -> {now.get('world_size', 1)}")
    for section in ("train", "method", "task"):
        old, new = saved.get(section, {}), now.get(section, {})
        for k in new:
            if k in old and old[k] != new[k]:
                (safe if section == "train" and k in RESUME_SAFE else breaking).append(
                    f"{flag(k)} {old[k]!r} -> {new[k]!r}")
    return safe, breaking
