"""VGG19 features for perceptual losses, with real loading of the standard ImageNet weights.

The layer layout matches torchvision's ``vgg19().features`` so its state dict
(``vgg19-dcbb9e9d.pth``) loads as it is. Offline runs must say which weights they use:
``load_vgg19`` never falls back silently.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from simdata.errors import SimdataError

log = logging.getLogger(__name__)

VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
VGG19_FILE = "vgg19-dcbb9e9d.pth"
_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512]
# indices (in torchvision's features) of the ReLU after conv1_2, conv2_2, conv3_2, conv4_2, conv5_2
PERCEPTUAL_LAYERS = {"conv1_2": 3, "conv2_2": 8, "conv3_2": 13, "conv4_2": 22, "conv5_2": 31}
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class VGG19Features(nn.Module):
    """Frozen VGG19 up to relu5_2. Input (B,3,H,W) in [-1,1]; output the list of the
    PERCEPTUAL_LAYERS activations (ImageNet normalisation is applied inside)."""

    def __init__(self):
        super().__init__()
        layers, c = [], 3
        for v in _CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=False)]
                c = v
        self.features = nn.Sequential(*layers)  # indices as torchvision's, up to relu5_2 (31)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()
        self.weights_source = "uninitialised"

    def train(self, mode: bool = True):
        return super().train(False)  # always frozen, always eval

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = ((x[:, :3] + 1) / 2 - self.mean) / self.std
        out, wanted = [], set(PERCEPTUAL_LAYERS.values())
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in wanted:
                out.append(h)
        return out


def hub_weights_path() -> Path:
    """Where torch.hub keeps downloaded weights (respects $TORCH_HOME)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE


def load_vgg19(weights: str = "auto") -> VGG19Features:
    """VGG19 features with ImageNet weights from ``weights``: a file path, ``auto`` (the torch
    hub cache), or ``random`` (seeded random init: a deliberate, logged choice, weaker).

    Raises SimdataError when no weights are found: never a silent fallback."""
    net = VGG19Features()
    if weights == "random":
        g = torch.Generator().manual_seed(0)
        for m in net.features:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, generator=g)
                nn.init.zeros_(m.bias)
        net.weights_source = "random (no ImageNet weights: perceptual loss uses random features)"
        log.warning("VGG19: RANDOM features for the perceptual loss (--vgg-weights random); "
                    "results will be weaker than with ImageNet weights")
        return net
    path = hub_weights_path() if weights == "auto" else Path(weights)
    if not path.is_file():
        raise SimdataError(
            f"VGG19 ImageNet weights not found at {path}; pass --vgg-weights PATH to "
            f"{VGG19_FILE}, fetch them with `adapt download-vgg` (online), or choose "
            f"--vgg-weights random to train with random features (recorded in the config)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise SimdataError(f"cannot read VGG19 weights {path} ({e}); download them again") from None
    feats = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    own = net.features.state_dict()
    missing = [k for k in own if k not in feats]
    if missing:
        raise SimdataError(f"{path} is not a torchvision VGG19 state dict (missing {missing[:3]})")
    net.features.load_state_dict({k: feats[k] for k in own})
    net.weights_source = str(path)
    log.info("VGG19: ImageNet weights from %s", path)
    return net


def download_vgg19() -> Path:
    """Fetch the ImageNet VGG19 weights into the torch hub cache (needs a network)."""
    try:
        torch.hub.load_state_dict_from_url(VGG19_URL, progress=True, check_hash=True)
    except Exception as e:
        raise SimdataError(f"cannot download {VGG19_URL} ({e}); copy {VGG19_FILE} to "
                           f"{hub_weights_path().parent} by hand") from None
    return hub_weights_path()
