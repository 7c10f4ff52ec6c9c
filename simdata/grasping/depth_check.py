"""Where to put a planar grasp in depth, from the depth image alone: the depth-image collision
check a robot runs before it moves (Dex-Net's, for a parallel-jaw gripper approaching along the
camera's optical axis).

Depth images are (H, W) float arrays in metres along the optical axis, 0 = no reading. The
fingers descend below the surface seen at the grasp centre by at most ``reach`` x the pad
length and stop ``margin_m`` short of whatever the depth image shows under the open fingers
(their footprints grown by ``clearance_m``: table and neighbours alike); the palm, a pad length
above the fingertips, must stay above all it covers. A grasp whose fingers cannot get
``min_descent_m`` below the surface is not executable. Labels (simdata.grasping.labels) paint
only grasps this check accepts from the view, and a net's grasps are executed through it, so
what is learnt is what can be done.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .gripper import GripperConfig
from .planar import PlanarGrasp, rectangle_corners


@dataclass
class DepthCheckConfig:
    """Margins of the depth-image check (metres; ``reach`` a fraction of the pad length)."""

    margin_m: float = 0.005       # fingertips and palm stop this far from what they would touch
    reach: float = 0.8            # fingertips go at most this x the pad length below the surface
    min_descent_m: float = 0.01   # ... and at least this far, or the grasp is not executable
    clearance_m: float = 0.002    # the fingers' footprints are grown by this on every side


def inpaint_holes(depth: np.ndarray) -> np.ndarray:
    """(H, W) metres with 0 = no reading -> the holes filled from their borders (OpenCV's
    Navier-Stokes inpainting, radius 3 px), as Dex-Net processes depth frames."""
    holes = depth <= 0
    if not holes.any() or holes.all():
        return depth
    return cv2.inpaint(depth.astype(np.float32), holes.astype(np.uint8), 3, cv2.INPAINT_NS)


def surface_depth(depth: np.ndarray, u: float, v: float, r: int = 2) -> float | None:
    """Median of the valid readings in a (2r+1)^2 window at (u, v), metres; None if none."""
    ui, vi = int(round(u)), int(round(v))
    win = depth[max(vi - r, 0):vi + r + 1, max(ui - r, 0):ui + r + 1]
    win = win[win > 0]
    return float(np.median(win)) if win.size else None


def _fill(mask: np.ndarray, corners: np.ndarray) -> None:
    cv2.fillPoly(mask, [np.round(corners * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)


def finger_footprints(g: PlanarGrasp, z_m: float, K: np.ndarray, gripper: GripperConfig,
                      shape: tuple[int, int], clearance_m: float = 0.0) -> np.ndarray:
    """(H, W) bool: the pixels the two fully open fingers cover, grown by ``clearance_m`` on
    every side, seen along the optical axis at depth ``z_m``, for a grasp at pixel (g.u, g.v)
    closing along g.angle."""
    f = K[0, 0] / z_m
    mask = np.zeros(shape, np.uint8)
    d = np.array([np.cos(g.angle), np.sin(g.angle)])
    off = (gripper.max_opening + gripper.finger_thickness) / 2 * f
    for sign in (1, -1):
        c = np.array([g.u, g.v]) + sign * off * d
        _fill(mask, rectangle_corners(c[0], c[1], g.angle,
                                      max((gripper.finger_thickness + 2 * clearance_m) * f, 1.0),
                                      max((gripper.finger_width + 2 * clearance_m) * f, 1.0)))
    return mask > 0


def palm_footprint(g: PlanarGrasp, z_m: float, K: np.ndarray, gripper: GripperConfig,
                   shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the pixels the palm covers, seen along the optical axis at depth ``z_m``."""
    f = K[0, 0] / z_m
    mask = np.zeros(shape, np.uint8)
    _fill(mask, rectangle_corners(g.u, g.v, g.angle, gripper.palm_size[0] * f, gripper.palm_size[1] * f))
    return mask > 0


def grasp_centre_depth(depth: np.ndarray, g: PlanarGrasp, K: np.ndarray, gripper: GripperConfig,
                       cfg: DepthCheckConfig | None = None, filled: np.ndarray | None = None,
                       table_z: float | None = None) -> float | None:
    """Depth (m, along the optical axis) of the grasp centre for planar grasp ``g`` approaching
    along the optical axis (see the module docstring), or None when it is not executable
    (no reading at its centre, or the fingers cannot descend ``min_descent_m``).

    ``depth``: the sensor's depth; ``filled``: the same with its holes inpainted
    (:func:`inpaint_holes`; computed when None), checked under the fingers and the palm, since
    sensors leave holes at the very edges fingers pass; ``table_z``: the table's depth at the
    grasp pixel, the limit where the footprints hold no reading at all (None = unknown)."""
    cfg = cfg or DepthCheckConfig()
    z = surface_depth(depth, g.u, g.v)
    if z is None:
        return None
    check = inpaint_holes(depth) if filled is None else filled
    tip = z + cfg.reach * gripper.finger_length
    limits = []
    cover = (finger_footprints(g, z, K, gripper, depth.shape, cfg.clearance_m)
             | finger_footprints(g, tip, K, gripper, depth.shape, cfg.clearance_m))
    seen = check[cover & (check > 0)]
    if seen.size:
        limits.append(float(seen.min()) - cfg.margin_m)
    elif table_z is not None:
        limits.append(table_z - cfg.margin_m)
    under = check[palm_footprint(g, z, K, gripper, depth.shape) & (check > 0)]
    if under.size:  # the palm's face is a pad length above the fingertips
        limits.append(float(under.min()) + gripper.finger_length - cfg.margin_m)
    if limits:
        if min(limits) < z + cfg.min_descent_m:
            return None
        tip = min(tip, min(limits))
    return tip - gripper.finger_length / 2
