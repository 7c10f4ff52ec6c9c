"""Rotation representations, symmetry-aware pose losses and pose metrics, against direct formulas."""
import math

import numpy as np
import pytest
import torch

from adapt.losses import point_matching_loss, symmetric_rotation_loss
from adapt.pose_metrics import (add_error, add_or_adds, adds_error, pad_symmetries, pixelda_angle_deg,
                                pose_summary, recall, rotation_error_deg, symmetric_rotation_error_deg,
                                translation_error)
from adapt.rotations import (geodesic_angle, matrix_to_quat_wxyz, matrix_to_rotation_6d,
                             quat_wxyz_to_matrix, rotation_6d_to_matrix)
from simdata import transforms as T


def rot_axis(axis: str, angle: float, dtype=torch.float64) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    m = {"x": [[1, 0, 0], [0, c, -s], [0, s, c]],
         "y": [[c, 0, s], [0, 1, 0], [-s, 0, c]],
         "z": [[c, -s, 0], [s, c, 0], [0, 0, 1]]}[axis]
    return torch.tensor(m, dtype=dtype)


def random_rotations(n: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    q = torch.randn(n, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return quat_wxyz_to_matrix(q).to(dtype)


def z_set(angles) -> torch.Tensor:
    return torch.stack([rot_axis("z", a) for a in angles])


def assert_rotations(R: torch.Tensor, tol: float):
    eye = torch.eye(3, dtype=R.dtype).expand_as(R)
    assert torch.allclose(R.transpose(-2, -1) @ R, eye, atol=tol)
    assert torch.allclose(torch.linalg.det(R), torch.ones(R.shape[0], dtype=R.dtype), atol=tol)


# --- rotations ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_6d_gives_proper_rotations_even_when_nearly_degenerate(dtype, tol):
    g = torch.Generator().manual_seed(0)
    d6 = torch.randn(64, 6, generator=g, dtype=torch.float64)
    a1 = d6[:, :3]
    nearly = torch.cat([a1, 3 * a1 + 1e-6 * torch.randn(64, 3, generator=g, dtype=torch.float64)], 1)
    exactly = torch.cat([a1, -2 * a1], 1)
    tiny = torch.cat([1e-9 * a1, d6[:, 3:]], 1)
    zeros = torch.zeros(4, 6, dtype=torch.float64)
    for x in (d6, nearly, exactly, tiny, zeros, 1e4 * d6):
        R = rotation_6d_to_matrix(x.to(dtype))
        assert R.dtype == dtype and R.shape == (x.shape[0], 3, 3)
        assert torch.isfinite(R).all()
        assert_rotations(R, tol)
    # the first column keeps the direction of a1
    R = rotation_6d_to_matrix(d6)
    assert torch.allclose(R[:, :, 0], torch.nn.functional.normalize(a1, dim=1))


def test_6d_round_trips_on_rotations_and_gradcheck():
    R = random_rotations(32, seed=1)
    d6 = matrix_to_rotation_6d(R)
    assert d6.shape == (32, 6)
    assert torch.allclose(rotation_6d_to_matrix(d6), R, atol=1e-12)
    # any positive scaling of the columns and any a2 component along a1 do not matter
    skewed = torch.cat([2.5 * d6[:, :3], 0.7 * d6[:, 3:] + 0.3 * d6[:, :3]], 1)
    assert torch.allclose(rotation_6d_to_matrix(skewed), R, atol=1e-12)
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64,
                    requires_grad=True)
    assert torch.autograd.gradcheck(rotation_6d_to_matrix, (x,))


def test_quaternion_matrix_round_trip_and_agreement_with_simdata():
    g = torch.Generator().manual_seed(3)
    q = torch.nn.functional.normalize(torch.randn(200, 4, generator=g, dtype=torch.float64), dim=1)
    # add the awkward ones: 180-degree turns (w = 0) and the identity
    q = torch.cat([q, torch.tensor([[0.0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0.6, 0.8, 0],
                                    [1, 0, 0, 0], [-1, 0, 0, 0]], dtype=torch.float64)])
    R = quat_wxyz_to_matrix(q)
    assert_rotations(R, 1e-12)
    for qi, Ri in zip(q.numpy(), R.numpy()):
        assert np.allclose(T.quat_wxyz_to_matrix(qi), Ri, atol=1e-12)
    back = matrix_to_quat_wxyz(R)
    assert (back[:, 0] >= 0).all()
    assert torch.allclose(back.norm(dim=1), torch.ones(len(q), dtype=q.dtype))
    assert torch.allclose((back * q).sum(1).abs(), torch.ones(len(q), dtype=q.dtype), atol=1e-12)
    assert torch.allclose(quat_wxyz_to_matrix(back), R, atol=1e-12)
    # normalises first; float32 works
    assert torch.allclose(quat_wxyz_to_matrix(5 * q), R, atol=1e-12)
    R32 = R.float()
    assert torch.allclose(quat_wxyz_to_matrix(matrix_to_quat_wxyz(R32)), R32, atol=1e-5)


def test_geodesic_angle():
    R = random_rotations(8, seed=4)
    for ang in (0.0, 0.3, 2.0, math.pi):
        A = R @ rot_axis("y", ang)
        got = geodesic_angle(R, A)
        assert torch.allclose(got, torch.full((8,), ang, dtype=R.dtype), atol=1e-3)
        assert torch.allclose(rotation_error_deg(A, R), torch.full((8,), math.degrees(ang), dtype=R.dtype),
                              atol=1e-6)
    x = R.clone().requires_grad_(True)
    geodesic_angle(x, R).sum().backward()  # at the clamp: finite gradients
    assert torch.isfinite(x.grad).all()


# --- symmetry-aware losses --------------------------------------------------------------

def batch_sym(sym: torch.Tensor, B: int):
    return sym.expand(B, *sym.shape), torch.ones(B, sym.shape[0], dtype=torch.bool)


@pytest.mark.parametrize("sym", [z_set([0.0, math.pi]), z_set(np.arange(36) * 2 * math.pi / 36)],
                         ids=["180z", "continuous-z"])
def test_symmetric_rotation_loss_zero_at_equivalents_large_when_wrong(sym):
    B = 4
    R_true = random_rotations(B, seed=5)
    sR, valid = batch_sym(sym, B)
    for s in sym:
        assert symmetric_rotation_loss(R_true @ s, R_true, sR, valid).item() == pytest.approx(0, abs=1e-20)
    wrong = R_true @ rot_axis("x", math.pi / 2)
    assert symmetric_rotation_loss(wrong, R_true, sR, valid).item() == pytest.approx(4.0)
    # padding entries are ignored even if they would match
    valid_first = valid.clone()
    valid_first[:, 1:] = False
    half_turn = sym[len(sym) // 2]  # 180 degrees about z in both sets
    assert symmetric_rotation_loss(R_true @ half_turn, R_true, sR, valid_first).item() == pytest.approx(8.0)


def test_symmetric_rotation_loss_gradcheck():
    B = 3
    R_true = random_rotations(B, seed=6)
    sR, valid = batch_sym(z_set([0.0, 2.0, 4.0]), B)
    valid = valid.clone()
    valid[0, 2] = False
    x = torch.randn(B, 3, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64,
                    requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: symmetric_rotation_loss(a, R_true, sR, valid), (x,))
    d6 = torch.randn(B, 6, generator=torch.Generator().manual_seed(8), dtype=torch.float64,
                     requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a: symmetric_rotation_loss(rotation_6d_to_matrix(a), R_true, sR, valid), (d6,))


def cylinder_points(n_around: int = 180, heights=(-0.04, 0.0, 0.04), radius: float = 0.03,
                    dtype=torch.float64) -> torch.Tensor:
    """Points on a cylinder about z, metres."""
    a = torch.arange(n_around, dtype=dtype) * 2 * math.pi / n_around
    ring = torch.stack([radius * a.cos(), radius * a.sin(), torch.zeros_like(a)], 1)
    return torch.cat([ring + torch.tensor([0, 0, h], dtype=dtype) for h in heights])


def test_point_matching_loss_symmetric_equivalents_and_wrong_pose():
    B = 3
    pts = cylinder_points().expand(B, -1, -1)
    R_true = random_rotations(B, seed=9)
    sym = z_set(np.arange(12) * 2 * math.pi / 12)  # coarse sampled continuous symmetry
    sR, valid = batch_sym(sym, B)
    off_grid = R_true @ rot_axis("z", 0.123)  # not in the sampled set
    closest = torch.ones(B, dtype=torch.bool)
    none = torch.zeros(B, dtype=torch.bool)
    # closest points: only off by the ring's point spacing (2 degrees at 3 cm: < 0.6 mm)
    assert point_matching_loss(off_grid, R_true, pts, sR, valid, closest).item() < 6e-4
    # the sampled-set form is exact on the set but only as fine as its step off it
    assert point_matching_loss(R_true @ sym[5], R_true, pts, sR, valid, none).item() < 1e-5
    assert point_matching_loss(off_grid, R_true, pts, sR, valid, none).item() > 1e-3
    wrong = R_true @ rot_axis("x", math.pi / 2)
    for flag in (closest, none):
        assert point_matching_loss(wrong, R_true, pts, sR, valid, flag).item() > 0.01
    # mixed batch: per-sample choice, and the value is the batch mean
    mixed = torch.tensor([True, False, True])
    per = [point_matching_loss(off_grid[i:i + 1], R_true[i:i + 1], pts[i:i + 1], sR[i:i + 1],
                               valid[i:i + 1], mixed[i:i + 1]).item() for i in range(B)]
    got = point_matching_loss(off_grid, R_true, pts, sR, valid, mixed).item()
    assert got == pytest.approx(np.mean(per), rel=1e-9)
    # finite gradients w.r.t. R_pred, also at an exact match
    for R_pred in (off_grid, R_true.clone()):
        x = R_pred.clone().requires_grad_(True)
        point_matching_loss(x, R_true, pts, sR, valid, mixed).backward()
        assert torch.isfinite(x.grad).all()
    # gradcheck on a small asymmetric point set
    small = torch.randn(B, 5, 3, generator=torch.Generator().manual_seed(10), dtype=torch.float64) * 0.05
    x = random_rotations(B, seed=11).requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a: point_matching_loss(a, R_true, small, sR, valid, mixed), (x,))


# --- metrics ---------------------------------------------------------------------------

def test_add_and_adds_on_known_offsets_and_recall():
    B = 2
    pts = cylinder_points().expand(B, -1, -1)
    R = random_rotations(B, seed=12)
    t = torch.tensor([[0.1, -0.05, 0.8], [0.0, 0.02, 1.2]], dtype=torch.float64)
    shift = t + torch.tensor([0.0, 0.01, 0.0], dtype=torch.float64)  # 1 cm
    assert torch.allclose(add_error(R, shift, R, t, pts), torch.full((B,), 0.01, dtype=torch.float64),
                          atol=1e-12)
    # ADD-S <= ADD; along the cylinder axis (rings 4 cm apart) the closest point is the same one
    assert (adds_error(R, shift, R, t, pts) <= 0.01 + 1e-12).all()
    along = t + R[:, :, 2] * 0.01
    assert torch.allclose(adds_error(R, along, R, t, pts), torch.full((B,), 0.01, dtype=torch.float64),
                          atol=1e-12)
    assert torch.allclose(translation_error(shift, t), torch.full((B,), 0.01, dtype=torch.float64))
    # rotated by its symmetry (about the cylinder axis, by a ring step): ADD-S 0, ADD not
    turned = R @ rot_axis("z", 2 * math.pi / 180 * 7)
    assert adds_error(turned, t, R, t, pts).max().item() < 1e-9
    assert add_error(turned, t, R, t, pts).min().item() > 0.005
    sym = torch.tensor([True, False])
    both = add_or_adds(turned, t, R, t, pts, sym)
    assert both[0].item() < 1e-9 and both[1].item() > 0.005
    # float32 stays accurate a metre from the camera
    assert adds_error(turned.float(), t.float(), R.float(), t.float(), pts.float()).max().item() < 1e-5
    # chunking does not change the result
    assert torch.allclose(adds_error(turned, shift, R, t, pts, chunk=100), adds_error(turned, shift, R, t, pts))
    # recall at 10 % of the diameter
    diam = torch.tensor([0.05, 0.2, 0.1, 0.3])
    errs = torch.tensor([0.004, 0.03, 0.011, 0.01])
    assert recall(errs, 0.1 * diam) == pytest.approx(0.5)  # 0.004 < 0.005, 0.01 < 0.03
    assert math.isnan(recall(torch.zeros(0), 0.1))


def test_symmetric_rotation_error_deg():
    B = 4
    R_true = random_rotations(B, seed=13)
    sym = z_set([0.0, math.pi / 2, math.pi, 3 * math.pi / 2])
    sR, valid = batch_sym(sym, B)
    for s in sym:
        assert symmetric_rotation_error_deg(R_true @ s, R_true, sR, valid).max().item() < 1e-6
    R_pred = random_rotations(B, seed=14)
    only_id = valid.clone()
    only_id[:, 1:] = False
    plain = rotation_error_deg(R_pred, R_true)
    assert torch.allclose(symmetric_rotation_error_deg(R_pred, R_true, sR, only_id), plain)
    eye = torch.eye(3, dtype=torch.float64).expand(B, 1, 3, 3)
    assert torch.allclose(symmetric_rotation_error_deg(R_pred, R_true, eye, torch.ones(B, 1, dtype=torch.bool)),
                          plain)
    assert (symmetric_rotation_error_deg(R_pred, R_true, sR, valid) <= plain + 1e-9).all()
    # 30 degrees about z off a 90-degree symmetry: 30; 60 off it: 30 too
    for ang in (math.pi / 6, math.pi / 3):
        err = symmetric_rotation_error_deg(R_true @ rot_axis("z", ang), R_true, sR, valid)
        assert torch.allclose(err, torch.full((B,), 30.0, dtype=torch.float64))
    # pixelda angle: quaternions, sign-free
    q = matrix_to_quat_wxyz(R_pred)
    assert torch.allclose(pixelda_angle_deg(q, -matrix_to_quat_wxyz(R_true)), plain, atol=1e-6)


def test_pad_symmetries():
    z180 = (np.stack([np.eye(3), np.diag([-1.0, -1.0, 1.0])]), np.array([[0, 0, 0], [0, 0, 20.0]]))
    none = (np.eye(3)[None], np.zeros((1, 3)))
    four = (np.stack([T.quat_wxyz_to_matrix([math.cos(a / 2), 0, 0, math.sin(a / 2)])
                      for a in np.arange(4) * math.pi / 2]), np.zeros((4, 3)))
    sym_R, sym_t, valid = pad_symmetries([z180, none, four])
    assert sym_R.shape == (3, 4, 3, 3) and sym_t.shape == (3, 4, 3) and valid.shape == (3, 4)
    assert sym_R.dtype == torch.float32 and sym_t.dtype == torch.float32 and valid.dtype == torch.bool
    assert valid.sum(1).tolist() == [2, 1, 4]
    assert torch.equal(sym_R[0, 2:], torch.eye(3).expand(2, 3, 3))
    assert torch.equal(sym_R[1, 1:], torch.eye(3).expand(3, 3, 3))
    assert torch.allclose(sym_R[2].double(), torch.as_tensor(four[0]), atol=1e-7)
    assert sym_t[0, 1].tolist() == pytest.approx([0, 0, 0.02])  # mm -> m
    assert (sym_t[1] == 0).all()
    # per-sample sets by label plug into the loss
    labels = torch.tensor([2, 0])
    R_true = random_rotations(2, seed=15).float()
    R_pred = R_true @ sym_R[labels, 1]
    assert symmetric_rotation_loss(R_pred, R_true, sym_R[labels], valid[labels]).item() < 1e-10


def test_pose_summary():
    out = pose_summary(rot_err_deg=np.array([1.0, 7.0, 15.0, 40.0]),
                       pixelda_angle_deg=torch.tensor([2.0, 4.0, 6.0, 100.0]),
                       trans_err_m=np.array([0.001, 0.002, 0.003, 0.010]),
                       add_s_err_m=np.array([0.001, 0.02, 0.005, 0.1]),
                       diameters_m=np.array([0.1, 0.1, 0.1, 0.1]),
                       correct=np.array([True, True, False, True]))
    assert out == {
        "mean_rot_err_deg": 15.75, "median_rot_err_deg": 11.0,
        "rot_under_5deg": 0.25, "rot_under_10deg": 0.5, "rot_under_20deg": 0.75,
        "mean_trans_err_mm": 4.0, "median_trans_err_mm": 2.5,
        "add_s_recall_10": 0.5,
        "pixelda_angle_mean_deg": 28.0, "pixelda_angle_median_deg": 5.0,
        "accuracy": 0.75,
    }
    assert pose_summary(rot_err_deg=[1 / 3])["mean_rot_err_deg"] == 0.33
