"""Antipodal grasp sampling on a triangle mesh (Dex-Net style), with an on-disk cache.

A grasp is a pair of contacts p, q on the surface such that the contact line p -> q lies inside
both contacts' friction cones (half-angle atan(friction_coef) about the inward normal) and
|q - p| <= the gripper's max opening, plus an approach direction perpendicular to that line.

Frames and units: everything is in the mesh's (object's) frame, in metres. ``Grasp.pose()``
is T_obj_gripper in the gripper frame convention of :mod:`simdata.grasping.gripper`
(origin = grasp centre between the pads, +x = closing axis, +z = approach).

Ray casting is a vectorised Moeller-Trumbore test in numpy (no rtree or embree needed, and the
same results whatever optional trimesh back-ends are installed).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .gripper import GripperConfig

CACHE_VERSION = 2  # 2: inward-wound meshes (negative volume) get their normals flipped


@dataclass
class Grasp:
    """A parallel-jaw grasp in the object frame (metres).

    centre: (3,) midpoint between the two contacts; axis: (3,) unit closing axis (contact p ->
    contact q); approach: (3,) unit, perpendicular to axis, from the palm towards the object;
    width: distance between the contacts; quality: 1 - (largest contact-line angle to an
    inward normal) / (friction cone half-angle), in [0, 1], 1 = perfectly antipodal.
    """

    centre: np.ndarray
    axis: np.ndarray
    approach: np.ndarray
    width: float
    quality: float = 0.0

    def pose(self) -> np.ndarray:
        """T_obj_gripper (4, 4): columns x = axis, y = approach x axis, z = approach, t = centre."""
        x = np.asarray(self.axis, float)
        z = np.asarray(self.approach, float)
        T = np.eye(4)
        T[:3, 0] = x
        T[:3, 1] = np.cross(z, x)
        T[:3, 2] = z
        T[:3, 3] = self.centre
        return T

    def __eq__(self, other):
        if not isinstance(other, Grasp):
            return NotImplemented
        return (np.array_equal(self.centre, other.centre) and np.array_equal(self.axis, other.axis)
                and np.array_equal(self.approach, other.approach) and self.width == other.width
                and self.quality == other.quality)


def _sample_surface(mesh, rng: np.random.Generator, n: int):
    """n points uniformly on the surface (area-weighted faces), with their face indices."""
    areas = np.asarray(mesh.area_faces, float)
    cdf = np.cumsum(areas)
    faces = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right")
    faces = np.minimum(faces, len(areas) - 1)
    r = rng.random((n, 2))
    flip = r.sum(axis=1) > 1
    r[flip] = 1 - r[flip]
    tri = np.asarray(mesh.triangles, float)[faces]
    points = tri[:, 0] + r[:, :1] * (tri[:, 1] - tri[:, 0]) + r[:, 1:] * (tri[:, 2] - tri[:, 0])
    return points, faces


def ray_first_hits(triangles: np.ndarray, origins: np.ndarray, directions: np.ndarray,
                   min_dist: float, chunk: int = 2_000_000):
    """First hit of each ray beyond ``min_dist``: (distance (n,), face index (n,)); inf / -1 if none.

    triangles (F, 3, 3), origins and unit directions (n, 3). Both triangle sides count.
    """
    n, F = len(origins), len(triangles)
    best_t = np.full(n, np.inf)
    best_f = np.full(n, -1, np.int64)
    v0 = triangles[:, 0]
    e1 = triangles[:, 1] - v0
    e2 = triangles[:, 2] - v0
    rows = max(1, chunk // max(F, 1))
    for s in range(0, n, rows):
        o, d = origins[s:s + rows, None, :], directions[s:s + rows, None, :]
        h = np.cross(d, e2[None])
        a = np.einsum("fk,rfk->rf", e1, h)
        ok = np.abs(a) > 1e-15
        inv = np.where(ok, 1.0 / np.where(ok, a, 1.0), 0.0)
        svec = o - v0[None]
        u = inv * np.einsum("rfk,rfk->rf", svec, h)
        qvec = np.cross(svec, e1[None])
        v = inv * np.einsum("rfk,rfk->rf", d, qvec)
        t = inv * np.einsum("fk,rfk->rf", e2, qvec)
        tol = 1e-9
        hit = ok & (u >= -tol) & (v >= -tol) & (u + v <= 1 + tol) & (t > min_dist)
        t = np.where(hit, t, np.inf)
        f = np.argmin(t, axis=1)
        best_t[s:s + rows] = t[np.arange(len(f)), f]
        best_f[s:s + rows] = np.where(np.isfinite(best_t[s:s + rows]), f, -1)
    return best_t, best_f


def _perpendicular_basis(axis: np.ndarray):
    """Two unit vectors (n, 3) each, u and v, with (u, v, axis) right-handed and orthonormal."""
    helper = np.where(np.abs(axis[:, :1]) < 0.9, np.array([[1.0, 0, 0]]), np.array([[0, 1.0, 0]]))
    u = np.cross(axis, helper)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = np.cross(axis, u)
    return u, v


def sample_antipodal(mesh, rng: np.random.Generator, n: int, cfg: GripperConfig | None = None,
                     friction_coef: float = 0.5, approaches_per_pair: int = 4,
                     min_width: float = 1e-3) -> list[Grasp]:
    """Antipodal grasps on ``mesh`` (a trimesh.Trimesh in metres, object frame).

    Draws ``n`` surface points (area-uniform), casts a ray from each along its inward face
    normal to the first surface crossing where the ray leaves the solid, and keeps the pairs
    whose contact line lies in both friction cones and whose width is within
    [min_width, cfg.max_opening]. Each kept pair gives ``approaches_per_pair`` grasps whose
    approach directions are evenly spaced about the axis, starting at a random angle.
    So at most n * approaches_per_pair grasps, in sampling order. Deterministic for a given
    generator state.
    """
    cfg = cfg or GripperConfig()
    if n <= 0:
        return []
    vertices = np.asarray(mesh.vertices, float)
    triangles = np.asarray(mesh.triangles, float)
    # outward normals: a mesh wound inside out (negative signed volume) has them flipped
    normals = np.asarray(mesh.face_normals, float) * (-1.0 if mesh.volume < 0 else 1.0)
    points, faces = _sample_surface(mesh, rng, n)
    offsets = rng.random(n) * 2 * np.pi  # drawn for every point so the stream does not depend on hits
    n_p = normals[faces]
    eps = 1e-6 * max(float(np.ptp(vertices, axis=0).max()), 1e-9)
    dist, hit_faces = ray_first_hits(triangles, points, -n_p, eps)
    found = hit_faces >= 0
    n_q = np.where(found[:, None], normals[np.maximum(hit_faces, 0)], 0.0)
    d = -n_p  # unit contact line direction p -> q
    exits = np.einsum("ij,ij->i", d, n_q) > 0  # the ray leaves the solid at q
    cone = np.arctan(friction_coef)
    # angle between the line and each inward normal: at p the line p->q vs -n_p, at q q->p vs -n_q
    ang_p = np.arccos(np.clip(np.einsum("ij,ij->i", d, -n_p), -1, 1))
    ang_q = np.arccos(np.clip(np.einsum("ij,ij->i", -d, -n_q), -1, 1))
    keep = (found & exits & (ang_p <= cone) & (ang_q <= cone)
            & (dist >= min_width) & (dist <= cfg.max_opening))
    idx = np.flatnonzero(keep)
    if len(idx) == 0:
        return []
    axis = d[idx]
    centre = points[idx] + axis * dist[idx, None] / 2
    quality = 1.0 - np.maximum(ang_p[idx], ang_q[idx]) / max(cone, 1e-12)
    u, v = _perpendicular_basis(axis)
    grasps = []
    k = np.arange(approaches_per_pair) * 2 * np.pi / approaches_per_pair
    for j, i in enumerate(idx):
        theta = offsets[i] + k
        approaches = np.cos(theta)[:, None] * u[j] + np.sin(theta)[:, None] * v[j]
        for a in approaches:
            grasps.append(Grasp(centre[j].copy(), axis[j].copy(), a / np.linalg.norm(a),
                                float(dist[i]), float(quality[j])))
    return grasps


def mesh_digest(mesh) -> str:
    """sha256 of the mesh's vertices (float64) and faces (int64) bytes."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(mesh.vertices, np.float64).tobytes())
    h.update(np.ascontiguousarray(mesh.faces, np.int64).tobytes())
    return h.hexdigest()


def _cache_key(mesh, params: dict) -> str:
    h = hashlib.sha256(mesh_digest(mesh).encode())
    h.update(json.dumps(params, sort_keys=True).encode())
    return h.hexdigest()[:32]


def grasps_to_arrays(grasps: list[Grasp]) -> dict[str, np.ndarray]:
    return {"centre": np.array([g.centre for g in grasps], float).reshape(-1, 3),
            "axis": np.array([g.axis for g in grasps], float).reshape(-1, 3),
            "approach": np.array([g.approach for g in grasps], float).reshape(-1, 3),
            "width": np.array([g.width for g in grasps], float),
            "quality": np.array([g.quality for g in grasps], float)}


def grasps_from_arrays(arrays) -> list[Grasp]:
    return [Grasp(c.copy(), a.copy(), p.copy(), float(w), float(q)) for c, a, p, w, q in
            zip(arrays["centre"], arrays["axis"], arrays["approach"], arrays["width"], arrays["quality"])]


def antipodal_cache_path(mesh, cache_dir, seed: int, n: int, cfg: GripperConfig | None = None,
                         friction_coef: float = 0.5, approaches_per_pair: int = 4,
                         min_width: float = 1e-3) -> Path:
    """Where :func:`antipodal_cached` keeps these grasps: cache_dir/antipodal/<key>.npz."""
    cfg = cfg or GripperConfig()
    params = {"version": CACHE_VERSION, "seed": int(seed), "n": int(n), "gripper": asdict(cfg),
              "friction_coef": float(friction_coef), "approaches_per_pair": int(approaches_per_pair),
              "min_width": float(min_width)}
    return Path(cache_dir) / "antipodal" / f"{_cache_key(mesh, params)}.npz"


def antipodal_cached(mesh, cache_dir, seed: int, n: int, cfg: GripperConfig | None = None,
                     friction_coef: float = 0.5, approaches_per_pair: int = 4,
                     min_width: float = 1e-3) -> list[Grasp]:
    """:func:`sample_antipodal` with ``np.random.default_rng(seed)``, cached as .npz.

    The key is a sha256 of the mesh's vertex and face bytes and every parameter; a file is
    written under a temporary name and renamed, so concurrent writers never leave a torn file.
    """
    cfg = cfg or GripperConfig()
    path = antipodal_cache_path(mesh, cache_dir, seed, n, cfg, friction_coef, approaches_per_pair,
                                min_width)
    if path.is_file():
        with np.load(path) as data:
            return grasps_from_arrays(data)
    grasps = sample_antipodal(mesh, np.random.default_rng(seed), n, cfg, friction_coef,
                              approaches_per_pair, min_width)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **grasps_to_arrays(grasps))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return grasps
