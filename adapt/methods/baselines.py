"""Baselines from the same trainer: the task net alone on source or on labelled target data."""
from __future__ import annotations

from dataclasses import dataclass, field

from .base import Method, OptimConfig, step_optimizer, task_loss


@dataclass
class TaskOnlyConfig(OptimConfig):
    pose_weight: float = field(default=0.25, metadata={"help": "weight of the pose loss"})


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
