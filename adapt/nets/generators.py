"""Generators: image (+ noise) -> image of the same size and channels, tanh output."""
from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus the input."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x):
        return x + self.body(x)


class PixelDAGenerator(nn.Module):
    """PixelDA generator G(x, z) (Bousmalis et al. 2017): residual blocks at full resolution.

    The noise z (B, noise_dim), U(-1,1), is projected by a linear layer to one extra input
    channel of size H x W. Input x: (B, channels, size, size) in [-1,1]; output the same.
    """

    def __init__(self, channels: int = 3, size: int = 64, noise_dim: int = 10, filters: int = 64,
                 blocks: int = 6):
        super().__init__()
        self.channels, self.size, self.noise_dim = channels, size, noise_dim
        self.noise = nn.Linear(noise_dim, size * size)
        self.head = nn.Sequential(nn.Conv2d(channels + 1, filters, 3, padding=1), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*[ResidualBlock(filters) for _ in range(blocks)])
        self.tail = nn.Conv2d(filters, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        zc = self.noise(z).view(-1, 1, self.size, self.size)
        return torch.tanh(self.tail(self.blocks(self.head(torch.cat([x, zc], 1)))))

    def sample_noise(self, batch: int, device, generator: torch.Generator | None = None):
        return torch.rand(batch, self.noise_dim, device=device, generator=generator) * 2 - 1
