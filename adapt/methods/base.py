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

from ..distributed import average_gradients
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


@dataclass
class GanNetsConfig(OptimConfig):
    """The nets of the image-to-image GAN methods (SPIGAN, CUT, FastCUT, CyCADA): ResNet
    generators, PatchGAN discriminators, and the task net."""

    gen_filters: int = field(default=64, metadata={"help": "generator filters"})
    gen_blocks: int = field(default=9, metadata={"help": "generator residual blocks"})
    disc_filters: int = field(default=64, metadata={"help": "PatchGAN filters of the first layer"})
    disc_layers: int = field(default=3, metadata={"help": "PatchGAN layers (3 = 70x70 patches)"})
    task_net: str = field(default="", metadata={"help": "task net architecture (registry name; empty = the task's own: fcn, ggcnn2, pose-net)"})
    d_augment: str = field(default="", metadata={"help": "DiffAugment (Zhao et al. 2020): random transforms applied alike to the real and the generated images the image discriminators see, in their updates and the generators', so that a discriminator cannot learn a few target images by heart: comma list of translation, cutout, color (colour inputs only), or none"})


@dataclass
class TranslationConfig(GanNetsConfig):
    """Options CUT, FastCUT and CyCADA share on top of their nets: Adam 2e-4 with the lr
    constant, then linearly to 0."""

    pose_weight: float = field(default=0.25, metadata={"help": "pose task: weight of the rotation and translation terms in T's loss"})
    lr: float = field(default=2e-4, metadata={"help": "Adam learning rate"})
    decay_start: float = field(default=0.5, metadata={"help": "share of --steps after which the lr falls linearly to 0"})
    decay_steps: int = field(default=0, metadata={"help": "unused: the lr decays linearly", "cli": False})
    decay: float = field(default=1.0, metadata={"help": "unused: the lr decays linearly", "cli": False})
    clip: float = field(default=0.0, metadata={"help": "gradient norm clip (0 = off)"})


class Method:
    """Base class: subclasses set ``Config``, ``needs`` and build their nets in __init__."""

    name = "method"
    Config = None
    needs: tuple[str, ...] = ("source",)  # of "source", "target", "target_labelled"
    optional: tuple[str, ...] = ()        # used when the user gives them
    tasks: tuple[str, ...] = ("pose", "segmentation")  # tasks whose data the method can read
                                                        # (adapt.tasks); the first is the default
    # Options added after runs were saved without them: the value those runs were trained with
    # (a run folder's config lacks the key), so loading an older run rebuilds its nets as they were.
    saved_defaults: dict = {}

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

    def task_started(self, from_run: bool) -> None:
        """Called once before a new run's first step (not on resume), after the task net got
        its starting weights: from a finished run (``--init-task``) when ``from_run``."""

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
    """One update of ``opt``'s parameters on ``loss`` (``params``: those clipped). Under
    torchrun the gradients are first averaged over the ranks (adapt.distributed), so every rank
    clips and takes the step of the global batch."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    average_gradients([p for group in opt.param_groups for p in group["params"]])
    if clip > 0:
        torch.nn.utils.clip_grad_norm_(params, clip)
    opt.step()
    sched.step()


# -- pieces the image-to-image GAN methods share (SPIGAN, CUT, CyCADA) ---------------------------
def require_colour(method: str, channels: int) -> None:
    """Methods whose generators restyle colour refuse inputs without it (depth, height)."""
    if channels < 3:
        from simdata.errors import SimdataError

        raise SimdataError(f"{method} restyles colour: use --channels rgb, rgbd or rgbh (depth "
                           f"or height alone: spigan, dann or the source-only baselines)")


def with_colour(x: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """(B,C,H,W) input ``x`` with its first three channels replaced by ``colour`` (B,3,H,W);
    channels after them (depth, height) are kept."""
    return torch.cat([colour, x[:, 3:]], 1)


def restyle(generator: nn.Module, x: torch.Tensor, channels: int = 3) -> torch.Tensor:
    """(B,C,H,W) -> the same with ``generator``'s version of the first ``channels``: it sees
    and returns those (the colour, by default); channels after them (depth, height) pass
    through as the sensor gave them."""
    return torch.cat([generator(x[:, :channels]), x[:, channels:]], 1)


def linear_decay_adam(params, lr: float, beta1: float, total_steps: int, decay_start: float):
    """Adam (betas beta1, 0.999) whose lr stays constant for the first ``decay_start`` share of
    ``total_steps`` and then falls linearly to 0 at the end (CycleGAN's and CUT's schedule, per
    step instead of per epoch). A LambdaLR: its step count is checkpointed and the factor is
    rebuilt from ``total_steps`` (0, not training: constant), so a run resumed with a larger
    ``--steps`` re-plans its decay from where it is."""
    start = int(round(decay_start * total_steps))
    span = max(1, total_steps - start)

    def factor(step: int) -> float:
        return max(0.0, 1.0 - max(0, step - start) / span) if total_steps > 0 else 1.0
    opt = torch.optim.Adam(params, lr=lr, betas=(beta1, 0.999))
    return opt, _Replanned(opt, factor)


class _Replanned(torch.optim.lr_scheduler.LambdaLR):
    """A LambdaLR that, on loading, sets the lr its (rebuilt) factor gives at the loaded step
    instead of keeping the one the checkpointed run's plan had reached."""

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        for group, base, f in zip(self.optimizer.param_groups, self.base_lrs, self.lr_lambdas):
            group["lr"] = base * f(self.last_epoch)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


@torch.no_grad()
def init_gan_weights(net: nn.Module, kind: str = "normal", gain: float = 0.02) -> nn.Module:
    """pix2pix/CycleGAN/CUT initialisation: conv and linear weights N(0, gain) (``normal``,
    CycleGAN) or Xavier-normal with ``gain`` (``xavier``, CUT), biases 0, batch-norm scales
    N(1, gain). Instance-norm scales stay 1."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if kind == "xavier":
                nn.init.xavier_normal_(m.weight, gain=gain)
            else:
                nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net
