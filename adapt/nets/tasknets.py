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
