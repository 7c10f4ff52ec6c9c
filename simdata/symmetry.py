"""Object symmetries in the BOP convention: detect them from a mesh, expand them to transforms.

Units and shapes
----------------
* Input meshes are ``trimesh.Trimesh`` in METRES, in the model frame.
* Output follows BOP ``models_info.json`` (millimetres):

  - ``symmetries_discrete``: list of 4x4 matrices written row-major as 16 floats; the rotation
    part is unitless, the translation part is in MILLIMETRES. ``x' = R x + t`` maps a model
    point x (mm) onto an equivalent one. The identity is never listed. Without a continuous
    symmetry the list is the whole finite rotation group (closed under composition), e.g. 3
    entries for a box with three different sides, 23 for a cube.
  - ``symmetries_continuous``: list of ``{"axis": [x, y, z] unit, "offset": [x, y, z] mm}``;
    the object is invariant to any rotation about the line through ``offset`` along ``axis``.
    With one continuous axis, a 180-degree flip perpendicular to it (when there is one, as for
    a cylinder or a box-shaped can) is listed as the only discrete entry: composed with the
    continuous rotations it yields all other flips (as in BOP's T-LESS/YCB-V models_info).
  - A sphere is written as three continuous axes (model x, y and z through the centre) and no
    discrete entry; :func:`symmetry_transforms` samples each of the three axes (not their
    product), which is enough to recognise it and cheap.

  Keys whose list would be empty are omitted, so ``{}`` means "no symmetry".
* :func:`symmetry_transforms` returns rotations (S,3,3) and translations (S,3) in mm, identity
  first.

Detection (geometry and colour)
-------------------------------
``N_QUERY`` = 2000 query points and ``N_REF`` = 20000 reference points are sampled on the
surface with fixed seeds (results are deterministic). The centre is the area-weighted centroid
of the surface (the mean of the samples). A candidate rotation R about the centre is a
symmetry when the rotated query points lie on the surface, both ways (R and R^-1): the distance
of a rotated point y to the surface is estimated from its nearest reference point p (normal n)
as ``max(|n . (y - p)|, |y - p| - spacing)`` (point-to-plane, but a point far from every
reference point counts with its full distance; ``spacing`` = sqrt(area / N_REF)). Tolerances,
relative to the object's diameter D: mean < ``GEOM_MEAN_TOL`` (1 % of D) and 95th percentile
< ``GEOM_P95_TOL`` (3 % of D) — tight enough that a mug handle, a bottle nozzle off the axis or
unequal box sides break the symmetry, loose enough for tessellated cylinders (>= 16 sides) and
scanned models (the real YCB tomato soup can deviates by 0.6 % / 1.8 % of D from its axis;
distances beyond 10 % of D are counted as 10 %, which keeps the KD-tree queries fast). The mean
must also be below ``REL_MEAN_TOL`` (10 %) of the mean displacement of the rotated points, so
that small rotations of thin objects (which move points less than the tolerance) never pass.

Where the mesh carries colour (texture image via UV, vertex or face colours) that is not all one
value, colour must match too: each rotated query point's colour is compared with that of its
nearest reference point (mean absolute RGB difference in [0, 1]); the candidate passes when the
mean difference is below ``max(COLOR_FACTOR * baseline, baseline + COLOR_ABS_TOL)``, where the
baseline is the same difference for the identity (texture detail between neighbouring samples).
So a can with a printed label has no continuous symmetry in appearance.

Candidates: continuous symmetry about an axis = ``CONT_ANGLES`` (7 angles that are no multiple
of 360/n for small n) all pass. Axes tried: the model x/y/z axes, the principal axes of the
surface's second moments and, where two moments are (nearly) equal so that the principal axes
are arbitrary in a plane (cube, sphere, cylinder), the normals of the largest convex-hull facets.
Two continuous axes mean a sphere. Else discrete: n-fold rotations (n = 6, 4, 3, 2) about each
candidate axis; the found generators are closed into a group.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from .errors import SimdataError
from .transforms import rotation_about

log = logging.getLogger(__name__)

SYMMETRY_KEYS = ("symmetries_discrete", "symmetries_continuous")
VERSION = 1                      # bump when detection changes: invalidates cached results
N_QUERY = 2000
N_REF = 20000
GEOM_MEAN_TOL = 0.01             # mean surface distance / diameter
GEOM_P95_TOL = 0.03              # 95th percentile surface distance / diameter
REL_MEAN_TOL = 0.1               # mean surface distance / mean displacement of the points
SAME_ROTATION_DEG = 5.0          # rotations closer than this are one group element
COLOR_FACTOR = 2.0               # colour difference may be this many times the identity's ...
COLOR_ABS_TOL = 0.03             # ... or this much (RGB in [0, 1]) above it, whichever is larger
CONT_ANGLES_DEG = (23.0, 47.0, 71.0, 97.0, 131.0, 163.0, 199.0)
N_FOLDS = (6, 4, 3, 2)
MAX_GROUP = 60                   # icosahedral; a larger closure means tolerances leaked
UNIFORM_COLOR_STD = 1.0 / 255    # colours varying less than this are "one colour"


# ----------------------------------------------------------------------------- small helpers

def _canonical_axis(a: np.ndarray) -> np.ndarray:
    """Unit axis with its largest-magnitude component positive; snapped to x/y/z when within
    ~0.06 degrees of one (numerical noise of the principal axes)."""
    a = np.asarray(a, float) / np.linalg.norm(a)
    k = int(np.argmax(np.abs(a)))
    if a[k] < 0:
        a = -a
    if a[k] > 1 - 1e-6:
        a = np.eye(3)[k]
    return a


def _barycentric(tri: np.ndarray, pts: np.ndarray) -> np.ndarray:
    v0, v1, v2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], pts - tri[:, 0]
    d00, d01, d11 = (v0 * v0).sum(1), (v0 * v1).sum(1), (v1 * v1).sum(1)
    d20, d21 = (v2 * v0).sum(1), (v2 * v1).sum(1)
    den = d00 * d11 - d01 * d01
    den = np.where(np.abs(den) < 1e-30, 1.0, den)
    v = (d11 * d20 - d01 * d21) / den
    w = (d00 * d21 - d01 * d20) / den
    return np.stack([1 - v - w, v, w], 1)


def _texture_image(visual):
    mat = getattr(visual, "material", None)
    for attr in ("image", "baseColorTexture"):
        img = getattr(mat, attr, None)
        if img is not None:
            return np.asarray(img.convert("RGB"))  # uint8 (H,W,3)
    return None


def surface_colors(mesh, points: np.ndarray, face_index: np.ndarray) -> np.ndarray | None:
    """RGB in [0,1] (N,3) of surface ``points`` lying on faces ``face_index``; None when the
    mesh has no colour or all its colour is one value."""
    visual = getattr(mesh, "visual", None)
    kind = getattr(visual, "kind", None)
    faces = np.asarray(mesh.faces)
    cols = None
    if kind == "texture":
        img, uv = _texture_image(visual), getattr(visual, "uv", None)
        if img is not None and uv is not None and len(uv) == len(mesh.vertices):
            bary = _barycentric(np.asarray(mesh.vertices)[faces[face_index]], points)
            uvp = (np.asarray(uv)[faces[face_index]] * bary[:, :, None]).sum(1) % 1.0
            h, w = img.shape[:2]
            px = np.clip(np.round(uvp[:, 0] * (w - 1)).astype(int), 0, w - 1)
            py = np.clip(np.round((1 - uvp[:, 1]) * (h - 1)).astype(int), 0, h - 1)
            cols = img[py, px].astype(np.float32) / 255.0
        else:
            try:
                vc = np.asarray(visual.to_color().vertex_colors, np.float32)[:, :3] / 255.0
                bary = _barycentric(np.asarray(mesh.vertices)[faces[face_index]], points)
                cols = (vc[faces[face_index]] * bary[:, :, None]).sum(1)
            except Exception:  # a texture trimesh cannot turn into colours: geometry only
                return None
    elif kind == "vertex":
        vc = np.asarray(visual.vertex_colors, np.float32)[:, :3] / 255.0
        bary = _barycentric(np.asarray(mesh.vertices)[faces[face_index]], points)
        cols = (vc[faces[face_index]] * bary[:, :, None]).sum(1)
    elif kind == "face":
        cols = np.asarray(visual.face_colors, np.float32)[face_index, :3] / 255.0
    if cols is None or float(cols.std(0).max()) < UNIFORM_COLOR_STD:
        return None
    return cols


def _hull(points: np.ndarray):
    from scipy.spatial import ConvexHull, QhullError

    try:
        return ConvexHull(points)
    except (QhullError, ValueError):  # flat or degenerate point sets
        return None


def _diameter(points: np.ndarray, hull=None) -> float:
    """Largest distance between ``points`` (their convex hull's vertices, at most 1500)."""
    from scipy.spatial.distance import pdist

    hull = hull if hull is not None else _hull(points)
    pts = points[hull.vertices] if hull is not None else points
    if len(pts) > 1500:
        pts = pts[np.linspace(0, len(pts) - 1, 1500).astype(int)]
    return float(pdist(pts).max()) if len(pts) > 1 else 0.0


class _Surface:
    """Sampled surface of a mesh with the symmetry test (see the module docstring)."""

    def __init__(self, mesh, use_color: bool | None):
        import trimesh
        from scipy.spatial import cKDTree

        ref, ref_f = trimesh.sample.sample_surface(mesh, N_REF, seed=0)[:2]
        qry, qry_f = trimesh.sample.sample_surface(mesh, N_QUERY, seed=1)[:2]
        self.ref, self.qry = np.asarray(ref, float), np.asarray(qry, float)
        self.normals = np.asarray(mesh.face_normals)[ref_f]
        areas = np.asarray(mesh.area_faces)
        self.center = (np.asarray(mesh.triangles_center) * areas[:, None]).sum(0) / areas.sum()
        # diameter of the query samples (a hair below the vertices' one; only scales tolerances)
        self.hull = _hull(self.qry)
        self.diameter = max(_diameter(self.qry, self.hull), 1e-12)
        self.spacing = float(np.sqrt(mesh.area / N_REF))
        self.tree = cKDTree(self.ref)
        self.ref_col = self.qry_col = None
        if use_color is not False:
            rc = surface_colors(mesh, self.ref, ref_f)
            qc = surface_colors(mesh, self.qry, qry_f) if rc is not None else None
            if rc is not None and qc is not None:
                self.ref_col, self.qry_col = rc, qc
                _, i = self.tree.query(self.qry)
                self.color_base = float(np.abs(qc - rc[i]).mean())
        q = self.qry - self.center
        self.q0 = q

    @property
    def colored(self) -> bool:
        return self.ref_col is not None

    def _one_way(self, R: np.ndarray) -> bool:
        moved = self.q0 @ R.T
        disp = float(np.linalg.norm(moved - self.q0, axis=1).mean())
        y = moved + self.center
        cap = 0.1 * self.diameter
        d, i = self.tree.query(y, distance_upper_bound=cap)
        far = ~np.isfinite(d)
        if far.mean() > 0.2:  # cheap early reject
            return False
        d[far], i[far] = cap, 0
        plane = np.abs(((y - self.ref[i]) * self.normals[i]).sum(1))
        dist = np.maximum(plane, d - self.spacing)
        dist[far] = cap
        if dist.mean() > min(GEOM_MEAN_TOL * self.diameter, REL_MEAN_TOL * disp) or \
                np.percentile(dist, 95) > GEOM_P95_TOL * self.diameter:
            return False
        if self.colored:
            diff = float(np.abs(self.qry_col - self.ref_col[i]).mean())
            if diff > max(COLOR_FACTOR * self.color_base, self.color_base + COLOR_ABS_TOL):
                return False
        return True

    def is_symmetry(self, R: np.ndarray) -> bool:
        return self._one_way(R) and self._one_way(R.T)

    def is_continuous(self, axis: np.ndarray) -> bool:
        return all(self.is_symmetry(rotation_about(axis, np.deg2rad(a))) for a in CONT_ANGLES_DEG)


def _dedupe_axes(axes, cos_tol: float = np.cos(np.deg2rad(1.0))) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for a in axes:
        n = np.linalg.norm(a)
        if not n > 1e-9:
            continue
        a = _canonical_axis(a / n)
        if all(abs(a @ b) < cos_tol for b in out):
            out.append(a)
    return out


def _hull_normals(hull, count: int = 24) -> list[np.ndarray]:
    """Normals of the largest facets of a scipy ConvexHull of surface samples (cube faces,
    cylinder caps ...): simplices with equal normals (to 1e-3) are merged, area-summed."""
    if hull is None:
        return []
    pts = hull.points[hull.simplices]
    areas = np.linalg.norm(np.cross(pts[:, 1] - pts[:, 0], pts[:, 2] - pts[:, 0]), axis=1) / 2
    keys, inverse = np.unique(np.round(hull.equations[:, :3], 3), axis=0, return_inverse=True)
    total = np.bincount(inverse.ravel(), weights=areas, minlength=len(keys))
    order = np.argsort(total)[::-1][:count]
    return [keys[k] / np.linalg.norm(keys[k]) for k in order]


def _same_rotation(A: np.ndarray, B: np.ndarray) -> bool:
    c = (np.trace(A.T @ B) - 1) / 2
    return c > np.cos(np.deg2rad(SAME_ROTATION_DEG))


def _close_group(gens: list[np.ndarray]) -> list[np.ndarray] | None:
    """All products of the generator rotations (identity first); None if it exceeds
    MAX_GROUP (inconsistent generators, e.g. two nearly equal axes)."""
    elems = [np.eye(3)]
    frontier = [np.eye(3)]
    while frontier:
        new = []
        for a in frontier:
            for g in gens:
                p = g @ a
                if not any(_same_rotation(p, e) for e in elems):
                    elems.append(p)
                    new.append(p)
                    if len(elems) > MAX_GROUP:
                        return None
        frontier = new
    return elems


def _discrete_entry(R: np.ndarray, center_mm: np.ndarray) -> list[float]:
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = center_mm - R @ center_mm
    T = np.where(np.abs(T) < 1e-12, 0.0, T)
    return [float(v) for v in T.ravel()]


def _cont_entry(axis: np.ndarray, center_mm: np.ndarray) -> dict:
    return {"axis": [float(v) for v in _canonical_axis(axis)],
            "offset": [float(v) for v in center_mm]}


# ----------------------------------------------------------------------------- public API

def detect_symmetries(mesh, textured_colors: bool | None = None) -> dict:
    """Symmetries of ``mesh`` (trimesh.Trimesh, metres, model frame) as BOP models_info fields.

    ``textured_colors``: None (default) or True = use the mesh's colour (texture, vertex or
    face colours) when it has any that is not one value; False = geometry only. Returns
    ``{"symmetries_discrete": [[16 floats], ...], "symmetries_continuous": [{"axis", "offset"}]}``
    with translations/offsets in mm; empty keys are omitted (``{}`` = asymmetric).
    """
    if mesh is None or len(getattr(mesh, "faces", [])) == 0 or not mesh.area > 0:
        return {}
    s = _Surface(mesh, textured_colors)
    c_mm = s.center * 1000.0
    ref0 = s.ref - s.center  # second moments of the surface about its centroid
    evals, evecs = np.linalg.eigh(ref0.T @ ref0 / len(ref0))
    axes = [np.eye(3)[k] for k in range(3)] + [evecs[:, k] for k in range(3)]
    lam = max(float(evals.max()), 1e-30)
    degenerate = min(abs(evals[0] - evals[1]), abs(evals[1] - evals[2])) < 0.05 * lam
    if degenerate:
        axes += _hull_normals(s.hull)
    axes = _dedupe_axes(axes)

    continuous: list[np.ndarray] = []
    for a in axes:
        if any(abs(a @ b) > np.cos(np.deg2rad(5.0)) for b in continuous):
            continue
        if s.is_continuous(a):
            continuous.append(a)
            if len(continuous) >= 2:
                break
    if len(continuous) >= 2:  # two continuous axes: a sphere
        return {"symmetries_continuous": [_cont_entry(np.eye(3)[k], c_mm) for k in range(3)]}
    if continuous:
        a = continuous[0]
        perp = [b - (b @ a) * a for b in axes + [np.eye(3)[k] for k in range(3)]]
        perp = [b for b in _dedupe_axes(perp) if abs(b @ a) < 1e-6]
        out = {"symmetries_continuous": [_cont_entry(a, c_mm)]}
        for b in perp:
            R = rotation_about(b, np.pi)
            if s.is_symmetry(R):
                out["symmetries_discrete"] = [_discrete_entry(R, c_mm)]
                break
        return out

    gens: list[np.ndarray] = []
    group = [np.eye(3)]
    for a in axes:
        for n in N_FOLDS:
            R = rotation_about(a, 2 * np.pi / n)
            if any(_same_rotation(R, g) for g in group):
                break  # already implied (a nearly parallel axis was found before)
            if s.is_symmetry(R):
                closed = _close_group(gens + [R])
                # every product must be a symmetry too (rejects near-duplicate axes whose
                # products are small rotations that no tolerance should accept)
                if closed is not None and all(
                        s.is_symmetry(g) for g in closed[1:] if not any(
                            _same_rotation(g, h) for h in group)):
                    gens, group = gens + [R], closed
                break
    if len(group) == 1:
        return {}
    return {"symmetries_discrete": [_discrete_entry(R, c_mm) for R in group[1:]]}


def symmetry_transforms(info: dict, continuous_step_deg: float = 10.0
                        ) -> tuple[np.ndarray, np.ndarray]:
    """All symmetry transformations of a models_info entry: rotations (S,3,3) and translations
    (S,3) in mm, identity first. Like bop_toolkit's ``get_symmetry_transformations``: the
    identity and every discrete transform, each composed with every sampled rotation about
    each continuous axis (steps of ``continuous_step_deg``; the step 0 is the discrete
    transform itself). Several continuous axes (a sphere) are sampled one after the other,
    not as a product. For a model point x (mm), ``R[s] @ x + t[s]`` is an equivalent point.
    """
    disc = [(np.eye(3), np.zeros(3))]
    for m in info.get("symmetries_discrete", []) or []:
        T = np.asarray(m, float).reshape(4, 4)
        disc.append((T[:3, :3], T[:3, 3]))
    cont = [(np.eye(3), np.zeros(3))]
    steps = max(int(np.ceil(360.0 / continuous_step_deg)), 1)
    for sym in info.get("symmetries_continuous", []) or []:
        axis = np.asarray(sym["axis"], float)
        offset = np.asarray(sym.get("offset", [0.0, 0.0, 0.0]), float)
        for i in range(1, steps):
            R = rotation_about(axis, 2 * np.pi * i / steps)
            cont.append((R, offset - R @ offset))
    Rs, ts = [], []
    for Rd, td in disc:
        for Rc, tc in cont:
            Rs.append(Rc @ Rd)
            ts.append(Rc @ td + tc)
    return np.stack(Rs), np.stack(ts)


def _check_entry(value, where: str) -> dict:
    """Validate one override entry; returns BOP fields (empty dict for "none")."""
    if isinstance(value, str):
        if value.strip().lower() == "none":
            return {}
        raise SimdataError(f"{where}: {value!r} is no symmetry; write \"none\" or an object "
                           f"with symmetries_discrete / symmetries_continuous")
    if not isinstance(value, dict):
        raise SimdataError(f"{where}: expected \"none\" or an object with symmetries_discrete / "
                           f"symmetries_continuous, got {type(value).__name__}")
    bad = set(value) - {"symmetries_discrete", "symmetries_continuous"}
    if bad:
        raise SimdataError(f"{where}: unknown keys {sorted(bad)}; use symmetries_discrete "
                           f"(lists of 16 numbers) and symmetries_continuous ({{axis, offset}})")
    out = {}
    disc = value.get("symmetries_discrete", [])
    if not isinstance(disc, list):
        raise SimdataError(f"{where}: symmetries_discrete must be a list of 16-number lists")
    checked = []
    for m in disc:
        try:
            T = np.asarray(m, float)
        except (TypeError, ValueError):
            T = np.zeros(0)
        if T.shape != (16,) or not np.isfinite(T).all():
            raise SimdataError(f"{where}: each symmetries_discrete entry must be 16 numbers (a "
                               f"row-major 4x4 matrix, translation in mm), got {m!r}")
        R = T.reshape(4, 4)[:3, :3]
        if np.abs(R @ R.T - np.eye(3)).max() > 1e-3 or np.linalg.det(R) < 0:
            raise SimdataError(f"{where}: symmetries_discrete entry {m!r} has no rotation in "
                               f"its upper-left 3x3; fix the matrix")
        checked.append([float(v) for v in T])
    if checked:
        out["symmetries_discrete"] = checked
    cont = value.get("symmetries_continuous", [])
    if not isinstance(cont, list):
        raise SimdataError(f"{where}: symmetries_continuous must be a list of {{axis, offset}}")
    checked = []
    for c in cont:
        try:
            axis = np.asarray(c["axis"], float)
            offset = np.asarray(c.get("offset", [0.0, 0.0, 0.0]), float)
        except (TypeError, ValueError, KeyError, AttributeError):
            axis = offset = np.zeros(0)
        if axis.shape != (3,) or offset.shape != (3,) or not np.linalg.norm(axis) > 0 \
                or not (np.isfinite(axis).all() and np.isfinite(offset).all()):
            raise SimdataError(f"{where}: each symmetries_continuous entry needs \"axis\": "
                               f"[x, y, z] (non-zero) and \"offset\": [x, y, z] mm, got {c!r}")
        checked.append({"axis": [float(v) for v in axis / np.linalg.norm(axis)],
                        "offset": [float(v) for v in offset]})
    if checked:
        out["symmetries_continuous"] = checked
    return out


def load_symmetry_overrides(path) -> dict:
    """Read a JSON file mapping object name (or obj_id as a string) to ``"none"`` or
    ``{"symmetries_discrete": [[16 numbers], ...], "symmetries_continuous": [{"axis": [x,y,z],
    "offset": [x,y,z] mm}, ...]}``. Returns {key: BOP fields} ({} for "none").
    Raises SimdataError naming the file and the fix."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise SimdataError(f"symmetry overrides {path} not found; check the --symmetries "
                           f"path") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SimdataError(f"cannot read symmetry overrides {path} ({msg}); write a JSON "
                           f"object like {{\"002_master_chef_can\": \"none\"}}") from None
    if not isinstance(data, dict):
        raise SimdataError(f"symmetry overrides {path} must be a JSON object mapping object "
                           f"name or obj_id to \"none\" or symmetry fields")
    return {str(k): _check_entry(v, f"symmetry overrides {path}, entry {k!r}")
            for k, v in data.items()}


def mesh_digest(mesh) -> str:
    """sha256 (hex) of what detection depends on: vertices, faces, colour data."""
    h = hashlib.sha256(f"simdata-symmetry-v{VERSION}".encode())
    h.update(np.ascontiguousarray(mesh.vertices, np.float64).tobytes())
    h.update(np.ascontiguousarray(mesh.faces, np.int64).tobytes())
    visual = getattr(mesh, "visual", None)
    kind = getattr(visual, "kind", None)
    h.update(str(kind).encode())
    if kind == "texture":
        uv = getattr(visual, "uv", None)
        if uv is not None:
            h.update(np.ascontiguousarray(uv, np.float64).tobytes())
        img = _texture_image(visual)
        if img is not None:
            h.update(np.ascontiguousarray(img).tobytes())
    elif kind == "vertex":
        h.update(np.ascontiguousarray(visual.vertex_colors).tobytes())
    elif kind == "face":
        h.update(np.ascontiguousarray(visual.face_colors).tobytes())
    return h.hexdigest()


def cache_dir() -> Path:
    from .diskcache import cache_root

    return cache_root() / "symmetries"


def cached_detect(mesh, content_key: str = "", texture=None) -> dict:
    """:func:`detect_symmetries` with its result cached on disk (in :func:`cache_dir`) by
    :func:`mesh_digest`, or by ``content_key`` (ObjectModel.content_key: the mesh's files)
    where there is one, which costs nothing where hashing a 4096x4096 texture costs 0.2 s.
    ``texture``: the model's texture where it is kept apart from the mesh (ObjectModel.texture),
    read only when it is needed."""
    from .diskcache import cached_json
    from .texture_image import mesh_with_texture

    @functools.cache
    def looked():  # the mesh wearing its texture: read only where it is used, once
        return mesh_with_texture(mesh, texture)

    key = (hashlib.sha256(f"simdata-symmetry-v{VERSION} files {content_key}".encode()).hexdigest()
           if content_key else mesh_digest(looked()))
    return cached_json(cache_dir().name, key[:32], lambda: detect_symmetries(looked()))


def annotated_symmetries(model) -> dict | None:
    """The symmetry fields a BOP models folder annotates for ``model`` (models_info.json beside
    its obj_NNNNNN.ply; an entry without them means none), or None for other layouts."""
    source = Path(model.source) if getattr(model, "source", None) else None
    if source is None or not source.name.startswith("obj_"):
        return None
    info_path = source.parent / "models_info.json"
    if not info_path.is_file():
        return None
    try:
        entry = json.loads(info_path.read_text()).get(str(model.obj_id))
    except ValueError:
        raise SimdataError(f"{info_path} is not valid JSON; fix the file or remove it") from None
    if entry is None:
        return None
    return {k: entry[k] for k in SYMMETRY_KEYS if entry.get(k)}


def model_symmetries(model, overrides: dict | None = None) -> dict:
    """BOP symmetry fields of a :class:`simdata.types.ObjectModel`: the override for its name
    (or str(obj_id)) when ``overrides`` (from :func:`load_symmetry_overrides`) has one; else
    the annotation of a BOP models folder (the dataset authors know best); else detected from
    its mesh (cached under $SIMDATA_CACHE/symmetries)."""
    if overrides:
        for key in (model.name, str(model.obj_id)):
            if key in overrides:
                return dict(overrides[key])
    annotated = annotated_symmetries(model)
    return (annotated if annotated is not None
            else cached_detect(model.mesh, model.content_key, getattr(model, "texture", None)))


def describe(info: dict) -> str:
    """Short text: 'none', 'sphere', 'continuous z + 1 discrete', '3 discrete'."""
    cont = info.get("symmetries_continuous", []) or []
    disc = info.get("symmetries_discrete", []) or []
    if not cont and not disc:
        return "none"
    if len(cont) >= 3 and not disc:
        return "sphere"
    parts = []
    for c in cont:
        a = _canonical_axis(np.asarray(c["axis"], float))
        k = int(np.argmax(np.abs(a)))
        parts.append(f"continuous {'xyz'[k]}" if abs(a[k]) > 0.9999 else
                     "continuous [" + ", ".join(f"{v:.2f}" for v in a) + "]")
    if disc:
        parts.append(f"{len(disc)} discrete")
    return " + ".join(parts)


def symmetries_for_models(models, overrides_path: str | Path = "") -> dict[int, dict]:
    """{obj_id: BOP symmetry fields} for ObjectModels, with the overrides file (``""`` = none)
    applied first (see :func:`model_symmetries`)."""
    overrides = load_symmetry_overrides(overrides_path) if overrides_path else None
    return {m.obj_id: model_symmetries(m, overrides) for m in models}


def model_points(mesh, count: int = 1000, seed: int = 0) -> np.ndarray:
    """(count,3) float32 points spread uniformly (area-weighted, fixed seed) on a mesh's
    surface, in the mesh's units."""
    import trimesh

    pts = trimesh.sample.sample_surface(mesh, count, seed=seed)[0]
    return np.asarray(pts, np.float32)
