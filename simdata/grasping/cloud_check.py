"""Where to put a grasp that approaches off the camera's optical axis, from the depth image
alone: the depth-image check of :mod:`simdata.grasping.depth_check` for any approach
direction, done on the image's point cloud.

Why: along the optical axis a palm 12 cm long meets a tall box beside a low object, and the
fingers find no room where objects are packed; tilted 15-30 degrees about the closing axis,
the same grasp clears the neighbour.

What is unseen is assumed solid: every pixel's reading stands for a column from its surface
point along the camera ray down to the table (``floor``: the table plane's depth per pixel),
the depth image's heightfield seen from the camera. A tilted finger cannot then pass under
what the camera sees, nor into the hidden flank of an object. In the gripper frame
(simdata.grasping.gripper: +z the approach, +x the closing axis) a finger sweeps the column
of its footprint (grown by ``clearance_m``) from far away down to its tip; the tip stops
``margin_m`` short of the nearest point of any column segment inside it, at most ``reach`` x
the pad length beyond the surface seen at the grasp pixel, and the palm, a pad length behind
the tips, stays ``margin_m`` short of all it covers: the rules of the image check, whose
figures (DepthCheckConfig) it shares.

Units: metres, camera frame (x right, y down, z forward); depth (H, W) metres, 0 = no reading.
"""
from __future__ import annotations

import numpy as np

from .depth_check import DepthCheckConfig, inpaint_holes, inside_image, openings, surface_depth
from .gripper import GripperConfig
from .planar import PlanarGrasp


def local_cloud(filled: np.ndarray, K: np.ndarray, u: float, v: float, radius_m: float, z_m: float,
                floor: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The heightfield columns of the pixels within ``radius_m`` (at depth ``z_m``) of pixel
    (u, v): (tops (N, 3), bottoms (N, 3)) metres, camera frame. A column runs along its pixel's
    ray from the reading (``filled``: depth with its holes inpainted) down to ``floor`` there
    (the table's depth, (H, W) metres, 0 or inf where unknown; None = the window's deepest
    reading); a reading at or below the floor is a column of no length."""
    h, w = filled.shape
    r = int(np.ceil(radius_m * K[0, 0] / max(z_m, 1e-3)))
    u0, u1 = max(int(round(u)) - r, 0), min(int(round(u)) + r + 1, w)
    v0, v1 = max(int(round(v)) - r, 0), min(int(round(v)) + r + 1, h)
    vs, us = np.mgrid[v0:v1, u0:u1]
    z = filled[v0:v1, u0:u1]
    ok = z > 0
    us, vs, z = us[ok].astype(float), vs[ok].astype(float), z[ok].astype(float)
    if floor is None:
        bottom = np.full_like(z, z.max() if z.size else 0.0)
    else:
        bottom = floor[v0:v1, u0:u1][ok].astype(float)
        bottom = np.where(np.isfinite(bottom) & (bottom > 0), bottom, z.max() if z.size else 0.0)
    bottom = np.maximum(bottom, z)
    rays = np.stack([(us - K[0, 2]) / K[0, 0], (vs - K[1, 2]) / K[1, 1], np.ones_like(us)], 1)
    return rays * z[:, None], rays * bottom[:, None]


def nearest_in_column(q0: np.ndarray, q1: np.ndarray, x: tuple[float, float],
                      y: tuple[float, float]) -> float:
    """The least z of the segments q0 -> q1 ((N, 3), a frame whose z is the column's axis)
    within the column x0 <= x <= x1, y0 <= y <= y1 (any z); inf when none enters it.
    Each segment is clipped to the column (Liang-Barsky); z being linear along it, its least
    z inside is at one end of the clipped part."""
    d = q1 - q0
    lo = np.zeros(len(q0))
    hi = np.ones(len(q0))
    for k, (a, b) in enumerate((x, y)):
        p, dk = q0[:, k], d[:, k]
        flat = np.abs(dk) < 1e-12
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (a - p) / dk, (b - p) / dk
        lo = np.where(flat, np.where((p >= a) & (p <= b), lo, 2.0), np.maximum(lo, np.minimum(t1, t2)))
        hi = np.where(flat, hi, np.minimum(hi, np.maximum(t1, t2)))
    inside = lo <= hi
    if not inside.any():
        return float("inf")
    z0, dz = q0[inside, 2], d[inside, 2]
    return float(np.minimum(z0 + lo[inside] * dz, z0 + hi[inside] * dz).min())


def tip_limit(tops: np.ndarray, bottoms: np.ndarray, s: np.ndarray, R: np.ndarray,
              gripper: GripperConfig, cfg: DepthCheckConfig, opening_m: float) -> float:
    """How far (m, along the approach R[:, 2]) beyond the surface point ``s`` (3,) the
    fingertips may go, the fingers opened ``opening_m`` apart and the gripper turned to R
    (3x3, columns: its axes in the camera frame): ``reach`` x the pad length, less where a
    finger's column or the palm's meets a column of the cloud (:func:`local_cloud`)."""
    q0, q1 = (tops - s) @ R, (bottoms - s) @ R
    c, t = cfg.clearance_m, gripper.finger_thickness
    y = (-gripper.finger_width / 2 - c, gripper.finger_width / 2 + c)
    limit = cfg.reach * gripper.finger_length
    for x in ((opening_m / 2 - c, opening_m / 2 + t + c), (-opening_m / 2 - t - c, -opening_m / 2 + c)):
        limit = min(limit, nearest_in_column(q0, q1, x, y) - cfg.margin_m)
    px, py = gripper.palm_size[0] / 2, gripper.palm_size[1] / 2
    palm = nearest_in_column(q0, q1, (-px, px), (-py, py))
    return min(limit, palm + gripper.finger_length - cfg.margin_m)


def tilted(R: np.ndarray, about: str, deg: float) -> np.ndarray:
    """R (e.g. simdata.grasping.planar.axis_frame) turned by ``deg`` degrees about its own x
    (the closing axis: the approach leans across the fingers) or y (the approach leans along
    the closing axis)."""
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    turn = np.array([[1, 0, 0], [0, c, -s], [0, s, c]]) if about == "x" else \
        np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return R @ turn


def plan_grasp_pose(depth: np.ndarray, g: PlanarGrasp, K: np.ndarray, gripper: GripperConfig,
                    frames: list[np.ndarray], cfg: DepthCheckConfig | None = None,
                    filled: np.ndarray | None = None,
                    floor: np.ndarray | None = None) -> tuple[np.ndarray, float] | None:
    """(T_cam_grasp (4x4, metres), opening (m)) of planar grasp ``g`` approached in the first of
    ``frames`` (gripper axes (3, 3) in the camera frame, e.g. :func:`tilted` of
    simdata.grasping.planar.axis_frame) whose fingers get ``min_descent_m`` beyond the surface seen at (g.u,
    g.v) and whose fingers the image sees (:func:`fingers_in_view`); of
    :func:`openings` the one that lets them deepest, the widest among equals. None when no
    frame is executable. The grasp centre is a pad's half length behind the tips, on
    the line from the surface point along the approach. ``filled``: ``depth`` with its holes
    inpainted (simdata.grasping.depth_check.inpaint_holes); ``floor``: the table's depth per
    pixel (see :func:`local_cloud`)."""
    cfg = cfg or DepthCheckConfig()
    z = surface_depth(depth, g.u, g.v)
    if z is None:
        return None
    filled = inpaint_holes(depth) if filled is None else filled
    s = np.array([(g.u - K[0, 2]) * z / K[0, 0], (g.v - K[1, 2]) * z / K[1, 1], z])
    radius = float(np.hypot(*gripper.palm_size[:2]) / 2 + gripper.finger_length + 0.02)
    tops, bottoms = local_cloud(filled, K, g.u, g.v, radius, z, floor)
    widths = openings(g.width * z / K[0, 0], gripper, cfg)
    deepest = cfg.reach * gripper.finger_length
    for R in frames:
        best = None
        for opening in widths:  # widest first
            tip = tip_limit(tops, bottoms, s, R, gripper, cfg, opening)
            if tip >= cfg.min_descent_m and (best is None or tip > best[0] + 1e-6):
                best = (tip, opening)
                if tip >= deepest - 1e-6:
                    break
        if best is not None:
            T = np.eye(4)
            T[:3, :3] = R
            T[:3, 3] = s + (best[0] - gripper.finger_length / 2) * R[:, 2]
            if fingers_in_view(T, best[1], K, gripper, depth.shape):
                return T, best[1]
    return None


def fingers_in_view(T_cam_grasp: np.ndarray, opening_m: float, K: np.ndarray, gripper: GripperConfig,
                    shape: tuple[int, int]) -> bool:
    """Whether both fingers, the gripper at ``T_cam_grasp`` opened ``opening_m``, are seen
    inside an image of ``shape`` (the corners of their boxes; what the camera does not see may
    be in the way), as simdata.grasping.depth_check.fingers_in_view asks of upright grasps."""
    L, y = gripper.finger_length / 2, gripper.finger_width / 2
    xs = (opening_m / 2, opening_m / 2 + gripper.finger_thickness)
    corners = np.array([[sx * x, sy * y, sz * L] for sx in (-1, 1) for x in xs for sy in (-1, 1)
                        for sz in (-1, 1)])
    p = corners @ T_cam_grasp[:3, :3].T + T_cam_grasp[:3, 3]
    if (p[:, 2] <= 1e-6).any():
        return False
    return inside_image(p[:, :2] / p[:, 2:] * np.diag(K)[:2] + K[:2, 2], shape)
