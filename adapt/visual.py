"""Tensors -> colour images in [-1,1] for sample grids (labels and depth)."""
from __future__ import annotations

import numpy as np
import torch

from simdata.preview import PALETTE, colorize_depth as _colorize_depth_np


def colorize_labels(labels: torch.Tensor) -> torch.Tensor:
    """(B,H,W) int labels -> (B,3,H,W) in [-1,1]; 0 black, 255 (ignore) white."""
    palette = np.concatenate([[[0, 0, 0]], np.tile(PALETTE, (20, 1))])[:255].astype(np.float32)
    lab = labels.detach().cpu().numpy()
    rgb = np.where((lab == 255)[..., None], 255.0, palette[np.clip(lab, 0, 254)])
    return torch.from_numpy(rgb / 127.5 - 1).permute(0, 3, 1, 2).float()


def colorize_depth(depth: torch.Tensor) -> torch.Tensor:
    """(B,1,H,W) depth -> (B,3,H,W) turbo colours in [-1,1]."""
    imgs = [_colorize_depth_np(np.clip(d[0].detach().cpu().numpy(), 1e-6, None)) for d in depth]
    return torch.from_numpy(np.stack(imgs).astype(np.float32) / 127.5 - 1).permute(0, 3, 1, 2)
