"""DANN: domain-adversarial training of neural networks (Ganin & Lempitsky, ICML 2015).

The task net T is split into a feature extractor f and its head y (``encode`` / ``decode`` of
the task nets in adapt.nets: forward = decode(encode(x))). A domain classifier d reads the
features through a gradient reversal layer R_lambda (identity forward, gradient x -lambda
backward), so one SGD step on

    L = L_task(y(f(x_s)), labels_s) + BCE(d(R_lambda(f(x_s))), 0) + BCE(d(R_lambda(f(x_t))), 1)

trains d to tell the domains apart while f learns features that fool it (the saddle point
min_{f,y} max_d L_task - lambda L_domain). L_task is the task's loss (adapt.tasks: pose,
segmentation or grasp maps) on labelled source only; the BCE is averaged over the source and
target samples (one forward pass of the concatenated batch, as in the paper, so batch norm sees
both domains). Schedules over training progress p = step / total_steps (``--steps``):

    lambda_p = 2 / (1 + exp(-gamma p)) - 1          gamma = 10 (the paper's)
    mu_p     = mu_0 / (1 + alpha p)^beta            alpha = 10, beta = 0.75 (the paper's)

the learning rate as a LambdaLR, so it is checkpointed and a resumed run goes on where it was.

The domain classifier: for vector features (PoseNet's 256-d trunk output) the paper's MLP
256 -> 1024 -> 1024 -> 1 (ReLU); for dense nets (the segmentation FCN's last decoder map at
1/2 resolution, GG-CNN2's last feature map) a small fully convolutional classifier (two 3x3
stride-2 convolutions and a 1x1 logit, adapt.nets.domain): one domain logit per patch of the
feature map, the BCE averaged over patches, rather than global pooling, which would let local
appearance differences through.

Differences from the paper: one logit and BCE instead of a two-way softmax (the same loss);
the domain classifier has no dropout; defaults are the paper's SGD (mu_0 = 0.01, momentum 0.9)
with the project's gradient-norm clip (5) as a guard for our batch-normalised nets early in
training; ``--domain-weight`` scales the domain loss (1 = the paper).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from simdata.errors import SimdataError

from ..nets import build
from ..nets.domain import grad_reverse
from .base import Method, OptimConfig, step_optimizer


def dann_lambda(p: float, gamma: float = 10.0) -> float:
    """The adaptation factor lambda_p = 2 / (1 + exp(-gamma p)) - 1: 0 at p = 0, -> 1."""
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0


def dann_lr_factor(p: float, alpha: float = 10.0, beta: float = 0.75) -> float:
    """mu_p / mu_0 = 1 / (1 + alpha p)^beta."""
    return 1.0 / (1.0 + alpha * p) ** beta


def progress(step: int, total_steps: int) -> float:
    """p = step / total_steps in [0, 1] (0 when the run's length is unknown)."""
    return min(max(step / total_steps, 0.0), 1.0) if total_steps > 0 else 0.0


@dataclass
class DannConfig(OptimConfig):
    lr: float = field(default=0.01, metadata={"help": "mu_0, the SGD learning rate at p = 0"})
    momentum: float = field(default=0.9, metadata={"help": "SGD momentum"})
    gamma: float = field(default=10.0, metadata={"help": "lambda_p = 2 / (1 + exp(-gamma p)) - 1"})
    lr_alpha: float = field(default=10.0, metadata={"help": "mu_p = mu_0 / (1 + alpha p)^beta: alpha"})
    lr_beta: float = field(default=0.75, metadata={"help": "mu_p = mu_0 / (1 + alpha p)^beta: beta"})
    domain_weight: float = field(default=1.0, metadata={"help": "weight of the domain loss"})
    disc_hidden: int = field(default=1024, metadata={"help": "hidden units of the MLP domain classifier (vector features)"})
    disc_filters: int = field(default=64, metadata={"help": "filters of the convolutional domain classifier (feature maps)"})
    pose_weight: float = field(default=0.25, metadata={"help": "weight of the pose loss (pose task)"})
    task_net: str = field(default="", metadata={"help": "task net (registry name; empty = the task's own)"})
    # Adam's and the staircase decay's options do not apply: the schedule is DANN's
    beta1: float = field(default=0.5, metadata={"cli": False})
    decay_steps: int = field(default=20000, metadata={"cli": False})
    decay: float = field(default=1.0, metadata={"cli": False})


class _FromFeatures:
    """Stands in for the task net inside ``task.loss``: returns the net's outputs for features
    computed beforehand (the loss passes the batch's images, which only fix the batch size)."""

    def __init__(self, net: nn.Module, h: torch.Tensor):
        self.net, self.h = net, h

    def _check(self, x):
        if len(x) != len(self.h):
            raise ValueError(f"features of {len(self.h)} samples, asked for {len(x)}")

    def __call__(self, x):
        self._check(x)
        return self.net.decode(self.h)

    def heads(self, x):
        self._check(x)
        return self.net.decode_heads(self.h)


class Dann(Method):
    """DANN: a domain classifier behind gradient reversal aligns the task net's features."""

    name = "dann"
    Config = DannConfig
    needs = ("source", "target")
    tasks = ("pose", "segmentation", "grasp")

    def __init__(self, cfg: DannConfig, data, device, training: bool = True, task=None,
                 total_steps: int = 0):
        super().__init__(cfg, data, device, task=task, total_steps=total_steps)
        net = self.build_task_net(cfg.task_width, cfg.task_net or None)
        if not (hasattr(net, "encode") and hasattr(net, "decode")):
            raise SimdataError(f"dann needs a task net split into features and head (encode / "
                               f"decode); {type(net).__name__} is not")
        self.nets = {"task": net, "domain": self._domain_classifier(net)}
        self._params = [p for n in self.nets.values() for p in n.parameters()]
        opt = torch.optim.SGD(self._params, lr=cfg.lr, momentum=cfg.momentum)

        def factor(step: int) -> float:  # a plain function: LambdaLR's state skips it
            return dann_lr_factor(progress(step, total_steps), cfg.lr_alpha, cfg.lr_beta)
        self.optimizers["sgd"] = opt
        self.schedulers["sgd"] = torch.optim.lr_scheduler.LambdaLR(opt, factor)

    def _domain_classifier(self, net: nn.Module) -> nn.Module:
        """An MLP for vector features, a convolutional classifier for feature maps; the
        features' shape is read from one forward pass of a blank input in eval mode."""
        was = net.training
        net.eval()
        with torch.no_grad():
            h = net.encode(torch.zeros(1, self.data.channels, self.data.size, self.data.size,
                                       device=self.device))
        net.train(was)
        if h.dim() == 2:
            d = build("domain-mlp", features=h.shape[1], hidden=self.cfg.disc_hidden)
        else:
            d = build("domain-conv", channels=h.shape[1], filters=self.cfg.disc_filters)
        return d.to(self.device)

    def training_step(self, batch: dict, step: int) -> dict[str, torch.Tensor | float]:
        cfg, T, D = self.cfg, self.nets["task"], self.nets["domain"]
        src, tgt = batch["source"], batch["target"]
        p = progress(step, self.total_steps)
        lam = dann_lambda(p, cfg.gamma)
        n = len(src["x"])
        h = T.encode(torch.cat([src["x"], tgt["x"]]))
        l_task, m = self.task.loss(_FromFeatures(T, h[:n]), src, self.data, cfg.pose_weight)
        logits = D(grad_reverse(h, lam))
        labels = torch.zeros_like(logits)
        labels[n:] = 1.0  # source 0, target 1
        l_dom = F.binary_cross_entropy_with_logits(logits, labels)
        lr = self.schedulers["sgd"].get_last_lr()[0]
        step_optimizer(self.optimizers["sgd"], self.schedulers["sgd"], l_task + cfg.domain_weight * l_dom,
                       self._params, cfg.clip)
        with torch.no_grad():
            acc = ((logits > 0).float() == labels).float().mean()
        return {"loss_task": l_task.detach(), "loss_domain": l_dom.detach(), "domain_acc": acc,
                **{f"task_{k}": v for k, v in m.items()}, "lambda": lam, "lr": lr}

    @torch.no_grad()
    def samples(self, batch: dict) -> dict[str, torch.Tensor]:
        xs, xt = batch["source"]["x"], batch["target"]["x"]
        return {"source": xs, "prediction_source": self.task.predict_images(self.task_net, xs),
                "target": xt, "prediction": self.task.predict_images(self.task_net, xt)}
