"""Baselines from the same trainer: the task net alone on source or on labelled target data.
They train any task (adapt.tasks): pose crops or segmentation scenes."""
from __future__ import annotations

from dataclasses import dataclass, field

from .base import Method, OptimConfig, step_optimizer


@dataclass
class TaskOnlyConfig(OptimConfig):
    pose_weight: float = field(default=0.25, metadata={"help": "weight of the pose loss (pose task)"})
    task_net: str = field(default="", metadata={"help": "task net (registry name; empty = the task's own)"})


class _TaskOnly(Method):
    Config = TaskOnlyConfig
    domain = "source"

    def __init__(self, cfg: TaskOnlyConfig, data, device, training: bool = True, task=None,
                 total_steps: int = 0):
        super().__init__(cfg, data, device, task=task, total_steps=total_steps)
        self.nets = {"task": self.build_task_net(cfg.task_width, cfg.task_net or None)}
        self.optimizers["task"], self.schedulers["task"] = self.adam(
            self.nets["task"].parameters(), cfg.lr, cfg.beta1, cfg.decay_steps, cfg.decay)

    def training_step(self, batch, step):
        loss, m = self.task_loss(batch[self.domain], self.cfg.pose_weight)
        step_optimizer(self.optimizers["task"], self.schedulers["task"], loss,
                       list(self.nets["task"].parameters()), self.cfg.clip)
        return {"loss_task": loss.detach(), **{f"task_{k}": v for k, v in m.items()}}

    def samples(self, batch):
        x = batch[self.domain]["x"]
        return {self.domain: x, "prediction": self.task.predict_images(self.task_net, x)}


class SourceOnly(_TaskOnly):
    """T trained on labelled source data only: the lower bound adaptation must beat."""

    name = "source-only"
    needs = ("source",)
    domain = "source"


class TargetOnly(_TaskOnly):
    """T trained on labelled target data: the upper bound (needs target labels)."""

    name = "target-only"
    needs = ("target_labelled",)
    domain = "target_labelled"


@dataclass
class SegSourceOnlyConfig(TaskOnlyConfig):
    pose_weight: float = field(default=0.25, metadata={"cli": False})  # no pose task to weigh
    lr: float = field(default=2e-4, metadata={"help": "Adam learning rate"})
    decay: float = field(default=1.0, metadata={"help": "learning-rate factor per period"})
    clip: float = field(default=0.0, metadata={"help": "gradient norm clip (0 = off)"})


class SegSourceOnly(SourceOnly):
    """Source-only segmentation with SPIGAN's optimiser settings: SPIGAN's baseline."""

    name = "seg-source-only"
    Config = SegSourceOnlyConfig
    tasks = ("segmentation",)


@dataclass
class GraspSourceOnlyConfig(TaskOnlyConfig):
    pose_weight: float = field(default=0.25, metadata={"cli": False})  # no pose task to weigh
    task_width: int = field(default=16, metadata={"help": "task net width (16 = GG-CNN2's filters)"})
    decay_steps: int = field(default=2000, metadata={"help": "staircase learning-rate decay period"})
    decay: float = field(default=0.5, metadata={"help": "learning-rate factor per period"})
    beta1: float = field(default=0.9, metadata={"help": "Adam beta1"})
    clip: float = field(default=0.0, metadata={"help": "gradient norm clip (0 = off)"})


class GraspSourceOnly(SourceOnly):
    """GG-CNN2 on labelled synthetic depth only (simdata grasps): the grasping baseline."""

    name = "grasp-source-only"
    Config = GraspSourceOnlyConfig
    tasks = ("grasp",)
