"""Planar grasps in an image (the GG-CNN representation) and how they relate to 6-DoF grasps.

A planar grasp is a rectangle in the image: centre pixel (u, v); ``angle`` (rad) of the closing
axis in the image, measured from +u towards +v and wrapped to [-pi/2, pi/2) (a parallel-jaw
grasp is the same grasp turned by pi); ``width`` (px): the opening between the pads along that
axis; ``height`` (px): the finger pads' width across it. Pixel centres are integers (OpenCV).

Grasp maps (GG-CNN, Morrison et al. 2018): four (H, W) float32 images, ``quality`` in [0, 1],
``cos`` = cos 2 angle, ``sin`` = sin 2 angle (the doubled angle makes theta and theta + pi the
same), ``width`` in px. A grasp is painted on its centre region, the middle third of its
rectangle along the closing axis, where a net's peak should fall.

The 6-DoF gripper frame is that of :mod:`simdata.grasping.gripper` (+z approach, +x closing).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MAP_NAMES = ("quality", "cos", "sin", "width")


@dataclass
class PlanarGrasp:
    """A grasp rectangle in an image (pixels, radians); ``quality`` in [0, 1]."""

    u: float
    v: float
    angle: float
    width: float
    height: float
    quality: float = 1.0

    def corners(self) -> np.ndarray:
        """(4, 2) rectangle corners (u, v), in order around the rectangle."""
        return rectangle_corners(self.u, self.v, self.angle, self.width, self.height)


def wrap_angle(angle):
    """Angles (rad) of a two-fold symmetric grasp, wrapped to [-pi/2, pi/2)."""
    return (np.asarray(angle, float) + np.pi / 2) % np.pi - np.pi / 2


def angle_difference(a, b):
    """Smallest difference (rad, in [0, pi/2]) between grasp angles, pi-periodic."""
    return np.abs(wrap_angle(np.asarray(a, float) - np.asarray(b, float)))


def rectangle_corners(u, v, angle, length, height) -> np.ndarray:
    """(4, 2) corners of a ``length`` x ``height`` rectangle centred at (u, v), its length
    along ``angle``."""
    d = np.array([np.cos(angle), np.sin(angle)])
    n = np.array([-d[1], d[0]])
    c = np.array([u, v], float)
    a, b = d * length / 2, n * height / 2
    return np.stack([c + a + b, c - a + b, c - a - b, c + a - b])


def project_grasp(T_cam_grasp: np.ndarray, width_m: float, finger_width_m: float,
                  K: np.ndarray) -> PlanarGrasp | None:
    """The planar grasp a camera sees of a 6-DoF grasp ``T_cam_grasp`` (4x4, metres, camera
    frame: x right, y down, z forward) of opening ``width_m``; None if the centre is not in
    front of the camera. Width and height are measured at the centre's depth."""
    c = T_cam_grasp[:3, 3]
    if c[2] <= 1e-6:
        return None
    ends = np.stack([c + T_cam_grasp[:3, 0] * width_m / 2, c - T_cam_grasp[:3, 0] * width_m / 2])
    if (ends[:, 2] <= 1e-6).any():
        return None
    uv = (K[:2, :2] @ (ends[:, :2] / ends[:, 2:]).T).T + K[:2, 2]
    u, v = K[:2, :2] @ (c[:2] / c[2]) + K[:2, 2]
    du, dv = uv[0] - uv[1]
    return PlanarGrasp(float(u), float(v), float(wrap_angle(np.arctan2(dv, du))),
                       float(np.hypot(du, dv)), float(finger_width_m * K[0, 0] / c[2]))


def approach_angle(T_cam_grasp: np.ndarray) -> float:
    """Angle (rad) between a grasp's approach (+z of the gripper) and the camera's optical axis."""
    return float(np.arccos(np.clip(T_cam_grasp[2, 2], -1.0, 1.0)))


def axis_frame(angle: float) -> np.ndarray:
    """(3, 3) gripper axes (columns) in the camera frame of a planar grasp at image angle
    ``angle`` (rad) approaching along the optical axis: x the closing axis in the image plane,
    z = +optical axis, y = z x x."""
    x = np.array([np.cos(angle), np.sin(angle), 0.0])
    z = np.array([0.0, 0.0, 1.0])
    return np.stack([x, np.cross(z, x), z], 1)


def grasp_pose_in_camera(g: PlanarGrasp, z_m: float, K: np.ndarray) -> tuple[np.ndarray, float]:
    """The 6-DoF grasp of a planar one, approaching along the optical axis: (T_cam_grasp (4x4),
    opening in metres). The centre is the pixel's ray at depth ``z_m`` (metres along the
    optical axis); the closing axis is the image angle in the plane z = const (axis_frame)."""
    T = np.eye(4)
    T[:3, :3] = axis_frame(g.angle)
    T[:3, 3] = [(g.u - K[0, 2]) * z_m / K[0, 0], (g.v - K[1, 2]) * z_m / K[1, 1], z_m]
    return T, float(g.width * z_m / K[0, 0])


def centre_region(g: PlanarGrasp, fraction: float = 1 / 3) -> np.ndarray:
    """(4, 2) corners of the middle ``fraction`` of the rectangle along its closing axis."""
    return rectangle_corners(g.u, g.v, g.angle, max(g.width * fraction, 1.0), max(g.height, 1.0))


def paint_grasp_maps(grasps: list[PlanarGrasp], shape: tuple[int, int],
                     fraction: float = 1 / 3) -> np.ndarray:
    """(4, H, W) float32 grasp maps (quality, cos 2a, sin 2a, width px) with every grasp painted
    on its centre region; where regions overlap, the higher quality wins (ties: the later
    grasp). Pixels without a grasp are 0 in every map."""
    maps = np.zeros((4, *shape), np.float32)
    for g in sorted(grasps, key=lambda g: g.quality):  # stable: equal qualities keep their order
        mask = np.zeros(shape, np.uint8)
        pts = np.round(centre_region(g, fraction) * 16).astype(np.int32)  # 4 fractional bits
        cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8, shift=4)
        m = mask > 0
        maps[:, m] = np.array([g.quality, np.cos(2 * g.angle), np.sin(2 * g.angle), g.width],
                              np.float32)[:, None]
    return maps


def smooth_grasp_maps(maps: np.ndarray, quality_sigma: float = 2.0, angle_sigma: float = 2.0,
                      width_sigma: float = 1.0) -> np.ndarray:
    """(4, H, W) maps smoothed as GG-CNN post-processes a net's output before decoding: Gaussian
    filters (sigmas in px) on the quality (then clipped to [0, 1]), on cos and sin, and on the
    width (then clipped at 0). A painted region's peak is then at its middle."""
    q, c, s, w = (np.ascontiguousarray(m, np.float32) for m in maps)
    blur = lambda m, sig: cv2.GaussianBlur(m, (0, 0), sig, borderType=cv2.BORDER_REFLECT) if sig > 0 else m
    return np.stack([np.clip(blur(q, quality_sigma), 0, 1), blur(c, angle_sigma), blur(s, angle_sigma),
                     np.maximum(blur(w, width_sigma), 0)])


def decode_grasp_maps(quality: np.ndarray, cos2: np.ndarray, sin2: np.ndarray, width: np.ndarray,
                      n: int = 1, min_distance: int = 10, threshold: float = 0.1,
                      height: float | np.ndarray = 10.0, mask: np.ndarray | None = None
                      ) -> list[PlanarGrasp]:
    """Up to ``n`` grasps at the local maxima of ``quality`` (H, W), best first.

    Peaks are at least ``min_distance`` px apart (a pixel is a peak when it is the largest in
    its (2 min_distance + 1)^2 window) and above ``threshold``; ``mask`` (H, W) bool limits
    where peaks may be. The angle is half the angle of (cos, sin) at the peak, the width the
    width map's value there, ``height`` the pads' width in px (a number or an (H, W) map)."""
    q = np.asarray(quality, np.float32)
    if mask is not None:
        q = np.where(mask, q, -np.inf).astype(np.float32)
    k = 2 * int(min_distance) + 1
    peaks = (q == cv2.dilate(q, np.ones((k, k), np.uint8))) & (q > threshold)
    vs, us = np.nonzero(peaks)
    order = np.lexsort((us, vs, -q[vs, us]))  # best first; ties in raster order
    out = []
    for i in order[:n]:
        v, u = int(vs[i]), int(us[i])
        h = float(height[v, u]) if np.ndim(height) else float(height)
        out.append(PlanarGrasp(float(u), float(v), float(wrap_angle(0.5 * np.arctan2(sin2[v, u], cos2[v, u]))),
                               float(width[v, u]), h, float(q[v, u])))
    return out


def rectangle_iou(a: PlanarGrasp, b: PlanarGrasp) -> float:
    """Intersection over union of two grasp rectangles (their areas in px^2)."""
    ra = ((a.u, a.v), (max(a.width, 1e-3), max(a.height, 1e-3)), float(np.degrees(a.angle)))
    rb = ((b.u, b.v), (max(b.width, 1e-3), max(b.height, 1e-3)), float(np.degrees(b.angle)))
    kind, pts = cv2.rotatedRectangleIntersection(ra, rb)
    if kind == cv2.INTERSECT_NONE or pts is None:
        return 0.0
    inter = float(cv2.contourArea(cv2.convexHull(pts)))
    union = ra[1][0] * ra[1][1] + rb[1][0] * rb[1][1] - inter
    return inter / union if union > 0 else 0.0


def rectangle_match(pred: PlanarGrasp, truths: list[PlanarGrasp], min_iou: float = 0.25,
                    max_angle: float = np.radians(30)) -> bool:
    """The rectangle metric (Jiang et al. 2011; GG-CNN): ``pred`` is correct when some true
    grasp is within ``max_angle`` of its angle and overlaps it with IoU > ``min_iou``."""
    return any(angle_difference(pred.angle, t.angle) <= max_angle and rectangle_iou(pred, t) > min_iou
               for t in truths)
