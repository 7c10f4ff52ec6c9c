"""Grasping: gripper URDF, antipodal sampling (+ cache), and grasp trials in pybullet."""
from pathlib import Path

import numpy as np
import pytest
import trimesh

from simdata.grasping import (Grasp, GripperConfig, antipodal_cache_path, antipodal_cached,
                              execute_grasp, gripper_urdf, sample_antipodal)
from simdata.grasping import antipodal as antipodal_module
from simdata.physics import quiet_stdout

REPO = Path(__file__).resolve().parent.parent
BOX = (0.04, 0.12, 0.04)  # x: 4 cm fits the 8 cm opening, y: 12 cm does not; 4 cm tall


def test_shipped_urdf_is_the_default_and_loads(tmp_path):
    shipped = (REPO / "assets" / "grippers" / "parallel_jaw.urdf").read_text()
    assert shipped == gripper_urdf(GripperConfig()), \
        "assets/grippers/parallel_jaw.urdf is stale: regenerate it from gripper_urdf(GripperConfig())"
    with quiet_stdout():
        import pybullet
        from pybullet_utils.bullet_client import BulletClient

        client = BulletClient(connection_mode=pybullet.DIRECT)
    try:
        body = client.loadURDF(str(REPO / "assets" / "grippers" / "parallel_jaw.urdf"))
        infos = [client.getJointInfo(body, j) for j in range(client.getNumJoints(body))]
        assert [i[1].decode() for i in infos] == ["finger_left", "finger_right"]
        assert all(i[2] == pybullet.JOINT_PRISMATIC for i in infos)
        assert all(i[8] == 0 and i[9] == pytest.approx(0.04) for i in infos)  # limits 0..max/2
        # fully open, the pads are max_opening apart, centred on the base (grasp) frame
        for j in (0, 1):
            client.resetJointState(body, j, 0.04)
        aabbs = [client.getAABB(body, j) for j in (0, 1)]
        assert aabbs[0][0][0] == pytest.approx(0.04, abs=2e-3)   # left pad at x = +4 cm
        assert aabbs[1][1][0] == pytest.approx(-0.04, abs=2e-3)  # right pad at x = -4 cm
    finally:
        client.disconnect()


def _sphere():
    return trimesh.creation.icosphere(subdivisions=4, radius=0.025)


def test_antipodal_on_a_sphere_goes_through_the_centre():
    grasps = sample_antipodal(_sphere(), np.random.default_rng(0), 40, GripperConfig(),
                              approaches_per_pair=4)
    assert len(grasps) >= 40  # almost every point of a sphere has an antipodal partner
    for g in grasps:
        assert np.linalg.norm(g.axis) == pytest.approx(1.0)
        assert np.linalg.norm(g.approach) == pytest.approx(1.0)
        assert abs(g.axis @ g.approach) < 1e-9
        # distance of the line through the contacts to the sphere's centre
        assert np.linalg.norm(np.cross(-g.centre, g.axis)) < 2e-3
        assert g.width == pytest.approx(0.05, abs=1e-3)
        assert 0.0 <= g.quality <= 1.0
        T = g.pose()
        assert np.allclose(T[:3, :3].T @ T[:3, :3], np.eye(3)) and np.linalg.det(T[:3, :3]) > 0
        assert np.allclose(T[:3, 0], g.axis) and np.allclose(T[:3, 2], g.approach)
    # approaches of one pair are evenly spread about its axis
    a = np.array([g.approach for g in grasps[:4]])
    assert np.allclose(a @ a.T, [[1, 0, -1, 0], [0, 1, 0, -1], [-1, 0, 1, 0], [0, -1, 0, 1]], atol=1e-9)


def test_antipodal_is_deterministic_per_seed():
    mesh = _sphere()
    a = sample_antipodal(mesh, np.random.default_rng(7), 20, GripperConfig())
    b = sample_antipodal(mesh, np.random.default_rng(7), 20, GripperConfig())
    c = sample_antipodal(mesh, np.random.default_rng(8), 20, GripperConfig())
    assert a == b
    assert a != c


def test_antipodal_respects_opening_and_friction():
    box = trimesh.creation.box(extents=BOX)
    grasps = sample_antipodal(box, np.random.default_rng(0), 60, GripperConfig())
    assert grasps
    for g in grasps:  # on a box only the faces 4 cm apart are within the 8 cm opening
        assert g.width == pytest.approx(0.04, abs=1e-6)
        assert abs(abs(g.axis[0]) - 1) < 1e-9 or abs(abs(g.axis[2]) - 1) < 1e-9
    # a smaller opening than 4 cm leaves nothing
    assert sample_antipodal(box, np.random.default_rng(0), 60, GripperConfig(max_opening=0.03)) == []


def _box_on_table():
    T_world_obj = np.eye(4)
    T_world_obj[2, 3] = BOX[2] / 2  # resting on the table top (z = 0)
    return trimesh.creation.box(extents=BOX), T_world_obj


def test_top_grasp_across_the_short_side_lifts_the_box():
    box, T_world_obj = _box_on_table()
    # from above (approach -z), closing along x; centre 1 cm above the box's centre so the
    # fingertips (2.5 cm below the centre) clear the table and the palm clears the box's top
    grasp = Grasp(np.array([0.0, 0.0, 0.01]), np.array([1.0, 0, 0]), np.array([0, 0, -1.0]), 0.04)
    result = execute_grasp(box, T_world_obj, grasp, GripperConfig())
    assert result["collision_free"] and result["success"], result
    assert result["lift_m"] > 0.1
    assert all(c > 0 for c in result["contacts"])
    assert execute_grasp(box, T_world_obj, grasp, GripperConfig()) == result  # deterministic
    # lifted without the shake (which may turn the box a little between the pads), the pads
    # stand the box's width apart
    still = execute_grasp(box, T_world_obj, grasp, GripperConfig(), shake="none")
    assert still["success"] and still["width_m"] == pytest.approx(0.04, abs=3e-3)


def test_grasp_across_the_long_side_fails():
    box, T_world_obj = _box_on_table()
    grasp = Grasp(np.array([0.0, 0.0, 0.01]), np.array([0, 1.0, 0]), np.array([0, 0, -1.0]), 0.12)
    result = execute_grasp(box, T_world_obj, grasp, GripperConfig())
    assert not result["success"]
    assert not result["collision_free"]  # the open fingers (8 cm) are inside the 12 cm box


def test_fingers_open_as_wide_as_fits_beside_a_neighbour():
    from simdata.grasping import try_grasp
    from simdata.grasping.depth_check import openings

    gripper = GripperConfig()
    assert openings(0.075, gripper) == [gripper.max_opening]  # nothing narrower to try
    box, T_box = _box_on_table()
    neighbour = np.eye(4)
    neighbour[:3, 3] = [0.065, 0.0, BOX[2] / 2]  # 2.5 cm of table between the boxes
    objects = [(_model(box, 1), T_box), (_model(trimesh.creation.box(extents=BOX), 2), neighbour)]
    grasp = Grasp(np.array([0.0, 0.0, 0.01]), np.array([1.0, 0, 0]), np.array([0, 0, -1.0]), 0.04)
    T_world_grasp = T_box @ grasp.pose()
    # fully open, the finger on +x (4 to 5 cm from the centre) lands on the neighbour
    assert not try_grasp(objects, T_world_grasp, gripper, search_depth=False)["collision_free"]
    r = try_grasp(objects, T_world_grasp, gripper, search_depth=False,
                  opening_m=openings(grasp.width, gripper))  # 8, 7, 6 cm: 6 cm fits
    assert r["collision_free"] and r["success"] and r["object"] == 0, r
    assert r["opening_m"] == pytest.approx(0.06)
    alone = try_grasp(objects[:1], T_world_grasp, gripper, search_depth=False,
                      opening_m=openings(grasp.width, gripper))
    assert alone["success"] and alone["opening_m"] == pytest.approx(0.08)  # room: fully open


def _model(mesh, obj_id):
    from simdata.types import ObjectModel

    return ObjectModel(obj_id=obj_id, name=f"box{obj_id}", mesh=mesh, source=Path("<mesh>"))


def test_grasp_into_the_table_collides_unless_the_gripper_backs_off_along_its_approach():
    box, T_world_obj = _box_on_table()
    grasp = Grasp(np.zeros(3), np.array([1.0, 0, 0]), np.array([0, 0, -1.0]), 0.04)
    # at the box's centre the fingertips would be 0.5 cm below the table top (z = 0)
    result = execute_grasp(box, T_world_obj, grasp, GripperConfig(), search_depth=False)
    assert result == {**result, "collision_free": False, "success": False}
    result = execute_grasp(box, T_world_obj, grasp, GripperConfig())  # Dex-Net's grasp depth
    assert result["collision_free"] and result["success"]
    assert 0.005 <= result["depth_back_m"] <= GripperConfig().finger_length / 2


def test_cache_reuses_results_keyed_by_content(tmp_path, monkeypatch):
    mesh = _sphere()
    first = antipodal_cached(mesh, tmp_path, seed=3, n=15, cfg=GripperConfig())
    path = antipodal_cache_path(mesh, tmp_path, 3, 15, GripperConfig())
    assert path.is_file() and first
    assert first == sample_antipodal(mesh, np.random.default_rng(3), 15, GripperConfig())
    assert not [p for p in path.parent.iterdir() if p != path]  # no temporary files left
    mtime = path.stat().st_mtime_ns

    def boom(*args, **kwargs):
        raise AssertionError("recomputed despite the cache")

    monkeypatch.setattr(antipodal_module, "sample_antipodal", boom)
    same_content = trimesh.Trimesh(mesh.vertices.copy(), mesh.faces.copy(), process=False)
    assert antipodal_cached(same_content, tmp_path, seed=3, n=15, cfg=GripperConfig()) == first
    assert path.stat().st_mtime_ns == mtime
    # other content or other parameters are other keys
    bigger = trimesh.creation.icosphere(subdivisions=4, radius=0.03)
    assert antipodal_cache_path(bigger, tmp_path, 3, 15) != path
    assert antipodal_cache_path(mesh, tmp_path, 4, 15) != path
    assert antipodal_cache_path(mesh, tmp_path, 3, 15, GripperConfig(max_opening=0.07)) != path
    with pytest.raises(AssertionError, match="recomputed"):
        antipodal_cached(mesh, tmp_path, seed=4, n=15, cfg=GripperConfig())


def test_shake_starts_and_ends_at_rest_within_the_arms_limits():
    from simdata.grasping.execute import (_SHAKE_PEAK_ACCEL, ARM_LIMITS, SHAKE_ROTATION_RAD,
                                          SHAKE_TRANSLATION_M, shake_profile, shake_steps)

    dt = 1.0 / 240.0
    for amplitude, max_accel, max_speed in ((SHAKE_TRANSLATION_M, *ARM_LIMITS[:2]),
                                            (SHAKE_ROTATION_RAD, *ARM_LIMITS[2:])):
        n = shake_steps(amplitude, max_accel, max_speed, dt)
        # the displacement at the steps the simulation takes, held before and after the cycle
        x = amplitude * np.array([shake_profile(min(max(i / n, 0.0), 1.0)) for i in range(-2, n + 3)])
        v = np.diff(x) / dt
        a = np.diff(v) / dt
        assert x[2] == pytest.approx(0.0, abs=1e-12) and x[-3] == pytest.approx(0.0, abs=1e-12)
        assert np.abs(v).max() <= max_speed * 1.001
        assert np.abs(a).max() <= max_accel * 1.001
        # and not much slower than it may be: the cycle is as hard as the arm allows
        assert np.abs(v).max() >= 0.9 * max_speed or np.abs(a).max() >= 0.9 * max_accel
    s = np.linspace(0.0, 1.0, 200001)
    x = np.sin(2 * np.pi * s * s * (3 - 2 * s))
    peak = np.abs(np.gradient(np.gradient(x, s), s)).max()
    assert peak == pytest.approx(_SHAKE_PEAK_ACCEL, rel=1e-3)


def test_heavy_bar_held_off_its_centre_of_mass_stays_in_the_grasp():
    # 0.9 kg (a power drill's mass), grasped 3 cm from its centre of mass: the pads' friction
    # holds the 0.26 N m it hangs with, if the solver converges (with 20 g fingers, 20
    # iterations let it drop)
    bar = trimesh.creation.box((0.20, 0.04, 0.04))
    T_world_obj = np.eye(4)
    T_world_obj[2, 3] = 0.02
    grasp = Grasp(np.array([0.03, 0.0, 0.01]), np.array([0, 1.0, 0]), np.array([0, 0, -1.0]), 0.04)
    held = execute_grasp(bar, T_world_obj, grasp, GripperConfig(), mass_kg=0.9)
    assert held["success"] and held["lift_m"] > 0.1, held
    assert not execute_grasp(bar, T_world_obj, grasp, GripperConfig(finger_mass=0.02), mass_kg=0.9,
                             solver_iterations=20)["success"]


def test_light_brick_is_not_squeezed_out_of_the_pads():
    # a foam brick: 28 g, 7.5 x 5 x 5 cm, its true inertia (the mesh's at that mass), taken
    # across its 5 cm side at six places and turns. The fingers' mass stands for their drive:
    # with 20 g fingers pybullet's solver lets the light brick shoot out as the pads close
    brick = trimesh.creation.box((0.075, 0.05, 0.05))
    T_world_obj = np.eye(4)
    T_world_obj[2, 3] = 0.025

    def held(gripper):
        out = []
        for dx in (0.0, 0.01, 0.02):
            for turn in (0.0, np.radians(10)):
                grasp = Grasp(np.array([dx, 0.0, 0.01]), np.array([np.sin(turn), np.cos(turn), 0.0]),
                              np.array([0, 0, -1.0]), 0.05)
                out.append(execute_grasp(brick, T_world_obj, grasp, gripper, mass_kg=0.028)["success"])
        return out

    assert all(held(GripperConfig()))
    assert not all(held(GripperConfig(finger_mass=0.02)))


def test_trial_outcomes_tell_a_slip_from_a_miss():
    from simdata.grasping.execute import trial_outcome

    box, T_world_obj = _box_on_table()
    down = np.array([0, 0, -1.0])
    across = Grasp(np.array([0.0, 0.0, 0.01]), np.array([1.0, 0, 0]), down, 0.04)
    assert trial_outcome(execute_grasp(box, T_world_obj, across, GripperConfig())) == "held"
    # the same grasp 10 cm beside the box: the pads close on nothing
    beside = Grasp(np.array([0.10, 0.0, 0.01]), np.array([1.0, 0, 0]), down, 0.04)
    missed = execute_grasp(box, T_world_obj, beside, GripperConfig())
    assert missed["executed"] and trial_outcome(missed) == "missed", missed
    lengthwise = Grasp(np.array([0.0, 0.0, 0.01]), np.array([0, 1.0, 0]), down, 0.12)
    assert trial_outcome(execute_grasp(box, T_world_obj, lengthwise, GripperConfig())) == "not executed"
    # a 1.5 kg, 40 cm bar gripped 17 cm from its centre of mass turns down between the pads:
    # still held by both, its centre rises well short of the 12 cm lift (where success asks
    # for 90 % of it); gripped at its centre it rises the whole way
    bar = trimesh.creation.box((0.40, 0.04, 0.04))
    T_bar = np.eye(4)
    T_bar[2, 3] = 0.02
    far = Grasp(np.array([0.17, 0.0, 0.01]), np.array([0, 1.0, 0]), down, 0.04)
    turned = execute_grasp(bar, T_bar, far, GripperConfig(), mass_kg=1.5, min_lift_fraction=0.9)
    assert trial_outcome(turned) == "slipped" and turned["lift_m"] < 0.09, turned
    middle = Grasp(np.array([0.0, 0.0, 0.01]), np.array([0, 1.0, 0]), down, 0.04)
    assert trial_outcome(execute_grasp(bar, T_bar, middle, GripperConfig(), mass_kg=1.5,
                                       min_lift_fraction=0.9)) == "held"
