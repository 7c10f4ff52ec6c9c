"""Task nets: what the robot runs. Small, exportable, no custom ops."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PoseNet(nn.Module):
    """Object classifier with per-class rotation and translation heads (PixelDA's "pose
    estimator" grown to full 6D).

    Input (B, channels, size, size) in [-1,1]. ``forward`` returns, for the predicted class:
    logits (B, classes); rotation (B,3,3) model -> camera (OpenCV axes); translation code
    (B,3) = (dx, dy, zeta) of adapt.translation (decode with the crop's K). ``heads`` returns
    every class's rotation and code, (B,classes,3,3) and (B,classes,3), for training with the
    true class. ``rotation``: "6d" (Zhou et al. 2019, continuous) or "quat" (unit quaternion,
    PixelDA)."""

    def __init__(self, channels: int = 3, size: int = 64, classes: int = 10, width: int = 32,
                 rotation: str = "6d"):
        super().__init__()
        if rotation not in ROTATION_DIMS:
            raise ValueError(f"rotation {rotation!r}: use one of {', '.join(ROTATION_DIMS)}")
        w, self.classes, self.rotation, self.size, self.channels = width, classes, rotation, size, channels

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
        self.rot = nn.Linear(256, classes * ROTATION_DIMS[rotation])
        self.trans = nn.Linear(256, classes * 3)
        with torch.no_grad():  # start near the identity / a centred object at zeta = 2
            self.rot.bias.copy_(torch.tensor(ROTATION_INIT[rotation]).repeat(classes))
            self.trans.bias.copy_(torch.tensor([0.0, 0.0, 2.0]).repeat(classes))

    def example_inputs(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        return (torch.rand(batch, self.channels, self.size, self.size) * 2 - 1,)

    # The net as feature extractor and head (forward = decode(encode(x)), heads = decode_heads
    # (encode(x))): DANN's domain classifier reads the features.
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, channels, size, size) -> (B, 256) features, what every head reads."""
        return self.trunk(self.features(x))

    def decode_heads(self, h: torch.Tensor):
        """``heads`` from features ``h`` = encode(x)."""
        from ..rotations import quat_wxyz_to_matrix, rotation_6d_to_matrix

        b = h.shape[0]
        r = self.rot(h).view(b * self.classes, -1)
        R = rotation_6d_to_matrix(r) if self.rotation == "6d" else quat_wxyz_to_matrix(r)
        return self.classify(h), R.view(b, self.classes, 3, 3), self.trans(h).view(b, self.classes, 3)

    def decode(self, h: torch.Tensor):
        """``forward`` from features ``h`` = encode(x)."""
        logits, R, t = self.decode_heads(h)
        k = logits.argmax(1)
        idx = torch.arange(h.shape[0], device=h.device)
        return logits, R[idx, k], t[idx, k]

    def heads(self, x: torch.Tensor):
        """(logits (B,C), rotations (B,C,3,3), translation codes (B,C,3)) for every class."""
        return self.decode_heads(self.encode(x))

    def forward(self, x: torch.Tensor):
        return self.decode(self.encode(x))


ROTATION_DIMS = {"6d": 6, "quat": 4}
ROTATION_INIT = {"6d": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0], "quat": [1.0, 0.0, 0.0, 0.0]}


class FCNSegmenter(nn.Module):
    """Small fully convolutional encoder-decoder (FCN with skips): (B,C,H,W) -> (B,out,H,W).
    ``context`` dilated residual blocks at the bottom widen its view (registry: fcn-context).

    Used for the segmentation task net T (out = classes, logits) and the privileged net P
    (out = 1, e.g. depth in metres). H, W divisible by 8."""

    def __init__(self, channels: int = 3, out: int = 3, width: int = 32, context: int = 0, **_):
        super().__init__()
        w, self.channels = width, channels
        # optional context: residual 3x3 convs dilated 2, 4, 8... at 1/8 resolution, so each
        # pixel sees most of the image (is this blob on the table or a gripper at its edge?)
        self.context = nn.ModuleList(
            nn.Sequential(nn.Conv2d(4 * w, 4 * w, 3, 1, 2 ** (k + 1), dilation=2 ** (k + 1), bias=False),
                          nn.BatchNorm2d(4 * w), nn.ReLU(inplace=True)) for k in range(context))

        def enc(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout),
                                 nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                 nn.BatchNorm2d(cout), nn.ReLU(inplace=True))
        self.e1, self.e2, self.e3 = enc(channels, w), enc(w, 2 * w), enc(2 * w, 4 * w)
        self.d3 = nn.Sequential(nn.Conv2d(4 * w, 2 * w, 3, 1, 1), nn.ReLU(inplace=True))
        self.d2 = nn.Sequential(nn.Conv2d(4 * w, w, 3, 1, 1), nn.ReLU(inplace=True))
        self.d1 = nn.Sequential(nn.Conv2d(2 * w, w, 3, 1, 1), nn.ReLU(inplace=True))
        self.head = nn.Conv2d(w, out, 1)

    def example_inputs(self, batch: int = 2, size: int = 64) -> tuple[torch.Tensor, ...]:
        return (torch.rand(batch, self.channels, size, size) * 2 - 1,)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B,C,H,W) -> (B, width, H/2, W/2): the last decoder map, what the 1x1 head reads
        (forward = decode(encode(x)); DANN's domain classifier reads it)."""
        e1 = self.e1(x)
        e2 = self.e2(e1)
        e3 = self.e3(e2)
        for block in self.context:
            e3 = e3 + block(e3)
        d2 = self.d3(e3)
        d1 = self.d2(torch.cat([_up(d2), e2], 1))
        return self.d1(torch.cat([_up(d1), e1], 1))

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """Logits (B,out,H,W) from features ``h`` = encode(x)."""
        return self.head(_up(h))

    def forward(self, x):
        return self.decode(self.encode(x))


def _up(t: torch.Tensor) -> torch.Tensor:
    return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)
