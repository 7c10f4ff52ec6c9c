"""Rotation representations as pure, batched torch functions (no module state).

Conventions (the same as :mod:`simdata.transforms`):
- A rotation matrix ``R`` maps model-frame vectors to camera-frame vectors: ``x_cam = R @ x``.
- Quaternions are (w, x, y, z), unit norm; q and -q are the same rotation.
- Angles are radians unless a name says ``_deg``.

Every function accepts any leading batch shape ``(...)``; shapes below say ``(B,...)`` for
brevity. All work in float32 and float64 and are differentiable where noted.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _perpendicular_unit(v: torch.Tensor) -> torch.Tensor:
    """(...,3) unit vectors -> (...,3) unit vectors perpendicular to them (any choice): the
    cross product with the coordinate axis least aligned with ``v``."""
    axis = F.one_hot(v.abs().argmin(-1), 3).to(v.dtype)
    return F.normalize(torch.linalg.cross(v, axis, dim=-1), dim=-1)


def _safe_normalize(v: torch.Tensor, fallback: torch.Tensor, eps: float) -> torch.Tensor:
    """v / ||v|| along the last dim, or ``fallback`` where ||v|| <= eps (finite gradients)."""
    n = torch.linalg.vector_norm(v, dim=-1, keepdim=True)
    return torch.where(n > eps, v / n.clamp_min(eps), fallback)


def rotation_6d_to_matrix(d6: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Continuous 6D rotation representation -> rotation matrix (Zhou et al., CVPR 2019).

    ``d6``: (B,6) = [a1 (3), a2 (3)], the (unnormalised) FIRST TWO COLUMNS of R. Gram-Schmidt:
    b1 = a1/|a1|, b2 = normalise(a2 - (b1.a2) b1), b3 = b1 x b2; returns (B,3,3) with
    columns [b1 b2 b3], a proper rotation (orthonormal, det +1). Differentiable.

    Numerically safe: the projection is done twice ("twice is enough"), so b2 stays
    orthogonal to b1 when a2 is nearly parallel to a1; where |a1| <= eps, b1 falls back to
    the x axis, and where a2 is exactly parallel to a1 (or zero) b2 falls back to some unit
    vector perpendicular to b1.
    """
    a1, a2 = d6[..., :3], d6[..., 3:]
    ex = torch.zeros_like(a1)
    ex[..., 0] = 1.0
    b1 = _safe_normalize(a1, ex, eps)
    u = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    u = u - (b1 * u).sum(-1, keepdim=True) * b1
    b2 = _safe_normalize(u, _perpendicular_unit(b1), eps)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rotation_6d(R: torch.Tensor) -> torch.Tensor:
    """(B,3,3) rotation -> (B,6) = [first column, second column]; the inverse of
    :func:`rotation_6d_to_matrix` on rotations."""
    return torch.cat([R[..., :, 0], R[..., :, 1]], dim=-1)


def quat_wxyz_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """(B,4) quaternion (w, x, y, z) -> (B,3,3) rotation. ``q`` is normalised first, so any
    non-zero quaternion works (a network output, for instance). Differentiable."""
    w, x, y, z = F.normalize(q, dim=-1).unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]
    return torch.stack(rows, dim=-1).reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat_wxyz(R: torch.Tensor) -> torch.Tensor:
    """(B,3,3) rotation -> (B,4) unit quaternion (w, x, y, z) with w >= 0.

    Shepperd's method: of the four ways to read the quaternion off R (dividing by 4w, 4x,
    4y or 4z), each sample uses the one with the largest divisor, so it is accurate for
    every rotation, including 180-degree ones (w = 0).
    """
    m = R
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # |2w|, |2x|, |2y|, |2z|
    q_abs = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22,
                         1 - m00 + m11 - m22, 1 - m00 - m11 + m22], dim=-1).clamp_min(0).sqrt()
    d21, d02, d10 = m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]
    s10, s20, s21 = m[..., 1, 0] + m[..., 0, 1], m[..., 2, 0] + m[..., 0, 2], m[..., 2, 1] + m[..., 1, 2]
    # row i = 4 * q_i * (w, x, y, z)
    cands = torch.stack([
        torch.stack([q_abs[..., 0] ** 2, d21, d02, d10], -1),
        torch.stack([d21, q_abs[..., 1] ** 2, s10, s20], -1),
        torch.stack([d02, s10, q_abs[..., 2] ** 2, s21], -1),
        torch.stack([d10, s20, s21, q_abs[..., 3] ** 2], -1),
    ], dim=-2)
    cands = cands / (2 * q_abs[..., None].clamp_min(0.1))
    pick = F.one_hot(q_abs.argmax(-1), 4).to(R.dtype)
    q = F.normalize((cands * pick[..., None]).sum(-2), dim=-1)
    return torch.where(q[..., :1] < 0, -q, q)


def geodesic_angle(R1: torch.Tensor, R2: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """(B,) angle in radians, in [0, pi], of the rotation R1^T R2 between two (B,3,3)
    rotations: acos((trace(R1^T R2) - 1) / 2).

    The cosine is clamped to [-1 + eps, 1 - eps] so that the gradient stays finite at 0 and
    pi; the price is an error of about sqrt(2 eps) rad (4.5e-4 rad for eps = 1e-7) near 0
    and pi. Use ``eps=0`` for evaluation without gradients, or
    :func:`adapt.pose_metrics.rotation_error_deg`, which is accurate at small angles.
    """
    cos = ((R1 * R2).sum((-2, -1)) - 1) / 2
    return torch.acos(cos.clamp(-1 + eps, 1 - eps))
