"""From a grasp net's maps to grasps a robot can execute, in numpy and OpenCV only: GG-CNN's
smoothing of the maps, their peaks, the depth-image check and the gripper pose in the camera
frame. Shared by ``adapt eval`` / ``adapt predict`` (adapt.grasping, torch) and the runtime
(adapt.runtime), so both turn the same maps into the same grasps.

Units: pixels for planar grasps (simdata.grasping.planar), metres for depth and 6-DoF poses.
A grasp net outputs (B, 4, H, W): quality, cos 2a, sin 2a, width / WIDTH_SCALE_PX (px), the
maps of `simdata grasps` at the net's input resolution.
"""
from __future__ import annotations

import cv2
import numpy as np

from simdata.grasping.cloud_check import plan_grasp_pose, tilted
from simdata.grasping.depth_check import DepthCheckConfig, plan_grasp_depth
from simdata.grasping.gripper import GripperConfig
from simdata.grasping.planar import (PlanarGrasp, axis_frame, decode_grasp_maps, grasp_pose_in_camera,
                                     smooth_grasp_maps)

from .inputs import plane_inverse_depth

WIDTH_SCALE_PX = 100.0  # the width map enters the loss as px / 100 (widths are some 10-60 px)
QUALITY_SIGMA, ANGLE_SIGMA, WIDTH_SIGMA = 2.0, 2.0, 1.0  # GG-CNN's smoothing of the maps, px
# The net's best grasps (peaks of its smoothed quality map above MIN_QUALITY), tried in order
# until the depth image says the fingers fit. A robot that must pick looks down the whole list
# before it gives up, and the depth check, not a quality floor, refuses what cannot be done:
# with the 20 best of quality above 0.05 the benchmark's seed-0 net found no plan in 33 of its
# 200 test views (7 of them with a labelled grasp) and made 74.5 %; with these, 21 (2) and 76.5 %
# (a net of the recipe before: 70.5 -> 75.0 %).
TOP_K = 100
MIN_QUALITY = 0.0


def gripper_config(fields: dict | None) -> GripperConfig:
    """A GripperConfig from its JSON fields (None = the default gripper)."""
    if not fields:
        return GripperConfig()
    return GripperConfig(**{**fields, "palm_size": tuple(fields.get("palm_size", GripperConfig().palm_size))})


def smooth_maps(maps: np.ndarray) -> np.ndarray:
    """(4,H,W) raw net maps -> smoothed maps (simdata.grasping.planar.smooth_grasp_maps, GG-CNN's
    sigmas), width back in px."""
    out = smooth_grasp_maps(maps, QUALITY_SIGMA, ANGLE_SIGMA, WIDTH_SIGMA)
    out[3] *= WIDTH_SCALE_PX
    return out


def maps_at_image_size(raw: np.ndarray, height: int, nw: int, hw: tuple[int, int]) -> np.ndarray:
    """(4,H',W') raw net output for adapt.inputs.image_input's x -> smoothed maps (4,H,W) of the
    original image (width in the image's px): cut to the image, smoothed, resized (bilinear)."""
    maps = smooth_maps(np.asarray(raw[:, :height, :nw], np.float32))
    maps = np.stack([cv2.resize(m, (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR) for m in maps])
    maps[3] *= hw[0] / height
    return maps


def best_grasps(maps: np.ndarray, depth: np.ndarray, K: np.ndarray, gripper: GripperConfig,
                n: int = 1, min_distance: int | None = None,
                min_quality: float = MIN_QUALITY) -> list[PlanarGrasp]:
    """Up to ``n`` grasps from smoothed maps (4,H,W) where the sensor has depth, away from the
    image border (by the peaks' minimum distance), of quality above ``min_quality``, best
    first; each rectangle's height is the finger pads' width at its depth."""
    valid = depth > 0
    md = min_distance if min_distance is not None else max(4, depth.shape[0] // 24)
    valid[:md], valid[-md:], valid[:, :md], valid[:, -md:] = False, False, False, False  # half-seen
    fallback = np.median(depth[valid]) if valid.any() else 1.0
    pad_px = gripper.finger_width * K[0, 0] / np.where(valid, depth, fallback)
    return decode_grasp_maps(*maps, n=n, min_distance=md, threshold=min_quality, height=pad_px, mask=valid)


# -- from a planar grasp to a gripper pose ---------------------------------------------------------
def plane_depth(plane, u, v, width: int):
    """Depth (m) of the table plane ``plane`` (coefficients (3,), adapt.inputs.fit_plane_inverse_depth
    of an image ``width`` px wide) at pixels (u, v) (numbers or arrays); inf beyond its horizon."""
    inv = np.asarray(plane_inverse_depth(np.asarray(plane, float), u, v, width), float)
    return np.where(inv > 0, 1.0 / np.maximum(inv, 1e-9), np.inf)


def table_depth(plane, u: float, v: float, width: int) -> float | None:
    """:func:`plane_depth` at one pixel; None without a plane or beyond its horizon."""
    if plane is None:
        return None
    z = float(plane_depth(plane, u, v, width))
    return z if np.isfinite(z) else None


def readings_along(g: PlanarGrasp, depth: np.ndarray, direction, t: np.ndarray):
    """(us, vs, d): the pixels (int arrays) ``t`` px (array) from the centre of ``g`` along
    ``direction`` (unit (du, dv) in the image), rounded, and the depth there (m; 0 outside
    the image)."""
    h, w = depth.shape
    us = np.round(g.u + t * direction[0]).astype(int)
    vs = np.round(g.v + t * direction[1]).astype(int)
    inside = (us >= 0) & (us < w) & (vs >= 0) & (vs < h)
    d = np.zeros(len(t))
    d[inside] = depth[vs[inside], us[inside]]
    return us, vs, d


def object_run(g: PlanarGrasp, depth: np.ndarray, K: np.ndarray, plane, direction,
               reach_m: float, min_height_m: float = 0.01) -> tuple[float, float] | None:
    """(start, end) in pixels along ``direction`` (unit (du, dv) in the image) from the centre
    of ``g``: the depth image's run of pixels higher than ``min_height_m`` above the table
    plane (coefficients (3,)) that holds the centre, as far as ``reach_m`` (metres at the
    centre's depth) either side. None without a plane, when the centre is not above the
    table, or when the run reaches that far. Holes (no reading, as at many edges) end a run."""
    if plane is None:
        return None
    h, w = depth.shape
    z = depth[int(round(g.v)), int(round(g.u))] if 0 <= g.v < h and 0 <= g.u < w else 0.0
    if z <= 0:
        return None
    reach = int(np.ceil(reach_m * K[0, 0] / z))
    t = np.arange(-reach, reach + 1)
    us, vs, d = readings_along(g, depth, direction, t)
    table = plane_depth(np.asarray(plane, float), us.astype(float), vs.astype(float), w)
    above = (d > 0) & (d < table - min_height_m)
    c = reach  # index of t = 0
    if not above[c]:
        return None
    lo, hi = c, c
    while lo > 0 and above[lo - 1]:
        lo -= 1
    while hi < len(t) - 1 and above[hi + 1]:
        hi += 1
    if lo == 0 or hi == len(t) - 1:
        return None
    return float(t[lo]), float(t[hi])


def centre_on_object(g: PlanarGrasp, depth: np.ndarray, K: np.ndarray, gripper: GripperConfig,
                     plane, min_height_m: float = 0.01) -> PlanarGrasp:
    """``g`` moved along its closing axis to the middle of what stands on the table there.

    Along the closing axis through the grasp centre, the depth image's run of pixels higher
    than ``min_height_m`` above the table plane that holds the centre (:func:`object_run`) is
    the object between the fingers as the camera sees it; its midpoint becomes the centre, so
    both fingers clear it alike (a net's centre is a few mm off, and a 6.6 cm can leaves 7 mm a
    side in an 8 cm hand). Unchanged without a plane, when the centre is not above the table,
    or when the run is as wide as the gripper opens."""
    axis = (np.cos(g.angle), np.sin(g.angle))
    run = object_run(g, depth, K, plane, axis, gripper.max_opening / 2, min_height_m)
    if run is None:
        return g
    mid = (run[0] + run[1]) / 2
    return PlanarGrasp(g.u + mid * axis[0], g.v + mid * axis[1], g.angle,
                       max(g.width, run[1] - run[0] + 1), g.height, g.quality)


def centre_along_jaws(g: PlanarGrasp, depth: np.ndarray, K: np.ndarray, plane,
                      min_height_m: float = 0.01, reach_m: float = 0.15) -> PlanarGrasp:
    """``g`` moved along its jaws (in the image, across its closing axis) to the middle of what
    stands on the table there.

    Along the line through the grasp centre across the closing axis, the depth image's run of
    pixels higher than ``min_height_m`` above the table plane that holds the centre
    (:func:`object_run`) is the object's extent under the pads; its midpoint becomes the
    centre. A net's grasp across a can a few mm off its axis closes on a chord and squeezes the
    can out; on a long object the middle keeps its weight nearer the jaws. Unchanged without a
    plane, when the centre is not above the table, or when the run goes on past ``reach_m``
    (metres at the centre's depth) either side."""
    jaws = (-np.sin(g.angle), np.cos(g.angle))
    run = object_run(g, depth, K, plane, jaws, reach_m, min_height_m)
    if run is None:
        return g
    mid = (run[0] + run[1]) / 2
    return PlanarGrasp(g.u + mid * jaws[0], g.v + mid * jaws[1], g.angle, g.width, g.height,
                       g.quality)


def silhouette_depth(g: PlanarGrasp, depth: np.ndarray, K: np.ndarray, plane, reach_m: float,
                     min_height_m: float = 0.01, edge_px: int = 3) -> float | None:
    """Depth (m, along the optical axis) of the object's silhouette along ``g``'s closing axis:
    at each end of the depth image's run of the object there (:func:`object_run`, as far as
    ``reach_m`` either side), the deepest reading of its ``edge_px`` outermost pixels; the
    deeper of the two ends. None where there is no such run (no plane, the centre not above
    the table, or the run goes on past ``reach_m``)."""
    axis = (np.cos(g.angle), np.sin(g.angle))
    run = object_run(g, depth, K, plane, axis, reach_m, min_height_m)
    if run is None:
        return None
    ends = []
    for start, step in ((run[0], 1), (run[1], -1)):
        d = readings_along(g, depth, axis, start + step * np.arange(edge_px))[2]
        if (d > 0).any():
            ends.append(float(d.max()))
    return max(ends) if ends else None


def pads_reach_silhouette(g: PlanarGrasp, centre_m: float, depth: np.ndarray, K: np.ndarray,
                          gripper: GripperConfig, plane) -> bool:
    """Whether the fingertips of planar grasp ``g``, its centre at depth ``centre_m`` (m along
    the optical axis), go at least as deep as the object's silhouette along the closing axis
    (:func:`silhouette_depth`); True where that is unknown.

    Seen from above, the outline of what lies between the fingers is its widest part: a
    lying can's is its widest line, half its diameter below its top. Pads whose tips stop
    above it touch the can only on its upper flank, where the surface leans past the
    friction cone: closing squeezes the can down and out, and the fingers close on nothing.
    A box's outline is its top edge, which any executable grasp reaches."""
    edge = silhouette_depth(g, depth, K, plane, gripper.max_opening / 2)
    return edge is None or centre_m + gripper.finger_length / 2 >= edge


# the neighbours of a grasp that refine_grasp tries: turns (degrees) and shifts along the
# closing axis (mm at the surface), the grasp itself first
REFINE_TURNS_DEG = (0, -5, 5, -10, 10, -15, 15, -20, 20)
REFINE_SHIFTS_MM = (0, -2, 2, -4, 4, -6, 6)


def refine_grasp(g: PlanarGrasp, depth: np.ndarray, K: np.ndarray, gripper: GripperConfig,
                 check: DepthCheckConfig, filled: np.ndarray, plane,
                 turns_deg=REFINE_TURNS_DEG, shifts_mm=REFINE_SHIFTS_MM) -> tuple | None:
    """(grasp, (centre depth, opening)) of the neighbour of ``g`` (turned by up to 20 degrees,
    moved up to 6 mm along its closing axis; :data:`REFINE_TURNS_DEG`, :data:`REFINE_SHIFTS_MM`)
    whose fingers the depth image lets deepest (simdata.grasping.depth_check.plan_grasp_depth),
    the least changed among equals (within 0.1 mm); None when no neighbour is executable.
    With ``turns_deg`` = ``shifts_mm`` = (0,): ``g`` itself, if the check accepts it.

    Why: a net's angle and centre are a few degrees and millimetres off, and where a finger's
    footprint grazes the object's flank the check stops the fingertips early, so the pads close
    above a lying can's widest part and squeeze it out. On the grasp benchmark's test views it
    lifts the simulated success of three nets from 62.0, 60.0 and 61.5 % to 65.5, 67.0 and
    65.5 %, and of the centroid baseline from 25 to 30 %
    (benchmarks/results/grasp_seeds_cpu.json)."""
    inside = 0 <= g.v < depth.shape[0] and 0 <= g.u < depth.shape[1]
    z = depth[int(round(g.v)), int(round(g.u))] if inside else 0
    px_per_mm = K[0, 0] / z / 1000 if z > 0 else 0.0
    best = None
    for turn in turns_deg:
        a = g.angle + np.radians(turn)
        for shift in shifts_mm if px_per_mm else (0,):
            t = shift * px_per_mm
            h = PlanarGrasp(g.u + t * np.cos(a), g.v + t * np.sin(a), a, g.width, g.height,
                            g.quality)
            plan = plan_grasp_depth(depth, h, K, gripper, check, filled,
                                    table_depth(plane, h.u, h.v, depth.shape[1]))
            if plan is not None and (best is None or plan[0] > best[1][0] + 1e-4):
                best = (h, plan)
    return best


# approaches tried when no grasp is executable along the optical axis: (gripper axis the
# approach leans about, degrees), in order (see executable_grasps)
TILTS = (("x", 15), ("x", -15), ("x", 30), ("x", -30), ("y", 15), ("y", -15))


def table_floor(plane, shape: tuple[int, int]) -> np.ndarray | None:
    """(H, W) :func:`plane_depth` at every pixel, or None without a plane."""
    if plane is None:
        return None
    vs, us = np.mgrid[0:shape[0], 0:shape[1]]
    return plane_depth(plane, us, vs, shape[1])


def tilted_grasp(g: PlanarGrasp, depth: np.ndarray, K: np.ndarray, gripper: GripperConfig,
                 check: DepthCheckConfig, filled: np.ndarray, floor: np.ndarray | None,
                 tilts=TILTS) -> tuple | None:
    """:func:`executable_grasps`' tuple of ``g`` approached with the first of ``tilts`` the
    point-cloud check (simdata.grasping.cloud_check) accepts, or None. ``floor``: the table's
    depth per pixel (:func:`table_floor`)."""
    frames = [tilted(axis_frame(g.angle), about, deg) for about, deg in tilts]
    plan = plan_grasp_pose(depth, g, K, gripper, frames, check, filled, floor)
    if plan is None:
        return None
    T, opening = plan
    return g, T, float(g.width * T[2, 3] / K[0, 0]), opening


def executable_grasps(grasps: list[PlanarGrasp | None], depth: np.ndarray, K: np.ndarray,
                      gripper: GripperConfig, check: DepthCheckConfig, filled: np.ndarray, plane,
                      recentre: bool = True, n: int | None = None,
                      refine: bool = True, tilts=TILTS, silhouette: bool = True) -> list[tuple]:
    """The grasps of ``grasps`` (in order) the depth-image check accepts
    (simdata.grasping.depth_check), each first centred on its object unless ``recentre`` is
    False (moved to the middle along its jaws, :func:`centre_along_jaws`, and across them,
    :func:`centre_on_object`; where that grasp fails the check, centred across only) and then
    replaced by its neighbour that lets the fingers deepest (:func:`refine_grasp`) unless
    ``refine`` is False, and refused where its fingertips would stop above the object's
    outline (:func:`pads_reach_silhouette`; not with ``silhouette`` False: on the grasp
    benchmark's 200 test views this takes the seed-0 net's closed loop from 79.0 to 81.0 %,
    and the trials whose fingers close on nothing from 19 to 14,
    benchmarks/results/grasp_settled_parts_cpu.json), up to ``n`` of them (None = all): tuples
    (grasp, T_cam_grasp (4x4, metres; +z the approach, +x the closing axis), the grasp's
    width (m, between the pads at the centre's depth), how wide the fingers open (m, the
    opening the depth image lets deepest, the widest among equals)).

    Approaches along the optical axis come first. When fewer than ``n`` grasps pass that way,
    the rejected ones (centred, unrefined) are tried in turn with the approach tilted as
    ``tilts`` lists ((gripper axis, degrees): x leans the approach across the fingers, y along
    the closing axis; :data:`TILTS`), checked on the depth image's point cloud
    (simdata.grasping.cloud_check), the first tilt that passes kept; () = none.
    ``filled``: the depth with its holes inpainted; ``plane``: the table's coefficients (3,)
    or None."""
    out, rejected = [], []
    for g in grasps:
        if g is None:
            continue
        places = [g]
        if recentre:  # the middle along the jaws first, then the grasp's own place
            along = centre_along_jaws(g, depth, K, plane)
            places = [along, g] if abs(along.u - g.u) + abs(along.v - g.v) > 0.5 else [g]
        for candidate in places:  # centred across the jaws only when tried
            if recentre:
                candidate = centre_on_object(candidate, depth, K, gripper, plane)
            found = refine_grasp(candidate, depth, K, gripper, check, filled, plane,
                                 *(() if refine else ((0,), (0,))))
            if found is not None and silhouette and not pads_reach_silhouette(
                    found[0], found[1][0], depth, K, gripper, plane):
                found = None  # it would close above the object's widest part
            if found is not None:
                break
        if found is None:
            rejected.append(candidate)  # the grasp's own place, centred
            continue
        g, plan = found
        out.append((g, *grasp_pose_in_camera(g, plan[0], K), plan[1]))
        if n is not None and len(out) >= n:
            return out
    if not tilts or not rejected:
        return out
    floor = table_floor(plane, depth.shape)
    for g in rejected:
        found = tilted_grasp(g, depth, K, gripper, check, filled, floor, tilts)
        if found is not None:
            out.append(found)
            if n is not None and len(out) >= n:
                break
    return out


def plan_grasp(grasps: list[PlanarGrasp | None], depth: np.ndarray, K: np.ndarray,
               gripper: GripperConfig, check: DepthCheckConfig, filled: np.ndarray, plane,
               recentre: bool = True, refine: bool = True, tilts=TILTS, silhouette: bool = True):
    """(grasp, T_cam_grasp, opening) of the first of :func:`executable_grasps`, or None.
    (Executing the best rejected grasp instead of none gains nothing measurable.)"""
    found = executable_grasps(grasps, depth, K, gripper, check, filled, plane, recentre, n=1,
                              refine=refine, tilts=tilts, silhouette=silhouette)
    return (found[0][0], found[0][1], found[0][3]) if found else None
