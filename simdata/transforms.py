"""Every geometric convention in one place.

Conventions used throughout simdata:
- 4x4 homogeneous transforms are named ``T_a_b``: they map points from frame b to frame a.
- Cameras follow OpenCV/BOP: x right, y down, z forward. pyrender (OpenGL) cameras look down
  -z with y up; :func:`opencv_to_opengl_camera` converts a camera pose between the two.
- Lengths are metres unless a name says ``_mm``. BOP files store millimetres.
- Pixel coordinates follow OpenCV: the centre of pixel (u, v) is at integer (u, v).
"""
from __future__ import annotations

import numpy as np

M_TO_MM = 1000.0


def depth_m_to_mm_u16(depth_m: np.ndarray) -> np.ndarray:
    """(H,W) float metres (0, NaN or inf = no reading) -> (H,W) uint16 millimetres as depth
    PNGs and 16UC1 images hold them; 0 = no reading, clipped at 65.535 m."""
    d = np.nan_to_num(np.asarray(depth_m, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(np.round(d * M_TO_MM), 0, 65535).astype(np.uint16)

# Flips y and z: OpenCV camera axes <-> OpenGL camera axes (an involution).
_CV_GL = np.diag([1.0, -1.0, -1.0, 1.0])


def make_transform(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(3,3) rotation and (3,) translation -> (4,4) homogeneous transform."""
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = t
    return T


def invert_transform(T: np.ndarray) -> np.ndarray:
    """Inverse of a rigid (4,4) transform, without a general matrix inverse."""
    R, t = T[:3, :3], T[:3, 3]
    out = np.eye(4)
    out[:3, :3] = R.T
    out[:3, 3] = -R.T @ t
    return out


def opencv_to_opengl_camera(T_world_cam_cv: np.ndarray) -> np.ndarray:
    """Camera pose with OpenCV axes -> the same camera with OpenGL axes (both camera-to-world)."""
    return T_world_cam_cv @ _CV_GL


def look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, 0.0, 1.0), roll_rad: float = 0.0):
    """OpenCV camera pose T_world_cam at ``eye`` whose optical axis (+z) points at ``target``.

    ``up`` is the world direction that appears upwards in the image (image -y); ``roll_rad``
    rotates the camera about its optical axis afterwards. Returns (4,4), metres.
    """
    eye = np.asarray(eye, float)
    z = np.asarray(target, float) - eye
    norm = np.linalg.norm(z)
    if norm < 1e-9:
        raise ValueError("look_at: eye and target coincide")
    z /= norm
    up = np.asarray(up, float)
    x = np.cross(z, up)  # right = forward x up, with y pointing down
    if np.linalg.norm(x) < 1e-6:  # looking straight along `up`: pick any right vector
        x = np.cross(z, np.array([0.0, 1.0, 0.0]) if abs(z[1]) < 0.9 else np.array([1.0, 0, 0]))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z], axis=1)
    c, s = np.cos(roll_rad), np.sin(roll_rad)
    R_roll = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return make_transform(R @ R_roll, eye)


def transform_points(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (4,4) transform to (N,3) points."""
    return points @ T[:3, :3].T + T[:3, 3]


def project_points(points_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pinhole projection of (N,3) camera-frame points (z > 0) with (3,3) K -> (N,2) pixels."""
    z = points_cam[:, 2:3]
    return (points_cam[:, :2] / z) * np.array([K[0, 0], K[1, 1]]) + np.array([K[0, 2], K[1, 2]])


def backproject_depth(depth_m: np.ndarray, K: np.ndarray, mask: np.ndarray | None = None):
    """(H,W) metric z-depth -> (N,3) camera-frame points of the pixels in ``mask`` with depth > 0."""
    valid = depth_m > 0
    if mask is not None:
        valid &= mask
    v, u = np.nonzero(valid)
    z = depth_m[v, u]
    x = (u - K[0, 2]) * z / K[0, 0]
    y = (v - K[1, 2]) * z / K[1, 1]
    return np.stack([x, y, z], axis=1)


def rotation_about(axis, angle_rad: float) -> np.ndarray:
    """(3,3) rotation by ``angle_rad`` about ``axis`` (normalised here; right hand, Rodrigues)."""
    a = np.asarray(axis, float)
    a = a / np.linalg.norm(a)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle_rad) * K + (1 - np.cos(angle_rad)) * K @ K


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniformly distributed (3,3) rotation (Shoemake's method via a unit quaternion)."""
    u1, u2, u3 = rng.random(3)
    q = np.array([
        np.sqrt(1 - u1) * np.sin(2 * np.pi * u2),
        np.sqrt(1 - u1) * np.cos(2 * np.pi * u2),
        np.sqrt(u1) * np.sin(2 * np.pi * u3),
        np.sqrt(u1) * np.cos(2 * np.pi * u3),
    ])  # x, y, z, w
    return quat_xyzw_to_matrix(q)


def quat_xyzw_to_matrix(q) -> np.ndarray:
    """Unit quaternion (x, y, z, w) — pybullet's order — to a (3,3) rotation matrix."""
    x, y, z, w = np.asarray(q, float) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quat_xyzw(R: np.ndarray) -> np.ndarray:
    """(3,3) rotation -> unit quaternion (x, y, z, w) with w >= 0."""
    m = np.asarray(R, float)
    tr = np.trace(m)
    if tr > 0:
        s = np.sqrt(tr + 1.0) * 2
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
    q = np.array(q) / np.linalg.norm(q)
    return q if q[3] >= 0 else -q


def matrix_to_quat_wxyz(R: np.ndarray) -> np.ndarray:
    """(3,3) rotation -> unit quaternion (w, x, y, z), sign fixed so that w > 0, or when w == 0
    the first non-zero of x, y, z is positive (q and -q are the same rotation)."""
    x, y, z, w = matrix_to_quat_xyzw(R)
    q = np.array([w, x, y, z])
    nz = q[np.abs(q) > 1e-12]
    return q if nz[0] > 0 else -q


def quat_wxyz_to_matrix(q) -> np.ndarray:
    """Unit quaternion (w, x, y, z) -> (3,3) rotation."""
    w, x, y, z = q
    return quat_xyzw_to_matrix([x, y, z, w])
