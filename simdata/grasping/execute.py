"""Try a grasp in pybullet: approach, close, lift, shake, and see whether an object stays held.

Each call owns its own DIRECT client (connected and always disconnected here), steps at a fixed
timestep and draws nothing at random, so the same inputs give the same result.

World frame: z up, metres; the optional table is a static box whose top is the plane z = 0.
The gripper is a free body (the URDF of :func:`gripper_urdf`) pinned to the world by a fixed
constraint whose pivot is moved step by step (with a force limit), like a position-controlled
arm's flange. Its fingers close independently (not coupled), each under velocity control limited to
``cfg.max_force``.
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..physics import PhysicsConfig, collision_shape, mass_properties, quiet_stdout
from ..transforms import make_transform, matrix_to_quat_xyzw, rotation_about
from ..types import ObjectModel
from .antipodal import Grasp
from .gripper import GripperConfig, base_com_offset, gripper_urdf


# The shake after the lift: one back-and-forth cycle per axis, as hard as the arm can shake.
SHAKES = ("arm", "sine", "none")
SHAKE_TRANSLATION_M = 0.015
SHAKE_ROTATION_RAD = 0.25
# Franka's Cartesian limits (libfranka): m/s^2, m/s, rad/s^2, rad/s. The "sine" shake starts
# at full speed and asks 10x the rotational acceleration (247 rad/s^2) and 3x the rotational
# speed an arm gives the hand: heavy objects held off their centre of mass are spun out of
# grasps no robot could shake that way.
ARM_LIMITS = (13.0, 2.0, 25.0, 2.5)
# Peaks of shake_profile's derivatives over s in [0, 1]: |d/ds| = 3 pi (at s = 1/2), and
# |d2/ds2| (found numerically on a fine grid, see tests/test_grasping.py).
_SHAKE_PEAK_RATE = 3 * np.pi
_SHAKE_PEAK_ACCEL = 75.5442


def _tcp_to_com(T_world_tcp: np.ndarray, com_offset: np.ndarray):
    """Pose of the gripper base's centre of mass (position, quaternion xyzw) for a TCP pose."""
    R = T_world_tcp[:3, :3]
    return (T_world_tcp[:3, 3] + R @ com_offset).tolist(), matrix_to_quat_xyzw(R).tolist()


def add_scene_bodies(client, objects: list[tuple[ObjectModel, np.ndarray]], physics: PhysicsConfig, *,
                     table: bool = True, object_friction: float = 0.8, near: np.ndarray | None = None,
                     reach_m: float = 0.25) -> tuple[int | None, list[int], list[int]]:
    """The bodies of a grasp trial in ``client``: the table (a static box whose top is z = 0;
    with ``table``) and each of ``objects`` ((model, T_world_obj) pairs, metres) at its pose,
    with mass, centre of mass and inertia from simdata.physics.mass_properties (density
    ``physics.density``) and the collision parts ``physics.collision`` gives it
    (simdata.physics.collision_shape), friction ``object_friction``. With ``near`` (3,) only the
    objects whose bounding sphere comes within ``reach_m`` of that point. Returns (the table's
    body id or None, the objects' body ids, their indices in ``objects``)."""
    import pybullet

    table_id = None
    if table:
        table_shape = client.createCollisionShape(pybullet.GEOM_BOX, halfExtents=[1.0, 1.0, 0.025])
        table_id = client.createMultiBody(0, table_shape, basePosition=[0, 0, -0.025])
        client.changeDynamics(table_id, -1, lateralFriction=object_friction)
    objs, index = [], []
    for i, (model, T_world_obj) in enumerate(objects):
        T_world_obj = np.asarray(T_world_obj, float)
        if near is not None:
            sphere = model.mesh.bounding_sphere
            centre = T_world_obj[:3, :3] @ np.asarray(sphere.primitive.center) + T_world_obj[:3, 3]
            if np.linalg.norm(centre - near) > reach_m + sphere.primitive.radius:
                continue
        mass, com, inertia = mass_properties(model, physics.density)
        shape = collision_shape(client, model, physics, com)
        R_obj = T_world_obj[:3, :3]
        obj = client.createMultiBody(mass, shape, basePosition=(T_world_obj[:3, 3] + R_obj @ com).tolist(),
                                     baseOrientation=matrix_to_quat_xyzw(R_obj).tolist())
        client.changeDynamics(obj, -1, lateralFriction=object_friction,
                              localInertiaDiagonal=inertia.tolist(),
                              rollingFriction=0.001, spinningFriction=0.001)
        objs.append(obj)
        index.append(i)
    return table_id, objs, index


def execute_grasp(mesh, T_world_obj: np.ndarray, grasp: Grasp, cfg: GripperConfig | None = None, *,
                  mass_kg: float | None = None, **kwargs) -> dict:
    """Execute ``grasp`` (object frame) on ``mesh`` (a trimesh.Trimesh in metres, collision
    geometry: its convex hull) resting alone at ``T_world_obj`` (4x4, metres); see
    :func:`try_grasp` for the steps, the options and the result."""
    model = ObjectModel(obj_id=0, name="grasp_object", mesh=mesh, source=Path("<mesh>"), mass_kg=mass_kg)
    return try_grasp([(model, T_world_obj)], np.asarray(T_world_obj, float) @ grasp.pose(), cfg,
                     collision="hull", **kwargs)


def try_grasp(objects: list[tuple[ObjectModel, np.ndarray]], T_world_grasp: np.ndarray,
              cfg: GripperConfig | None = None, *, collision: str = "auto", table: bool = True,
              density: float = 500.0, object_friction: float = 0.8, pregrasp_m: float = 0.05,
              lift_m: float = 0.12, shake: str = "arm", arm_force: float = 300.0,
              collision_tol_m: float = 1e-4, min_lift_fraction: float = 0.5,
              timestep: float = 1.0 / 240.0, search_depth: bool = True, depth_steps: int = 8,
              depth_margin_m: float = 0.005, reach_m: float = 0.25, solver_iterations: int = 100,
              precheck: bool = True, opening_m: float | Sequence[float] | None = None,
              cache_dir: str = "", execute_if: Callable[[np.ndarray], bool] | None = None) -> dict:
    """Try the gripper pose ``T_world_grasp`` (4x4, metres; gripper frame of
    :mod:`simdata.grasping.gripper`) in a scene of ``objects`` ((model, T_world_obj) pairs,
    each at rest on the table top z = 0).

    Steps: the open gripper (fingers ``opening_m`` apart, at most the gripper's opening; None =
    fully open; a sequence: each in turn, as simdata.grasping.depth_check.openings gives them,
    widest first) at the grasp pose is checked for collisions with every object and the
    table (penetration deeper than ``collision_tol_m``); with ``search_depth`` it is then
    backed off along -approach in ``depth_steps`` steps, up to half the pad length less
    ``depth_margin_m`` (the contacts stay between the pads); at each depth the openings are
    tried in turn, and the first free pose and opening are used (``depth_back_m`` and
    ``opening_m`` in the result); if none is free, nothing is simulated. Without
    ``precheck`` (a closed-loop test: the robot knows nothing of the scene's geometry) the
    check is only reported and the grasp is executed at its pose whatever it touches.
    ``execute_if``: called with the free pose found (4x4, after the depth search); when it
    says False nothing is simulated either (``executed`` False; labels skip the trials no
    view's maps could show, simdata.grasping.labels).
    Otherwise the gripper starts ``pregrasp_m`` back along -approach, moves in, closes, lifts
    ``lift_m`` straight up (world +z), shakes, and holds still. ``shake`` (:data:`SHAKES`):
    "arm" = one cycle each, from rest to rest, of translations of 1.5 cm along x and y, then
    rotations of 0.25 rad about the gripper's closing and approach axes, each as fast as an
    arm's Cartesian limits allow (:data:`ARM_LIMITS`, :func:`shake_steps`); "sine" = the same
    as 5 Hz sines started at full speed (the shake before 2026-11-27, beyond any arm: 247
    rad/s^2); "none". Objects whose bounding sphere stays
    farther than ``reach_m`` from the grasp centre are left out of the simulation (they cannot
    be touched in a lift and shake; their contacts would only cost time) and can never be held.
    Collision geometry: the models' (see simdata.physics, ``collision`` mode auto, vhacd or
    hull; VHACD results cached under ``cache_dir``); mass: a model's ``mass_kg`` or ``density``
    times its volume. ``solver_iterations``: pybullet's constraint solver iterations per step
    (its default is 50). Heavy objects need them: 20 g fingers squeezing a 0.9 kg drill are a
    stiff problem, and an unconverged solver lets it turn between the pads and drop. On 40
    trials of the YCB power drill, 3 held with 20 iterations, 16 with 50, 23 with 100 and 24
    with 200; a cracker box's 33: 20, 16, 14 and 13 (20 held some that slip when converged).
    100 costs about 1.9x the time of 20 per simulated trial.

    Returns a dict: ``collision_free`` (bool), ``executed`` (bool: the trial was simulated),
    ``success`` (bool: an object rose by at least
    ``min_lift_fraction * lift_m`` and touches both fingers at the end), ``object`` (index in
    ``objects`` of the object held, -1 if none), ``lift_m`` (how far that object's centre of
    mass rose, or the most any object rose, m), ``contacts`` ([left, right] contact-point counts
    with it at the end), ``width_m`` (final pad distance, m) and ``steps`` (simulation steps).
    """
    cfg = cfg or GripperConfig()
    if shake not in SHAKES:
        raise ValueError(f"shake {shake!r}: one of {', '.join(SHAKES)}")
    widths = [cfg.max_opening] if opening_m is None else np.atleast_1d(opening_m).astype(float).tolist()
    widths = [min(max(w, 0.0), cfg.max_opening) for w in widths]
    T_world_grasp = np.asarray(T_world_grasp, float)
    approach_w = T_world_grasp[:3, 2]
    com_offset = base_com_offset(cfg)
    result = {"collision_free": False, "executed": False, "success": False, "object": -1, "depth_back_m": 0.0,
              "opening_m": widths[0],
              "lift_m": 0.0, "contacts": [0, 0], "width_m": cfg.max_opening, "steps": 0}
    physics = PhysicsConfig(collision=collision, density=density, cache_dir=cache_dir)

    with quiet_stdout():
        import pybullet
        from pybullet_utils.bullet_client import BulletClient

        client = BulletClient(connection_mode=pybullet.DIRECT)
    try:
        with tempfile.TemporaryDirectory(prefix="simdata_grasp_") as tmp:
            urdf = Path(tmp) / "gripper.urdf"
            urdf.write_text(gripper_urdf(cfg))
            gripper = client.loadURDF(str(urdf), useFixedBase=False,
                                      flags=pybullet.URDF_USE_INERTIA_FROM_FILE)
        # loadURDF places the link frame, but reset/get/constraints use the centre of mass frame
        client.resetBasePositionAndOrientation(gripper, *_tcp_to_com(T_world_grasp, com_offset))
        client.setGravity(0, 0, -9.81)
        client.setPhysicsEngineParameter(fixedTimeStep=timestep, deterministicOverlappingPairs=1,
                                         numSolverIterations=solver_iterations)
        table_id, objs, index = add_scene_bodies(client, objects, physics, table=table,
                                                 object_friction=object_friction,
                                                 near=T_world_grasp[:3, 3], reach_m=reach_m)
        bodies = ([] if table_id is None else [table_id]) + objs

        joints = {client.getJointInfo(gripper, j)[1].decode(): j
                  for j in range(client.getNumJoints(gripper))}
        fingers = [joints["finger_left"], joints["finger_right"]]
        for j in fingers:
            client.changeDynamics(gripper, j, lateralFriction=cfg.friction)
        client.changeDynamics(gripper, -1, lateralFriction=cfg.friction)

        def touches(link: int) -> bool:  # link -1: the palm (the base), else a finger
            return any(c[8] < -collision_tol_m for other in bodies
                       for c in client.getClosestPoints(gripper, other, distance=0.0, linkIndexA=link))

        def collides(T_tcp, opening) -> str | None:
            """None when the open gripper is free at T_tcp, else what touches: palm or finger."""
            for j in fingers:
                client.resetJointState(gripper, j, opening / 2)
            client.resetBasePositionAndOrientation(gripper, *_tcp_to_com(T_tcp, com_offset))
            client.performCollisionDetection()
            if touches(-1):
                return "palm"
            return "finger" if any(touches(j) for j in fingers) else None

        # collision check of the open gripper at the grasp pose, and if it collides, with the
        # gripper backed off along the approach (Dex-Net's grasp depth: the contacts then sit
        # nearer the fingertips, as when a low object is taken from a table). At each depth,
        # the deepest first, the widest opening that fits: a robot keeps its contacts deep
        # between the pads and opens less before it backs off; where the palm touches, no
        # opening helps
        max_back = max(cfg.finger_length / 2 - depth_margin_m, 0.0) if search_depth and precheck else 0.0
        free = None
        for back in np.linspace(0.0, max_back, depth_steps) if max_back > 0 else [0.0]:
            T_try = T_world_grasp.copy()
            T_try[:3, 3] -= back * approach_w
            for w in widths:
                hit = collides(T_try, w)
                if hit is None:
                    free = (T_try, w, back)
                    break
                if hit == "palm":
                    break
            if free is not None:
                break
        if free is not None:
            T_try, w, back = free
            result.update(collision_free=True, depth_back_m=float(back), opening_m=w)
            if execute_if is not None and not execute_if(T_try):
                return result
        else:
            if precheck:
                return result
            T_try, w = T_world_grasp, widths[0]
        T_world_grasp, half_open = T_try, w / 2
        result["executed"] = True
        for j in fingers:
            client.resetJointState(gripper, j, half_open)

        # pre-grasp pose, then the constraint that drives the gripper
        def com_pose(T_tcp):
            return _tcp_to_com(T_tcp, com_offset)

        T_pre = T_world_grasp.copy()
        T_pre[:3, 3] -= pregrasp_m * approach_w
        client.resetBasePositionAndOrientation(gripper, *com_pose(T_pre))
        client.resetBaseVelocity(gripper, [0, 0, 0], [0, 0, 0])
        pos, quat = com_pose(T_pre)
        cid = client.createConstraint(gripper, -1, -1, -1, pybullet.JOINT_FIXED, [0, 0, 0],
                                      [0, 0, 0], pos, childFrameOrientation=quat)
        client.changeConstraint(cid, pos, quat, maxForce=arm_force)
        for j in fingers:  # hold the fingers open
            client.setJointMotorControl2(gripper, j, pybullet.POSITION_CONTROL,
                                         targetPosition=half_open, force=cfg.max_force)
        steps = 0

        def run(n, T_tcp_at=None):
            nonlocal steps
            for i in range(n):
                if T_tcp_at is not None:
                    p, q = com_pose(T_tcp_at((i + 1) / n))
                    client.changeConstraint(cid, p, q, maxForce=arm_force)
                client.stepSimulation()
            steps += n

        def translate(T0, delta):
            return lambda s: make_transform(T0[:3, :3], T0[:3, 3] + _smooth(s) * delta)

        z0 = [client.getBasePositionAndOrientation(o)[0][2] for o in objs]
        run(12)
        run(60, translate(T_pre, pregrasp_m * approach_w))  # 0.25 s in
        run(12)
        for j in fingers:
            client.setJointMotorControl2(gripper, j, pybullet.VELOCITY_CONTROL,
                                         targetVelocity=-cfg.max_speed, force=cfg.max_force)
        # close until the fingers stop (or 0.5 s), then squeeze a little longer
        for _ in range(10):
            run(12)
            if all(abs(client.getJointState(gripper, j)[1]) < 1e-3 for j in fingers):
                break
        run(24)
        up = np.array([0.0, 0.0, lift_m])
        run(96, translate(T_world_grasp, up))  # 0.4 s up
        T_top = T_world_grasp.copy()
        T_top[:3, 3] += up
        run(24)
        if shake != "none":
            # per cycle: steps of the translations and of the rotations, and the displacement at
            # progress s in units of the amplitude
            if shake == "sine":  # 5 Hz, from full speed (see the docstring)
                n_move, n_turn, profile = 48, 48, lambda s: np.sin(2 * np.pi * s)
            else:
                n_move = shake_steps(SHAKE_TRANSLATION_M, *ARM_LIMITS[:2], timestep)
                n_turn = shake_steps(SHAKE_ROTATION_RAD, *ARM_LIMITS[2:], timestep)
                profile = shake_profile
            for delta in (np.array([SHAKE_TRANSLATION_M, 0, 0]), np.array([0, SHAKE_TRANSLATION_M, 0])):
                run(n_move, lambda s, d=delta: make_transform(T_top[:3, :3], T_top[:3, 3] + profile(s) * d))
            for axis in (T_top[:3, 0], T_top[:3, 2]):
                run(n_turn, lambda s, a=axis: make_transform(
                    rotation_about(a, SHAKE_ROTATION_RAD * profile(s)) @ T_top[:3, :3], T_top[:3, 3]))
        run(36)

        rise = [client.getBasePositionAndOrientation(o)[0][2] - z for o, z in zip(objs, z0)]
        contacts = [[len(client.getContactPoints(gripper, o, linkIndexA=j)) for j in fingers]
                    for o in objs]
        held = [k for k in range(len(objs)) if rise[k] >= min_lift_fraction * lift_m
                and all(c > 0 for c in contacts[k])]
        k = held[0] if held else (int(np.argmax(rise)) if objs else -1)
        result.update(
            object=index[held[0]] if held else -1, lift_m=float(rise[k]) if objs else 0.0,
            contacts=contacts[k] if objs else [0, 0], steps=steps,
            width_m=float(sum(client.getJointState(gripper, j)[0] for j in fingers)),
            success=bool(held))
        return result
    finally:
        client.disconnect()


# what a trial came to (trial_outcome)
OUTCOMES = ("held", "slipped", "dropped", "missed", "not executed")


def trial_outcome(result: dict, empty_width_m: float = 0.002, rise_m: float = 0.01) -> str:
    """What a :func:`try_grasp` result came to, one of :data:`OUTCOMES`: ``held`` (success);
    ``slipped`` (an object ends touching both fingers but rose less than success needs: it
    turned or slid between the pads, as a long heavy object gripped far from its centre of
    mass does); ``missed`` (the pads closed to less than ``empty_width_m`` apart and nothing
    rose ``rise_m``: nothing was between them, or it was squeezed out as they closed, as a
    lying can touched above its widest line is); ``dropped`` (anything else: mostly an object
    lifted and then lost during the lift or the shake); ``not executed``."""
    if result.get("success"):
        return "held"
    if not result.get("executed", True):
        return "not executed"
    if all(c > 0 for c in result.get("contacts", [0, 0])):
        return "slipped"
    if result.get("width_m", 1.0) < empty_width_m and result.get("lift_m", 0.0) < rise_m:
        return "missed"
    return "dropped"


def _smooth(s: float) -> float:
    """Smoothstep 0..1 (zero velocity at both ends)."""
    return s * s * (3 - 2 * s)


def shake_profile(s: float) -> float:
    """The shake's displacement at progress ``s`` in [0, 1], in units of its amplitude: one sine
    cycle on a smoothstep clock, so it starts and ends at rest (no jump in velocity)."""
    return float(np.sin(2 * np.pi * _smooth(s)))


def shake_steps(amplitude: float, max_accel: float, max_speed: float, timestep: float) -> int:
    """Simulation steps of one shake cycle of ``amplitude`` (m or rad) whose peak acceleration
    and speed stay within ``max_accel`` and ``max_speed`` (per s^2, per s)."""
    duration = max(np.sqrt(amplitude * _SHAKE_PEAK_ACCEL / max_accel), amplitude * _SHAKE_PEAK_RATE / max_speed)
    return int(np.ceil(duration / timestep))
