"""GG-CNN2 (Morrison, Corke, Leitner 2020): a small fully convolutional grasp net on depth."""
from __future__ import annotations

import torch
from torch import nn


class GGCNN2(nn.Module):
    """Depth (or RGB-D) image (B, C, H, W), H and W multiples of 4, to grasp maps (B, 4, H, W):
    quality, cos 2a, sin 2a and width (scaled, see adapt.grasping), raw (no activation), as
    GG-CNN2 regresses them.

    Layers as the paper's: 11x11 and 5x5 convolutions with two 2x poolings, two dilated 5x5
    convolutions (dilation 2 and 4) for context, two bilinear 2x upsamplings with 3x3
    convolutions, and a 1x1 head per map. ``width`` scales the filter counts (16 = the paper's
    16, 16, 32, 16: some 66 k parameters)."""

    def __init__(self, channels: int = 1, width: int = 16, **_):
        super().__init__()
        f1, f2, f3, f4 = width, width, 2 * width, width
        relu = lambda: nn.ReLU(inplace=True)
        self.features = nn.Sequential(
            nn.Conv2d(channels, f1, 11, padding=5), relu(),
            nn.Conv2d(f1, f1, 5, padding=2), relu(),
            nn.MaxPool2d(2),
            nn.Conv2d(f1, f2, 5, padding=2), relu(),
            nn.Conv2d(f2, f2, 5, padding=2), relu(),
            nn.MaxPool2d(2),
            nn.Conv2d(f2, f3, 5, dilation=2, padding=4), relu(),
            nn.Conv2d(f3, f3, 5, dilation=4, padding=8), relu(),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(f3, f4, 3, padding=1), relu(),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(f4, f4, 3, padding=1), relu())
        self.head = nn.Conv2d(f4, 4, 1)
        self.channels = channels

    def example_inputs(self, batch: int = 2, size: int = 96) -> tuple[torch.Tensor, ...]:
        return (torch.rand(batch, self.channels, size, size) * 2 - 1,)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B,C,H,W) -> (B, width, H, W) features, what the 1x1 head reads (forward =
        decode(encode(x)); DANN's domain classifier reads them)."""
        return self.features(x)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """The four maps from features ``h`` = encode(x)."""
        return self.head(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
