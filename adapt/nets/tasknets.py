"""Task nets: what the robot runs. Small, exportable, no custom ops."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PoseClassifier(nn.Module):
    """Object classifier with a unit-quaternion pose head (PixelDA's "pose estimator").

    Input (B, channels, size, size) in [-1,1]. Output: (logits (B, classes),
    quaternion (B,4) unit, wxyz, model -> camera rotation)."""

    def __init__(self, channels: int = 3, size: int = 64, classes: int = 10, width: int = 32):
        super().__init__()
        w = width

        def block(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                                 nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                                 nn.BatchNorm2d(cout), nn.ReLU(inplace=True), nn.MaxPool2d(2))
        self.features = nn.Sequential(block(channels, w), block(w, 2 * w), block(2 * w, 4 * w),
                                      block(4 * w, 8 * w))
        feat = 8 * w * (size // 16) ** 2
        self.trunk = nn.Sequential(nn.Flatten(), nn.Linear(feat, 256), nn.ReLU(inplace=True),
                                   nn.Dropout(0.2))
        self.classify = nn.Linear(256, classes)
        self.pose = nn.Linear(256, 4)

    def forward(self, x: torch.Tensor):
        h = self.trunk(self.features(x))
        return self.classify(h), F.normalize(self.pose(h), dim=1)


class FCNSegmenter(nn.Module):
    """Small fully convolutional encoder-decoder (FCN with skips): (B,C,H,W) -> (B,out,H,W).

    Used for the segmentation task net T (out = classes, logits) and the privileged net P
    (out = 1, e.g. depth in metres). H, W divisible by 8."""

    def __init__(self, channels: int = 3, out: int = 3, width: int = 32, **_):
        super().__init__()
        w = width

        def enc(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout),
                                 nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                 nn.BatchNorm2d(cout), nn.ReLU(inplace=True))
        self.e1, self.e2, self.e3 = enc(channels, w), enc(w, 2 * w), enc(2 * w, 4 * w)
        self.d3 = nn.Sequential(nn.Conv2d(4 * w, 2 * w, 3, 1, 1), nn.ReLU(inplace=True))
        self.d2 = nn.Sequential(nn.Conv2d(4 * w, w, 3, 1, 1), nn.ReLU(inplace=True))
        self.d1 = nn.Sequential(nn.Conv2d(2 * w, w, 3, 1, 1), nn.ReLU(inplace=True))
        self.head = nn.Conv2d(w, out, 1)

    def forward(self, x):
        up = lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)
        e1 = self.e1(x)
        e2 = self.e2(e1)
        e3 = self.e3(e2)
        d2 = self.d3(e3)
        d1 = self.d2(torch.cat([up(d2), e2], 1))
        d0 = self.d1(torch.cat([up(d1), e1], 1))
        return self.head(up(d0))
