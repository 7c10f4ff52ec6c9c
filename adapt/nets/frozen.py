"""A frozen copy of a task net, read as features for a perceptual loss."""
from __future__ import annotations

import copy

import torch
from torch import nn


class TaskFeatures(nn.Module):
    """The features (``encode``) of a frozen copy of a task net: (B,C,H,W) in the net's input
    range -> [(B,F,h,w)], a one-layer list as perceptual_l1 takes. BatchNorm uses the copy's
    running statistics (always eval). ``ready`` (saved with the weights) says whether the copy
    has been given the weights to compare with (``load_from``); until then it holds the
    untrained net it was copied from."""

    def __init__(self, net: nn.Module):
        super().__init__()
        if not hasattr(net, "encode"):
            raise TypeError(f"{type(net).__name__} has no encode(): no features to compare")
        self.net = copy.deepcopy(net)
        self.net.requires_grad_(False)
        device = next(self.net.parameters()).device
        self.register_buffer("ready", torch.tensor(False, device=device))
        self.eval()

    def train(self, mode: bool = True):
        return super().train(False)  # frozen: always eval

    @torch.no_grad()
    def load_from(self, net: nn.Module) -> None:
        self.net.load_state_dict(net.state_dict())
        self.ready.fill_(True)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.net.encode(x)]
