"""Domain classifiers for DANN and the gradient reversal layer they sit behind."""
from __future__ import annotations

import torch
from torch import nn


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, lam: float) -> torch.Tensor:
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.lam * grad, None


def grad_reverse(x: torch.Tensor, lam: float = 1.0) -> torch.Tensor:
    """Gradient reversal (Ganin & Lempitsky 2015): the identity forward; backward, the incoming
    gradient times -``lam``. What follows it learns to minimise a loss that what precedes it
    learns to maximise, in one backward pass."""
    return _GradReverse.apply(x, float(lam))


class MLPDomainClassifier(nn.Module):
    """Vector features (B, features) -> domain logit (B,): the paper's x -> 1024 -> 1024 -> 1
    (``hidden`` units, ReLU), one logit instead of a two-way softmax."""

    def __init__(self, features: int = 256, hidden: int = 1024, **_):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h).squeeze(1)


class ConvDomainClassifier(nn.Module):
    """Feature maps (B, channels, H, W) -> a map of domain logits (B, 1, H/4, W/4): two 3x3
    stride-2 convolutions of ``filters`` (leaky ReLU 0.2) and a 1x1 logit, so each logit judges
    one patch of the feature map (a fully convolutional DANN for dense nets); any H, W."""

    def __init__(self, channels: int = 32, filters: int = 64, **_):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, filters, 3, 2, 1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(filters, filters, 3, 2, 1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(filters, 1, 1))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)
