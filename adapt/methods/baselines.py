"""Baselines from the same trainer: the task net alone on source or on labelled target data."""
from __future__ import annotations

from dataclasses import dataclass, field

from .base import Method, step_optimizer, task_loss


@dataclass
class TaskOnlyConfig:
    pose_weight: float = field(default=0.25, metadata={"help": "weight of the pose loss"})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    beta1: float = field(default=0.5, metadata={"help": "Adam beta1"})
    decay_steps: int = field(default=20000, metadata={"help": "staircase learning-rate decay period"})
    decay: float = field(default=0.95, metadata={"help": "learning-rate factor per period"})
    clip: float = field(default=5.0, metadata={"help": "gradient norm clip (0 = off)"})
    task_width: int = field(default=32, metadata={"help": "task net width"})


class _TaskOnly(Method):
    Config = TaskOnlyConfig
    domain = "source"

    def __init__(self, cfg: TaskOnlyConfig, data, device):
        super().__init__(cfg, data, device)
        self.nets = {"task": self.build_task_net(width=cfg.task_width)}
        self.optimizers["task"], self.schedulers["task"] = self.adam(
            self.nets["task"].parameters(), cfg.lr, cfg.beta1, cfg.decay_steps, cfg.decay)

    def training_step(self, batch, step):
        b = batch[self.domain]
        loss, m = task_loss(self.nets["task"], b["x"], b["label"], b["quat"], self.cfg.pose_weight)
        step_optimizer(self.optimizers["task"], self.schedulers["task"], loss,
                       list(self.nets["task"].parameters()), self.cfg.clip)
        return {"loss_task": loss.item(), "task_acc": m["acc"], "pose": m["pose"]}

    def samples(self, batch):
        return {self.domain: batch[self.domain]["x"]}


class SourceOnly(_TaskOnly):
    """T trained on labelled source crops only: the lower bound adaptation must beat."""

    name = "source-only"
    needs = ("source",)
    domain = "source"


class TargetOnly(_TaskOnly):
    """T trained on labelled target crops: the upper bound (needs target labels)."""

    name = "target-only"
    needs = ("target_labelled",)
    domain = "target_labelled"
