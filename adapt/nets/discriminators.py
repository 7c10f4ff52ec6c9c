"""Discriminators: image -> real/fake logit."""
from __future__ import annotations

import math

import torch
from torch import nn


def pixelda_strided_layers(size: int) -> int:
    """Stride-2 convolutions the PixelDA discriminator uses for ``size`` x ``size`` inputs:
    halve until the feature map is 4 x 4 or smaller."""
    return max(0, math.ceil(math.log2(size / 4)))


class GaussianNoise(nn.Module):
    """Adds N(0, std) to activations while training (a discriminator regulariser)."""

    def __init__(self, std: float):
        super().__init__()
        self.std = std

    def forward(self, x):
        return x + torch.randn_like(x) * self.std if self.training and self.std > 0 else x


class PixelDADiscriminator(nn.Module):
    """PixelDA discriminator: conv stride 1 (64 filters), then stride-2 convs doubling the
    filters until the map is <= 4x4; leaky ReLU 0.2; batch norm after the first layer;
    Gaussian noise (std 0.2) and dropout (keep 0.9) on hidden layers; one logit.
    Input (B, channels, size, size); output (B,)."""

    def __init__(self, channels: int = 3, size: int = 64, filters: int = 64,
                 noise_std: float = 0.2, keep_prob: float = 0.9):
        super().__init__()
        layers = [nn.Conv2d(channels, filters, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        c, s = filters, size
        for _ in range(pixelda_strided_layers(size)):
            layers += [GaussianNoise(noise_std), nn.Dropout(1 - keep_prob),
                       nn.Conv2d(c, c * 2, 3, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(c * 2), nn.LeakyReLU(0.2, inplace=True)]
            c, s = c * 2, (s + 1) // 2
        self.features = nn.Sequential(*layers)
        self.out_hw = s
        self.logit = nn.Linear(c * s * s, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit(self.features(x).flatten(1)).squeeze(1)


class SimGANDiscriminator(nn.Module):
    """SimGAN's local discriminator (Shrivastava et al. 2017, eye gaze): conv 3x3 stride 2
    (3F filters), conv 3x3 stride 2 (2F), max-pool 3x3 stride 1, conv 3x3 (F), conv 1x1 (F),
    conv 1x1 to one logit per patch (the paper's two-way softmax as a single logit); ReLU.
    F = ``filters`` (32 = the paper's 96, 64, 32, 32). (B,C,H,W) -> (B,1,H/4,W/4) logits,
    each judging a local patch (receptive field 23 px)."""

    def __init__(self, channels: int = 3, filters: int = 32, **_):
        super().__init__()
        f = filters
        relu = lambda: nn.ReLU(inplace=True)
        self.net = nn.Sequential(
            nn.Conv2d(channels, 3 * f, 3, 2, 1), relu(), nn.Conv2d(3 * f, 2 * f, 3, 2, 1), relu(),
            nn.MaxPool2d(3, 1, 1), nn.Conv2d(2 * f, f, 3, 1, 1), relu(), nn.Conv2d(f, f, 1), relu(),
            nn.Conv2d(f, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """PatchGAN (pix2pix/CycleGAN) with ``layers`` stride-2 convs: with 3, each output logit
    sees a 70x70 patch. (B,C,H,W) -> (B,1,H',W') logits; instance norm, leaky ReLU 0.2."""

    def __init__(self, channels: int = 3, filters: int = 64, layers: int = 3, **_):
        super().__init__()
        seq = [nn.Conv2d(channels, filters, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        c = filters
        for i in range(1, layers + 1):
            cout = filters * min(2 ** i, 8)
            stride = 2 if i < layers else 1
            seq += [nn.Conv2d(c, cout, 4, stride, 1), nn.InstanceNorm2d(cout, affine=True),
                    nn.LeakyReLU(0.2, inplace=True)]
            c = cout
        seq += [nn.Conv2d(c, 1, 4, 1, 1)]
        self.net = nn.Sequential(*seq)

    def forward(self, x):
        return self.net(x)


def patch_receptive_field(layers: int = 3) -> int:
    """Receptive field (pixels) of a PatchDiscriminator output with ``layers`` layers."""
    rf = 1
    strides = [2] * layers + [1, 1]  # first conv, middle convs (last one stride 1), output conv
    kernels = [4] * (layers + 2)
    for k, s in reversed(list(zip(kernels, strides))):
        rf = (rf - 1) * s + k
    return rf
