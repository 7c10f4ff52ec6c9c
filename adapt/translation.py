"""The translation of an object from a crop: what the pose net regresses, and back.

A crop is a square cut around the object and resized to ``size`` pixels; its intrinsics K
(3,3, pixels, OpenCV convention) are those of the original camera scaled and shifted (see
simdata.crops.crop_intrinsics), so a ray through a crop pixel is the same ray as through the
original pixel. The net predicts, per crop,

    dx, dy = (u - c) / size, (v - c) / size        (u, v) = projection of t in the crop,
                                                   c = (size - 1) / 2 its centre pixel
    zeta   = t_z * size / fx / DEPTH_UNIT_M        scale-free depth (the crop's size in metres)

``zeta`` does not depend on how far the object is (a farther object gives a smaller box, so a
longer crop focal length): it is about 1.2x the object's extent in the image plane over
DEPTH_UNIT_M. With K, (dx, dy, zeta) gives t back in the camera frame of the original image.

Both functions take torch tensors (training, eval) or numpy arrays (adapt.runtime) and return
the same kind; this module does not import torch.
"""
from __future__ import annotations

import sys

import numpy as np

DEPTH_UNIT_M = 0.1


def _stack(columns: list, like):
    """Columns (B,) -> (B, len(columns)), a torch tensor if ``like`` is one, else numpy."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(like, torch.Tensor):
        return torch.stack(columns, 1)
    return np.stack(columns, 1)


def encode_translation(t_m, K, size: int):
    """(B,3) translation model -> camera (metres) and (B,3,3) crop K -> (B,3) (dx, dy, zeta)."""
    z = t_m[:, 2]
    u = K[:, 0, 0] * t_m[:, 0] / z + K[:, 0, 2]
    v = K[:, 1, 1] * t_m[:, 1] / z + K[:, 1, 2]
    c = (size - 1) / 2
    return _stack([(u - c) / size, (v - c) / size, z * size / K[:, 0, 0] / DEPTH_UNIT_M], t_m)


def decode_translation(code, K, size: int):
    """Inverse of :func:`encode_translation`: (B,3) (dx, dy, zeta) and (B,3,3) K -> (B,3) metres."""
    z = code[:, 2] * DEPTH_UNIT_M * K[:, 0, 0] / size
    c = (size - 1) / 2
    u = code[:, 0] * size + c
    v = code[:, 1] * size + c
    return _stack([(u - K[:, 0, 2]) * z / K[:, 0, 0], (v - K[:, 1, 2]) * z / K[:, 1, 1], z], code)
