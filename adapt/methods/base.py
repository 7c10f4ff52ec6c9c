"""The protocol between a method and the trainer.

A method declares its networks, optimizers and schedulers (dicts, so the trainer can
checkpoint them without knowing them), says which data it needs, and implements one
iteration in ``training_step``. The trainer owns the loop, devices, precision, logging,
checkpoints, resume and evaluation; it has no method-specific branches.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..tasks import DataSpec, Task


@dataclass
class OptimConfig:
    """Options every method shares: Adam with a staircase decay, gradient clipping, task net width."""

    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    beta1: float = field(default=0.5, metadata={"help": "Adam beta1"})
    decay_steps: int = field(default=20000, metadata={"help": "staircase learning-rate decay period"})
    decay: float = field(default=0.95, metadata={"help": "learning-rate factor per period"})
    clip: float = field(default=5.0, metadata={"help": "gradient norm clip (0 = off)"})
    task_width: int = field(default=32, metadata={"help": "task net width"})


class Method:
    """Base class: subclasses set ``Config``, ``needs`` and build their nets in __init__."""

    name = "method"
    Config = None
    needs: tuple[str, ...] = ("source",)  # of "source", "target", "target_labelled"
    optional: tuple[str, ...] = ()        # used when the user gives them
    tasks: tuple[str, ...] = ("pose", "segmentation")  # tasks whose data the method can read
                                                        # (adapt.tasks); the first is the default

    def __init__(self, cfg, data: DataSpec, device: torch.device, training: bool = True,
                 task: Task | None = None, total_steps: int = 0):
        from ..tasks import TASKS

        self.cfg, self.data, self.device = cfg, data, device
        # the run's length (``adapt train --steps``), for schedules over training progress
        # p = step / total_steps (DANN's lambda_p, linear decays); 0 when not training
        self.total_steps = total_steps
        self.task = task if task is not None else TASKS[self.tasks[0]]()
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, object] = {}

    # -- what the trainer calls -----------------------------------------------------------
    def training_step(self, batch: dict, step: int) -> dict[str, torch.Tensor | float]:
        """One iteration; returns the values to log, as detached 0-d tensors (or floats). They
        stay on the device: the trainer reads them only on log steps, so a step does not wait
        for the GPU to finish."""
        raise NotImplementedError

    def stop_check(self, history: list[dict]) -> str | None:
        """A reason to stop training early, given the logged losses so far; None = go on."""
        return None

    def samples(self, batch: dict) -> dict[str, torch.Tensor]:
        """Images for the sample grid, each (B,C,H,W) in [-1,1], in column order."""
        return {"source": batch["source"]["x"]}

    @property
    def task_net(self) -> nn.Module:
        return self.nets["task"]

    @property
    def generator(self) -> nn.Module | None:
        return self.nets.get("generator")

    def state_dict(self) -> dict:
        return {"nets": {k: v.state_dict() for k, v in self.nets.items()},
                "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
                "schedulers": {k: v.state_dict() for k, v in self.schedulers.items()}}

    def load_state_dict(self, state: dict, nets_only: bool = False) -> None:
        for k, v in state["nets"].items():
            self.nets[k].load_state_dict(v)
        if not nets_only:
            for k, v in state["optimizers"].items():
                self.optimizers[k].load_state_dict(v)
            for k, v in state["schedulers"].items():
                self.schedulers[k].load_state_dict(v)

    def train(self, mode: bool = True) -> None:
        for net in self.nets.values():
            net.train(mode)

    # -- shared pieces ----------------------------------------------------------------------
    def build_task_net(self, width: int, net: str | None = None) -> nn.Module:
        """The task's net for this data (``net``: a registry name to override the task's)."""
        return self.task.build_net(self.data, width, net).to(self.device)

    def task_loss(self, batch: dict, weight: float = 1.0) -> tuple[torch.Tensor, dict]:
        """The task loss of the task net on one labelled batch (see adapt.tasks)."""
        return self.task.loss(self.task_net, batch, self.data, weight)

    def adam(self, params, lr: float, beta1: float, decay_steps: int, decay: float):
        opt = torch.optim.Adam(params, lr=lr, betas=(beta1, 0.999))
        return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=decay_steps, gamma=decay)


def step_optimizer(opt, sched, loss: torch.Tensor, params, clip: float) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip > 0:
        torch.nn.utils.clip_grad_norm_(params, clip)
    opt.step()
    sched.step()
