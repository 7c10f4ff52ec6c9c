"""Drop objects on a table with pybullet (DIRECT) and keep the ones that come to rest on it.

Each call owns its own physics client (no module-level pybullet state), so scenes are
independent and deterministic: the same placements give the same settled poses.
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import SimdataError
from .transforms import make_transform, matrix_to_quat_xyzw, quat_xyzw_to_matrix
from .types import ObjectModel, PlacedObject, Table

log = logging.getLogger(__name__)

WINDOW = 24  # simulation steps between rest checks (0.1 s at the default time step)


class quiet_stdout:
    """Silence C-level stdout (pybullet prints banners like 'argv[0]=' on every connect)."""

    def __enter__(self):
        import sys

        sys.stdout.flush()
        self._saved = os.dup(1)
        self._null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(self._null, 1)
        return self

    def __exit__(self, *exc):
        import ctypes

        ctypes.CDLL(None).fflush(None)  # C stdio buffers what pybullet printed: drop it now
        os.dup2(self._saved, 1)
        os.close(self._saved)
        os.close(self._null)


@dataclass
class PhysicsConfig:
    """Simulation settings. Lengths in metres, times in seconds."""

    timestep: float = 1.0 / 240.0
    max_steps: int = 2400           # cap: 10 s of simulated time
    rest_linear: float = 0.005      # m/s: mean speed over a check window (see window_at_rest)
    rest_angular: float = 0.05      # rad/s: mean angular speed over a check window
    rest_checks: int = 3            # consecutive windows (WINDOW steps each) all at rest
    density: float = 500.0          # kg/m^3, for meshes without a URDF mass
    friction: float = 0.6
    rolling_friction: float = 0.002  # keeps cans from rolling for ever on a frictionless-ish top
    penetration_m: float = 0.005    # deeper contacts than this count as interpenetration
    collision: str = "auto"         # auto (provided, else hull if convex, else VHACD) | vhacd | hull
    cache_dir: str = ""             # VHACD cache; "" = $SIMDATA_CACHE or ~/.cache/simdata


@dataclass
class SettleResult:
    kept: list[PlacedObject]
    dropped: list[tuple[int, str]]  # (model index, reason)
    steps: int
    at_rest: bool


def default_cache_dir(cfg: PhysicsConfig) -> Path:
    if cfg.cache_dir:
        return Path(cfg.cache_dir)
    return Path(os.environ.get("SIMDATA_CACHE", Path.home() / ".cache" / "simdata"))


def vhacd_decomposition(model: ObjectModel, cache_dir: Path) -> Path:
    """Convex decomposition of ``model.mesh`` with pybullet's VHACD, cached by mesh hash.

    The result is an OBJ in metres (one convex part per object) under ``cache_dir/vhacd``.
    """
    import pybullet
    from pybullet_utils.bullet_client import BulletClient

    mesh = model.mesh
    digest = hashlib.sha256(np.ascontiguousarray(mesh.vertices, np.float64).tobytes()
                            + np.ascontiguousarray(mesh.faces, np.int64).tobytes()).hexdigest()[:20]
    out = cache_dir / "vhacd" / f"{digest}.obj"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_in = out.with_suffix(f".in.{os.getpid()}.obj")
    tmp_out = out.with_suffix(f".part.{os.getpid()}.obj")
    log.info("%s: computing VHACD convex decomposition (cached in %s)", model.name, out.parent)
    try:
        mesh.export(str(tmp_in), include_texture=False)
        with quiet_stdout():
            client = BulletClient(connection_mode=pybullet.DIRECT)
        try:
            with quiet_stdout():  # VHACD prints its progress from C
                client.vhacd(str(tmp_in), str(tmp_out), os.devnull, resolution=100000)
        finally:
            client.disconnect()
        if not tmp_out.is_file() or tmp_out.stat().st_size == 0:
            raise SimdataError(f"VHACD failed on {model.source}; provide collision.obj next to it "
                               f"or use --collision hull")
        os.replace(tmp_out, out)
    finally:
        tmp_in.unlink(missing_ok=True)
        tmp_out.unlink(missing_ok=True)
    return out


def collision_source(model: ObjectModel, cfg: PhysicsConfig) -> tuple[Path | None, float]:
    """(OBJ file of convex parts, its scale to metres) that ``cfg.collision`` simulates for
    ``model``: the model's own collision mesh (auto), else pybullet's VHACD decomposition
    (vhacd, or auto for a non-convex mesh; computed once and cached); (None, 1.0) for the
    mesh's convex hull."""
    mode = cfg.collision
    if mode not in ("auto", "vhacd", "hull"):
        raise SimdataError(f"unknown collision mode {mode!r}; use auto, vhacd or hull")
    if mode == "auto" and model.collision_path is not None:
        return Path(model.collision_path), model.scale
    if mode == "vhacd" or mode == "auto" and not model.mesh.is_convex:
        return vhacd_decomposition(model, default_cache_dir(cfg)), 1.0
    return None, 1.0


def collision_shape(client, model: ObjectModel, cfg: PhysicsConfig, com: np.ndarray) -> int:
    import pybullet

    path, scale = collision_source(model, cfg)
    if path is None:
        hull = model.mesh.convex_hull
        return client.createCollisionShape(pybullet.GEOM_MESH, vertices=hull.vertices.tolist(),
                                           collisionFramePosition=(-com).tolist())
    shape = client.createCollisionShape(pybullet.GEOM_MESH, fileName=str(path),
                                        meshScale=[scale] * 3,
                                        collisionFramePosition=(-com).tolist())
    if shape < 0:
        raise SimdataError(f"pybullet could not load collision mesh {path}; re-export it as OBJ")
    return shape


def inertia_problem(inertia, mass: float, com, vertices) -> str | None:
    """Why the moments ``inertia`` (3,) kg m^2 about the x, y and z axes through ``com`` (3,)
    m cannot belong to a body of ``mass`` kg enclosed by the surface ``vertices`` (N, 3) m,
    or None when they can.

    Every particle of such a body lies within the vertices' farthest distance from each axis,
    so I_xx = sum m (y^2 + z^2) is at most m max(y^2 + z^2) over the vertices (likewise y and
    z), and any two moments sum to at least the third (I_xx + I_yy - I_zz = 2 sum m z^2). A
    URDF breaking either gives a placeholder, not its object: the YCB URDFs give every object
    1e-3 about each axis, for a 28 g foam brick 10x what it can have, and simulated with such
    moments the light objects and the cans spin, roll and rock like flywheels for seconds."""
    I = np.asarray(inertia, float)
    d2 = (np.asarray(vertices, float) - np.asarray(com, float)) ** 2
    bound = mass * np.array([(d2[:, 1] + d2[:, 2]).max(), (d2[:, 0] + d2[:, 2]).max(),
                             (d2[:, 0] + d2[:, 1]).max()])
    shown = np.array2string(I, precision=3)
    over = np.flatnonzero(I > bound * (1 + 1e-6))
    if over.size:
        k = int(over[0])
        return (f"inertia {shown} kg m^2: about {'xyz'[k]} it exceeds the {bound[k]:.2g} that "
                f"{mass:.3g} kg within the mesh can have")
    if (I.sum() - 2 * I).min() < -1e-9 * I.sum():
        return f"inertia {shown} kg m^2 breaks the triangle inequality"
    return None


def mass_properties(model: ObjectModel, density: float):
    """(mass kg, COM (3,) m in the model frame, inertia diagonal (3,) kg m^2 about the COM)."""
    if model.mass_kg is not None and model.com_m is not None and model.inertia_diag is not None:
        mass, com, inertia = model.mass_kg, model.com_m, model.inertia_diag  # a URDF's: no mesh maths
    else:
        mesh = model.mesh
        solid = mesh if mesh.is_volume else mesh.convex_hull
        mass = model.mass_kg if model.mass_kg is not None else max(solid.volume * density, 1e-3)
        com = model.com_m if model.com_m is not None else np.asarray(solid.center_mass)
        if model.inertia_diag is not None:
            inertia = model.inertia_diag
        else:  # the solid's inertia tensor at unit density, scaled to the mass
            inertia = np.diag(solid.moment_inertia) * mass / max(solid.mass, 1e-12)
    return float(mass), np.asarray(com, float), np.maximum(np.asarray(inertia, float), 1e-7)


def settle(models: list[ObjectModel], drops: list[PlacedObject], table: Table,
           cfg: PhysicsConfig) -> SettleResult:
    """Simulate ``drops`` (initial poses T_world_obj) falling onto ``table`` until at rest.

    Objects that leave the table top, or end interpenetrating another body by more than
    ``cfg.penetration_m``, are dropped from the result (with the reason).
    """
    with quiet_stdout():
        import pybullet
        from pybullet_utils.bullet_client import BulletClient

        client = BulletClient(connection_mode=pybullet.DIRECT)
    try:
        client.setGravity(0, 0, -9.81)
        client.setPhysicsEngineParameter(fixedTimeStep=cfg.timestep, deterministicOverlappingPairs=1)
        half = [table.size_xy[0] / 2, table.size_xy[1] / 2, table.thickness / 2]
        table_shape = client.createCollisionShape(pybullet.GEOM_BOX, halfExtents=half)
        table_id = client.createMultiBody(0, table_shape, basePosition=[0, 0, -table.thickness / 2])
        client.changeDynamics(table_id, -1, lateralFriction=cfg.friction)
        bodies, coms = [], []
        shapes: dict[int, int] = {}
        for drop in drops:
            model = models[drop.model_index]
            mass, com, inertia = mass_properties(model, cfg.density)
            if drop.model_index not in shapes:
                shapes[drop.model_index] = collision_shape(client, model, cfg, com)
            R = drop.T_world_obj[:3, :3]
            pos = drop.T_world_obj[:3, 3] + R @ com  # body frame sits at the COM
            body = client.createMultiBody(mass, shapes[drop.model_index], basePosition=pos.tolist(),
                                          baseOrientation=matrix_to_quat_xyzw(R).tolist())
            client.changeDynamics(body, -1, lateralFriction=cfg.friction,
                                  localInertiaDiagonal=inertia.tolist(), rollingFriction=cfg.rolling_friction,
                                  spinningFriction=cfg.rolling_friction)
            bodies.append(body)
            coms.append(com)
        steps, calm, at_rest = 0, 0, False
        poses = [client.getBasePositionAndOrientation(b) for b in bodies]
        while steps < cfg.max_steps:
            for _ in range(WINDOW):
                client.stepSimulation()
            steps += WINDOW
            before, poses = poses, [client.getBasePositionAndOrientation(b) for b in bodies]
            # bodies below the table top have fallen off: they are dropped, so do not wait for them
            resting = all(_fell_off(p[0], table) or
                          window_at_rest(p0, p, WINDOW * cfg.timestep, cfg.rest_linear, cfg.rest_angular)
                          for p0, p in zip(before, poses))
            calm = calm + 1 if resting else 0
            if calm >= cfg.rest_checks:
                at_rest = True
                break
        kept, dropped = [], []
        for drop, body, com in zip(drops, bodies, coms):
            pos, quat = client.getBasePositionAndOrientation(body)
            R = quat_xyzw_to_matrix(quat)
            T = make_transform(R, np.asarray(pos) - R @ com)
            reason = _reject_reason(client, body, bodies, table_id, pos, table, cfg)
            if reason:
                dropped.append((drop.model_index, reason))
            else:
                kept.append(PlacedObject(drop.model_index, T))
        return SettleResult(kept, dropped, steps, at_rest)
    finally:
        client.disconnect()


def window_at_rest(before, after, seconds: float, rest_linear: float, rest_angular: float) -> bool:
    """Whether a body that went from pose ``before`` to ``after`` in ``seconds`` is at rest:
    its mean speed over the window is under ``rest_linear`` m/s and its mean angular speed under
    ``rest_angular`` rad/s. Poses are pybullet's ((x, y, z) m, quaternion (x, y, z, w)).

    Mean speeds, not the velocities at the window's end: a body resting on a few contacts of its
    convex parts can flicker in place (0.1 rad/s from step to step for ever, its pose still to
    0.1 mm), and waiting for that to die out ran scenes to the 10 s cap."""
    (p0, q0), (p1, q1) = before, after
    moved = float(np.linalg.norm(np.subtract(p1, p0)))
    turned = 2.0 * float(np.arccos(min(1.0, abs(float(np.dot(q0, q1))))))  # angle between them
    return moved < rest_linear * seconds and turned < rest_angular * seconds


def _fell_off(com_pos, table: Table) -> bool:
    """A body whose centre of mass is below the top or outside the table's outline."""
    return (com_pos[2] < 0 or abs(com_pos[0]) > table.size_xy[0] / 2
            or abs(com_pos[1]) > table.size_xy[1] / 2)


def _reject_reason(client, body, bodies, table_id, com_pos, table: Table, cfg: PhysicsConfig):
    if _fell_off(com_pos, table):
        return "fell off the table"
    for other in [table_id] + [b for b in bodies if b != body]:
        for c in client.getContactPoints(bodyA=body, bodyB=other):
            if c[8] < -cfg.penetration_m:  # contactDistance, negative = penetration
                return f"interpenetrates by {-c[8] * 1000:.1f} mm"
    return None

