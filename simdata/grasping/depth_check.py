"""Where to put a planar grasp in depth, from the depth image alone: the depth-image collision
check a robot runs before it moves (Dex-Net's, for a parallel-jaw gripper approaching along the
camera's optical axis).

The fingers go as deep as the depth image allows, and open as wide as fits at that depth
(:func:`openings`): fully open when the depth image shows room, else narrower, down to the
grasp's width plus ``open_margin_m`` on each side, as a robot does in clutter, where a fully
open hand does not fit between neighbours that a grasp across a 4 cm object never touches. A
narrower opening that lets the fingers deeper wins over a wider, shallower one: pads that hold
more of the object slip less. Trials (labels) choose the same way from the scene's geometry
(simdata.grasping.execute.try_grasp: the deepest free pose, the widest opening there).

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
    open_margin_m: float = 0.01   # the fingers open at least the grasp's width plus this a side
    open_steps: int = 3           # openings tried, fully open first (see openings)


def openings(width_m: float, gripper: GripperConfig, cfg: DepthCheckConfig | None = None) -> list[float]:
    """How wide (m) the fingers may open before closing on a grasp of contact width
    ``width_m``, widest first: ``open_steps`` openings evenly from fully open down to the
    width plus ``open_margin_m`` on each side (one, fully open, when that is no narrower)."""
    cfg = cfg or DepthCheckConfig()
    narrow = min(gripper.max_opening, max(width_m, 0.0) + 2 * cfg.open_margin_m)
    if narrow >= gripper.max_opening - 1e-6 or cfg.open_steps < 2:
        return [float(gripper.max_opening)]
    return [float(v) for v in np.linspace(gripper.max_opening, narrow, cfg.open_steps)]


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


def finger_rectangles(g: PlanarGrasp, z_m: float, K: np.ndarray, gripper: GripperConfig,
                      clearance_m: float = 0.0, opening_m: float | None = None,
                      min_px: float = 0.0) -> list[np.ndarray]:
    """(4, 2) pixel corners of each finger opened ``opening_m`` apart (None = fully open),
    grown by ``clearance_m`` on every side, seen along the optical axis at depth ``z_m``, for a
    grasp at pixel (g.u, g.v) closing along g.angle; sides at least ``min_px``."""
    f = K[0, 0] / z_m
    d = np.array([np.cos(g.angle), np.sin(g.angle)])
    opening = gripper.max_opening if opening_m is None else opening_m
    off = (opening + gripper.finger_thickness) / 2 * f
    out = []
    for sign in (1, -1):
        c = np.array([g.u, g.v]) + sign * off * d
        out.append(rectangle_corners(c[0], c[1], g.angle,
                                     max((gripper.finger_thickness + 2 * clearance_m) * f, min_px),
                                     max((gripper.finger_width + 2 * clearance_m) * f, min_px)))
    return out


def inside_image(uv: np.ndarray, shape: tuple[int, int]) -> bool:
    """Whether all pixel points ``uv`` (N, 2) lie inside an image of ``shape`` (H, W)."""
    return bool((uv >= 0).all() and (uv[:, 0] <= shape[1] - 1).all() and (uv[:, 1] <= shape[0] - 1).all())


def finger_footprints(g: PlanarGrasp, z_m: float, K: np.ndarray, gripper: GripperConfig,
                      shape: tuple[int, int], clearance_m: float = 0.0,
                      opening_m: float | None = None) -> np.ndarray:
    """(H, W) bool: the pixels the two fingers opened ``opening_m`` apart (None = fully open)
    cover, grown by ``clearance_m`` on every side, seen along the optical axis at depth
    ``z_m``, for a grasp at pixel (g.u, g.v) closing along g.angle."""
    mask = np.zeros(shape, np.uint8)
    for corners in finger_rectangles(g, z_m, K, gripper, clearance_m, opening_m, min_px=1.0):
        _fill(mask, corners)
    return mask > 0


def palm_footprint(g: PlanarGrasp, z_m: float, K: np.ndarray, gripper: GripperConfig,
                   shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the pixels the palm covers, seen along the optical axis at depth ``z_m``."""
    f = K[0, 0] / z_m
    mask = np.zeros(shape, np.uint8)
    _fill(mask, rectangle_corners(g.u, g.v, g.angle, gripper.palm_size[0] * f, gripper.palm_size[1] * f))
    return mask > 0


def fingers_in_view(g: PlanarGrasp, z_m: float, K: np.ndarray, gripper: GripperConfig,
                    shape: tuple[int, int], opening_m: float | None = None) -> bool:
    """Whether the footprints of both fingers, opened ``opening_m`` apart (None = fully open),
    at depth ``z_m`` lie inside an image of ``shape``."""
    return inside_image(np.concatenate(finger_rectangles(g, z_m, K, gripper, opening_m=opening_m)), shape)


def plan_grasp_depth(depth: np.ndarray, g: PlanarGrasp, K: np.ndarray, gripper: GripperConfig,
                     cfg: DepthCheckConfig | None = None, filled: np.ndarray | None = None,
                     table_z: float | None = None) -> tuple[float, float] | None:
    """(centre depth (m), opening (m)) of planar grasp ``g``: of :func:`openings` (of its width,
    g.width px at the surface depth) the one whose :func:`grasp_centre_depth` is deepest, the
    widest among equals; None when no opening is executable."""
    cfg = cfg or DepthCheckConfig()
    z = surface_depth(depth, g.u, g.v)
    if z is None:
        return None
    filled = inpaint_holes(depth) if filled is None else filled
    deepest = centre_of_tip(deepest_tip(z, gripper, cfg), gripper)  # nothing in the way
    best = None
    for opening in openings(g.width * z / K[0, 0], gripper, cfg):  # widest first
        centre = grasp_centre_depth(depth, g, K, gripper, cfg, filled, table_z, opening)
        if centre is not None and (best is None or centre > best[0] + 1e-6):
            best = (centre, opening)
            if centre >= deepest - 1e-6:  # no narrower opening goes deeper
                break
    return best


def deepest_tip(z: float, gripper: GripperConfig, cfg: DepthCheckConfig) -> float:
    """Depth (m) the fingertips reach below a surface at depth ``z`` when nothing is in the way:
    ``reach`` x the pad length."""
    return z + cfg.reach * gripper.finger_length


def centre_of_tip(tip: float, gripper: GripperConfig) -> float:
    """The grasp centre's depth (m) with the fingertips at ``tip``: the pads' middle."""
    return tip - gripper.finger_length / 2


def grasp_centre_depth(depth: np.ndarray, g: PlanarGrasp, K: np.ndarray, gripper: GripperConfig,
                       cfg: DepthCheckConfig | None = None, filled: np.ndarray | None = None,
                       table_z: float | None = None, opening_m: float | None = None) -> float | None:
    """Depth (m, along the optical axis) of the grasp centre for planar grasp ``g`` approaching
    along the optical axis (see the module docstring), or None when it is not executable
    (no reading at its centre, the fingers cannot descend ``min_descent_m``, or a finger's
    footprint leaves the image: what the camera does not see may be in the way), the fingers
    opened ``opening_m`` apart (None = fully open; :func:`plan_grasp_depth` picks one).

    ``depth``: the sensor's depth; ``filled``: the same with its holes inpainted
    (:func:`inpaint_holes`; computed when None), checked under the fingers and the palm, since
    sensors leave holes at the very edges fingers pass; ``table_z``: the table's depth at the
    grasp pixel, the limit where the footprints hold no reading at all (None = unknown)."""
    cfg = cfg or DepthCheckConfig()
    z = surface_depth(depth, g.u, g.v)
    if z is None or not fingers_in_view(g, z, K, gripper, depth.shape, opening_m):
        return None
    check = inpaint_holes(depth) if filled is None else filled
    tip = deepest_tip(z, gripper, cfg)
    limits = []
    cover = (finger_footprints(g, z, K, gripper, depth.shape, cfg.clearance_m, opening_m)
             | finger_footprints(g, tip, K, gripper, depth.shape, cfg.clearance_m, opening_m))
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
    return centre_of_tip(tip, gripper)
