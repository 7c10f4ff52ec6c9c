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

    def __init__(self, cfg: TaskOnlyConfig, data, device, training: bool = True):
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


@dataclass
class SegSourceOnlyConfig(OptimConfig):
    lr: float = field(default=2e-4, metadata={"help": "Adam learning rate"})
    decay: float = field(default=1.0, metadata={"help": "learning-rate factor per period"})
    clip: float = field(default=0.0, metadata={"help": "gradient norm clip (0 = off)"})
    task_net: str = field(default="fcn", metadata={"help": "segmentation net (registry name)"})


class SegSourceOnly(Method):
    """Segmentation net trained on labelled synthetic scenes only: SPIGAN's baseline."""

    name = "seg-source-only"
    Config = SegSourceOnlyConfig
    needs = ("source",)
    data_kind = "scenes"
    task = "segmentation"

    def __init__(self, cfg: SegSourceOnlyConfig, data, device, training: bool = True):
        super().__init__(cfg, data, device)
        from ..nets import build

        self.nets = {"task": build(cfg.task_net, channels=data.channels, out=len(data.classes),
                                   width=cfg.task_width).to(device)}
        self.optimizers["task"], self.schedulers["task"] = self.adam(
            self.nets["task"].parameters(), cfg.lr, cfg.beta1, cfg.decay_steps, cfg.decay)

    def training_step(self, batch, step):
        import torch.nn.functional as F

        b = batch["source"]
        loss = F.cross_entropy(self.nets["task"](b["x"]), b["label"], ignore_index=255)
        step_optimizer(self.optimizers["task"], self.schedulers["task"], loss,
                       list(self.nets["task"].parameters()), self.cfg.clip)
        return {"loss_task": loss.item()}
