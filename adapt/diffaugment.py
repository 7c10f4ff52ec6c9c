"""Differentiable augmentation of a discriminator's inputs (DiffAugment, Zhao et al., NeurIPS
2020): the same kind of random transform is applied to the real images and to the generator's
before the discriminator sees either, in D's update and in G's. With a few target images D
otherwise learns them by heart within a few thousand steps and its verdict stops teaching G
anything (SPIGAN adapted to the 5 or 10 real frames of ../shared/real stopped early on D's win
by step 2000-2150, README).

Pure functions of (B,C,H,W) tensors in the nets' input range [-1, 1]; each draws its parameters
per sample from torch's default generator (the trainer seeds it at every step, so a run and
its resume draw the same). Gradients flow through every transform to the images.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from simdata.errors import SimdataError

# The transforms and, for each, whether it needs colour channels.
POLICIES = {"translation": False, "cutout": False, "color": True}


def parse_policy(text: str, channels: int) -> tuple[str, ...]:
    """"translation,cutout" -> ("translation", "cutout"); "" or "none" -> (). ``channels``: how
    many channels D sees; colour jitter is refused on depth or height alone, where brightness
    would be a height offset."""
    names = tuple(n.strip() for n in text.split(",") if n.strip() and n.strip() != "none")
    for name in names:
        if name not in POLICIES:
            raise SimdataError(f"--d-augment {text!r}: {name!r} is not one of "
                               f"{', '.join(POLICIES)} (comma-separated, or none)")
        if POLICIES[name] and channels != 3:
            raise SimdataError(f"--d-augment {name} jitters colour, and D sees {channels} "
                               f"channel(s) of depth or height here: use translation,cutout")
    return names


def translate(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by a whole number of pixels, up to ``ratio`` of its side in each
    direction, filling with 0 (mid-range: a mid grey, the table's height, the median depth)."""
    b, c, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (b, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (b, 1, 1), device=x.device)
    # the source pixel of every output pixel, in the image padded by one pixel of zeros
    rows = (torch.arange(h, device=x.device).view(1, h, 1) + dy + 1).clamp(0, h + 1)
    cols = (torch.arange(w, device=x.device).view(1, 1, w) + dx + 1).clamp(0, w + 1)
    index = (rows * (w + 2) + cols).view(b, 1, h * w).expand(b, c, h * w)
    return F.pad(x, (1, 1, 1, 1)).flatten(2).gather(2, index).view(b, c, h, w)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Set a box of about ``ratio`` of each side (2 * (round(ratio * side) // 2) + 1 pixels),
    centred on any pixel of each image (so it may run off the edge), to 0."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h, (b, 1, 1), device=x.device)
    cx = torch.randint(0, w, (b, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = ((rows - cy).abs() <= ch // 2) & ((cols - cx).abs() <= cw // 2)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def color(x: torch.Tensor) -> torch.Tensor:
    """Brightness (+-0.5 of the [0, 1] range), saturation (x0-2) and contrast (x0.5-1.5) jitter
    of (B,3,H,W) colour in [-1, 1], each drawn per image."""
    b = x.shape[0]
    # +-0.5 in [0, 1] is +-1 in [-1, 1]
    x = x + (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5) * 2
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


_TRANSFORMS = {"color": color, "translation": translate, "cutout": cutout}


def diff_augment(x: torch.Tensor, policy: tuple[str, ...]) -> torch.Tensor:
    """``x`` (B,C,H,W) through each transform of ``policy`` in the paper's order (colour,
    translation, cutout); () returns ``x`` itself."""
    for name in ("color", "translation", "cutout"):
        if name in policy:
            x = _TRANSFORMS[name](x)
    return x


class DiffAugment:
    """A method's ``--d-augment``: called on what a discriminator is about to see, (B,C,H,W) ->
    the same through the policy's transforms (itself when the policy is empty). ``channels``:
    what the discriminator sees (colour jitter is refused on fewer than 3)."""

    def __init__(self, text: str, channels: int):
        self.policy = parse_policy(text, channels)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.policy)
