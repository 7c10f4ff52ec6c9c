import numpy as np
import pytest

from simdata.transforms import (backproject_depth, invert_transform, look_at, make_transform,
                                matrix_to_quat_xyzw, opencv_to_opengl_camera, project_points,
                                quat_xyzw_to_matrix, random_rotation, transform_points)
from simdata.types import PRIMESENSE


def test_look_at_points_optical_axis_at_target_with_world_up_on_top():
    eye, target = np.array([1.0, 0.5, 0.8]), np.array([0.1, -0.1, 0.0])
    T = look_at(eye, target)
    R = T[:3, :3]
    assert np.allclose(R @ R.T, np.eye(3)) and np.isclose(np.linalg.det(R), 1)
    z = (target - eye) / np.linalg.norm(target - eye)
    assert np.allclose(R[:, 2], z)
    # world +z projects upwards in the image: camera y (down) has a negative z component
    assert R[2, 1] < 0
    # the target projects onto the principal point
    p = transform_points(invert_transform(T), target[None])
    assert np.allclose(project_points(p, PRIMESENSE.K)[0], [PRIMESENSE.cx, PRIMESENSE.cy])


def test_look_at_roll_rotates_about_optical_axis():
    a = look_at([0, -1, 1], [0, 0, 0])
    b = look_at([0, -1, 1], [0, 0, 0], roll_rad=np.pi / 2)
    assert np.allclose(a[:3, 2], b[:3, 2])
    assert np.isclose(np.dot(a[:3, 0], b[:3, 0]), 0, atol=1e-9)


def test_look_at_rejects_coincident_points():
    with pytest.raises(ValueError):
        look_at([0, 0, 1], [0, 0, 1])


def test_opencv_opengl_conversion_flips_y_and_z_and_is_an_involution():
    T = look_at([0.3, 0.2, 1.0], [0, 0, 0])
    G = opencv_to_opengl_camera(T)
    assert np.allclose(G[:3, 2], -T[:3, 2]) and np.allclose(G[:3, 1], -T[:3, 1])
    assert np.allclose(opencv_to_opengl_camera(G), T)


def test_quaternion_round_trip_and_uniform_rotations():
    rng = np.random.default_rng(0)
    for _ in range(50):
        R = random_rotation(rng)
        q = matrix_to_quat_xyzw(R)
        assert np.isclose(np.linalg.norm(q), 1) and q[3] >= 0
        assert np.allclose(quat_xyzw_to_matrix(q), R, atol=1e-9)
    # uniform: the mean rotation matrix of many samples is close to zero
    mean = np.mean([random_rotation(rng) for _ in range(4000)], axis=0)
    assert np.abs(mean).max() < 0.05


def test_project_and_backproject_are_inverse():
    K = PRIMESENSE.K
    depth = np.zeros((480, 640))
    depth[100:110, 200:210] = 0.75
    pts = backproject_depth(depth, K)
    uv = project_points(pts, K)
    v, u = np.nonzero(depth)
    assert np.allclose(uv, np.stack([u, v], 1))
    T = make_transform(random_rotation(np.random.default_rng(1)), [0.1, 0.2, 0.3])
    assert np.allclose(transform_points(invert_transform(T), transform_points(T, pts)), pts)


def test_resized_intrinsics_keep_pixel_centre_convention():
    half = PRIMESENSE.resized(320, 240)
    assert np.isclose(half.fx, PRIMESENSE.fx / 2)
    # pixel-centre coordinates: (cx + 0.5) scales with the image
    assert np.isclose(half.cx + 0.5, (PRIMESENSE.cx + 0.5) / 2)
