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
"""
from __future__ import annotations

import torch

DEPTH_UNIT_M = 0.1


def encode_translation(t_m: torch.Tensor, K: torch.Tensor, size: int) -> torch.Tensor:
    """(B,3) translation model -> camera (metres) and (B,3,3) crop K -> (B,3) (dx, dy, zeta)."""
    z = t_m[:, 2]
    u = K[:, 0, 0] * t_m[:, 0] / z + K[:, 0, 2]
    v = K[:, 1, 1] * t_m[:, 1] / z + K[:, 1, 2]
    c = (size - 1) / 2
    return torch.stack([(u - c) / size, (v - c) / size, z * size / K[:, 0, 0] / DEPTH_UNIT_M], 1)


def decode_translation(code: torch.Tensor, K: torch.Tensor, size: int) -> torch.Tensor:
    """Inverse of :func:`encode_translation`: (B,3) (dx, dy, zeta) and (B,3,3) K -> (B,3) metres."""
    z = code[:, 2] * DEPTH_UNIT_M * K[:, 0, 0] / size
    c = (size - 1) / 2
    u = code[:, 0] * size + c
    v = code[:, 1] * size + c
    return torch.stack([(u - K[:, 0, 2]) * z / K[:, 0, 0], (v - K[:, 1, 2]) * z / K[:, 1, 1], z], 1)
