"""Exponential moving average of a net's weights (Polyak averaging), the weights a run deploys
when trained with ``--ema DECAY``.

The average of the last ~1/(1-DECAY) steps' weights is smoother than the last step's, which
land wherever the last batches pushed them; it is the usual choice of detection and
segmentation trainers (timm's ModelEma, YOLO's), and it costs one copy of the task net.
"""
from __future__ import annotations

import contextlib
import copy

import torch
from torch import nn

EMA_NET = "task_ema"  # its key among a method's nets (and so in checkpoints)


def ema_decay(decay: float, step: int) -> float:
    """The decay used after step ``step`` (0-based): ``decay``, but lower early on, so that the
    average soon forgets the random initial weights ((1+step)/(10+step), as timm's)."""
    return min(decay, (1.0 + step) / (10.0 + step))


def make_ema(net: nn.Module) -> nn.Module:
    """A frozen copy of ``net`` to hold its average."""
    ema = copy.deepcopy(net)
    ema.requires_grad_(False)
    return ema


@torch.no_grad()
def update_ema(ema: nn.Module, net: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * net, for every float weight and buffer (batch-norm
    statistics too); integer buffers (batch counts) are copied."""
    for e, w in zip((*ema.parameters(), *ema.buffers()), (*net.parameters(), *net.buffers())):
        if e.is_floating_point():
            e.lerp_(w.detach(), 1.0 - decay)
        else:
            e.copy_(w)


def deployed_nets(nets: dict) -> dict:
    """A checkpoint's nets with the averaged task net, where the run kept one, as its task net
    (what eval, export, predict and ensemble use)."""
    if EMA_NET not in nets:
        return nets
    out = {k: v for k, v in nets.items() if k != EMA_NET}
    out["task"] = nets[EMA_NET]
    return out


@contextlib.contextmanager
def averaged_task_net(method):
    """Within the block, ``method.task_net`` is the averaged one where the run keeps it (the net
    it deploys), as evaluation during training needs; the live net is put back after."""
    nets = method.nets
    live = nets["task"]
    if EMA_NET in nets:
        nets["task"] = nets[EMA_NET]
    try:
        yield method
    finally:
        nets["task"] = live
