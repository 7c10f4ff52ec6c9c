"""The depth-image check for approaches off the optical axis (simdata.grasping.cloud_check),
on depth images ray-cast from real box meshes, and the poses it accepts executed in pybullet."""
from pathlib import Path

import numpy as np
import pytest
import trimesh

from simdata.grasping import GripperConfig, try_grasp
from simdata.grasping.antipodal import ray_first_hits
from simdata.grasping.cloud_check import plan_grasp_pose, tilted
from simdata.grasping.depth_check import DepthCheckConfig, plan_grasp_depth
from simdata.grasping.planar import PlanarGrasp, axis_frame, grasp_pose_in_camera
from simdata.types import ObjectModel

K = np.array([[600.0, 0, 160], [0, 600.0, 120], [0, 0, 1]])  # 1 px = 1 mm on the table
T_WORLD_CAM = np.diag([1.0, -1.0, -1.0, 1.0])  # straight down from 0.6 m: x right, y down
T_WORLD_CAM[2, 3] = 0.6
LOW = (0.04, 0.04, 0.06)    # the object: 4 cm across the grasp, 6 cm high
TALL = (0.12, 0.06, 0.15)   # its neighbour, 15 cm high, 2 mm away along world +y


def _box(extents, centre_xy):
    T = np.eye(4)
    T[:3, 3] = [*centre_xy, extents[2] / 2]
    return trimesh.creation.box(extents=extents), T


def _depth(objects) -> np.ndarray:
    """(240, 320) metres along the optical axis, ray-cast from the camera onto the boxes and a
    table top at z = 0."""
    table = trimesh.creation.box(extents=(2, 2, 0.02))
    table.apply_translation((0, 0, -0.01))
    scene = trimesh.util.concatenate([table] + [m.copy().apply_transform(T) for m, T in objects])
    vs, us = np.mgrid[0:240, 0:320]
    rays = np.stack([(us.ravel() - K[0, 2]) / K[0, 0], (vs.ravel() - K[1, 2]) / K[1, 1],
                     np.ones(us.size)], 1)
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    dist, _ = ray_first_hits(scene.triangles, np.zeros_like(rays) + T_WORLD_CAM[:3, 3],
                             rays @ T_WORLD_CAM[:3, :3].T, 0.0)
    depth = np.where(np.isfinite(dist), dist * rays[:, 2], 0.0)
    return depth.reshape(240, 320).astype(np.float32)


def _models(objects):
    return [(ObjectModel(obj_id=i + 1, name=f"box{i}", mesh=m, source=Path("<mesh>")), T)
            for i, (m, T) in enumerate(objects)]


def _floor(shape):
    return np.full(shape, 0.6, np.float32)  # the table, straight on


def test_upright_agrees_with_the_image_check_and_tilts_clear_a_tall_neighbour():
    gripper, cfg = GripperConfig(), DepthCheckConfig()
    low = _box(LOW, (0.0, 0.0))
    g = PlanarGrasp(160.0, 120.0, 0.0, 0.04 * K[0, 0] / 0.54, 20.0)  # closing along x, at its top
    alone = _depth([low])
    assert alone[120, 160] == pytest.approx(0.54, abs=1e-6)
    # along the optical axis, the point-cloud check puts a lone box's grasp where the image check does
    z, opening = plan_grasp_depth(alone, g, K, gripper, cfg, table_z=0.6)
    T, opening2 = plan_grasp_pose(alone, g, K, gripper, [axis_frame(0.0)], cfg, floor=_floor(alone.shape))
    assert opening2 == pytest.approx(opening)
    assert T[:3, 3] == pytest.approx(grasp_pose_in_camera(g, z, K)[0][:3, 3], abs=1e-3)
    assert z + gripper.finger_length / 2 == pytest.approx(0.54 + cfg.reach * gripper.finger_length)

    tall = _box(TALL, (0.0, 0.022 + TALL[1] / 2))
    depth = _depth([low, tall])
    # upright, the palm (5 cm across the fingers) would land on the tall box: both checks refuse
    assert plan_grasp_depth(depth, g, K, gripper, cfg, table_z=0.6) is None
    assert plan_grasp_pose(depth, g, K, gripper, [axis_frame(0.0)], cfg, floor=_floor(depth.shape)) is None
    # leaning towards the neighbour is refused too; leaning away, the palm clears it
    toward, away = tilted(axis_frame(0.0), "x", -15), tilted(axis_frame(0.0), "x", 15)
    assert plan_grasp_pose(depth, g, K, gripper, [toward], cfg, floor=_floor(depth.shape)) is None
    T, opening = plan_grasp_pose(depth, g, K, gripper, [toward, away], cfg, floor=_floor(depth.shape))
    assert T[:3, :3] == pytest.approx(away)
    T_world = T_WORLD_CAM @ T
    assert T_world[:3, 2] @ np.array([0, 0, -1.0]) == pytest.approx(np.cos(np.radians(15)))
    assert T_world[1, 2] > 0  # coming from the side away from the tall box: the palm leans off it

    # in pybullet: the accepted pose is free and lifts the box; upright at that depth, the palm hits
    objects = _models([low, tall])
    r = try_grasp(objects, T_world, gripper, search_depth=False, opening_m=opening)
    assert r["collision_free"] and r["success"] and r["object"] == 0, r
    upright = T_WORLD_CAM @ grasp_pose_in_camera(g, T[2, 3], K)[0]
    assert not try_grasp(objects, upright, gripper, search_depth=False, opening_m=opening)["collision_free"]


def test_hidden_flanks_are_solid(monkeypatch):
    """A tilted finger may not pass into what the camera cannot see. Beside a 10 cm block, a
    grasp leaning 30 degrees along its closing axis would put a finger into the block's flank
    under its top, where no reading lies: the columns under the readings keep it out, and
    pybullet agrees. Readings taken as points alone let it in."""
    import simdata.grasping.cloud_check as cloud_check

    gripper, cfg = GripperConfig(), DepthCheckConfig()
    low, block = _box(LOW, (0.0, 0.0)), _box((0.04, 0.1, 0.10), (0.07, 0.0))  # 5 cm apart
    objects = _models([low, block])
    depth = _depth([low, block])
    g = PlanarGrasp(160.0, 120.0, 0.0, 0.04 * K[0, 0] / 0.54, 20.0)
    frames = [tilted(axis_frame(0.0), "y", 30)]
    T, opening = plan_grasp_pose(depth, g, K, gripper, frames, cfg, floor=_floor(depth.shape))
    assert try_grasp(objects, T_WORLD_CAM @ T, gripper, search_depth=False, opening_m=opening)["collision_free"]

    points_only = cloud_check.local_cloud
    monkeypatch.setattr(cloud_check, "local_cloud", lambda *a, **k: (points_only(*a, **k)[0],) * 2)
    T, opening = plan_grasp_pose(depth, g, K, gripper, frames, cfg, floor=_floor(depth.shape))
    assert not try_grasp(objects, T_WORLD_CAM @ T, gripper, search_depth=False,
                         opening_m=opening)["collision_free"]


def test_fingers_outside_the_image_are_not_executable():
    """What the camera does not see may be in the way: a grasp whose finger would land outside
    the image is refused by both checks; turned to close within it, it passes."""
    gripper, cfg = GripperConfig(), DepthCheckConfig()
    depth = np.full((240, 320), 0.6, np.float32)
    depth[100:140, 0:40] = 0.54  # a 6 cm box at the image's left edge, 3.6 cm along v
    floor = _floor(depth.shape)
    across_u = PlanarGrasp(20.0, 120.0, 0.0, 0.036 * K[0, 0] / 0.54, 20.0)  # a finger 30 px left of u = 0
    across_v = PlanarGrasp(20.0, 120.0, np.pi / 2, 0.036 * K[0, 0] / 0.54, 20.0)
    assert plan_grasp_depth(depth, across_u, K, gripper, cfg, table_z=0.6) is None
    assert plan_grasp_pose(depth, across_u, K, gripper, [axis_frame(0.0)], cfg, floor=floor) is None
    assert plan_grasp_depth(depth, across_v, K, gripper, cfg, table_z=0.6) is not None
    assert plan_grasp_pose(depth, across_v, K, gripper, [axis_frame(np.pi / 2)], cfg, floor=floor) is not None
