"""Pose-estimation metrics as pure, batched torch functions (no module state, no grad needed).

Conventions:
- A pose (R, t) maps model points to the camera: x_cam = R x + t. R: (B,3,3); t: (B,3).
- Lengths are METRES unless a name says ``_mm`` (BOP files store millimetres; the symmetry
  translations from ``simdata.symmetry.symmetry_transforms`` are millimetres and are
  converted by :func:`pad_symmetries`).
- Angles are degrees where a name says ``_deg``.
- Symmetries: for a pose (R, t) and a model-frame symmetry (R_s, t_s), (R R_s, R t_s + t)
  is an equivalent pose (the object looks the same).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from .losses import quaternion_angle_deg

MM_TO_M = 1e-3


def pad_symmetries(per_class: Sequence[tuple[np.ndarray, np.ndarray]]):
    """Stack the symmetry sets of C objects, padded to the largest set size S.

    ``per_class[c]`` = (rotations (S_c,3,3), translations (S_c,3) in MILLIMETRES), identity
    first, as from ``simdata.symmetry.symmetry_transforms``. Returns
    - ``sym_R``: (C,S,3,3) float32 tensor; padding rows are the identity;
    - ``sym_t_m``: (C,S,3) float32 tensor in METRES (converted from mm); padding rows zero;
    - ``valid``: (C,S) bool tensor, False on the padding rows.
    Index them by class label to get per-sample sets: ``sym_R[labels]``, ``valid[labels]``.
    """
    sizes = [len(np.asarray(R).reshape(-1, 3, 3)) for R, _ in per_class]
    C, S = len(per_class), max(sizes, default=1)
    sym_R = torch.eye(3).repeat(C, S, 1, 1)
    sym_t = torch.zeros(C, S, 3)
    valid = torch.zeros(C, S, dtype=torch.bool)
    for c, ((R, t), n) in enumerate(zip(per_class, sizes)):
        sym_R[c, :n] = torch.as_tensor(np.asarray(R, dtype=np.float64).reshape(n, 3, 3))
        sym_t[c, :n] = torch.as_tensor(np.asarray(t, dtype=np.float64).reshape(n, 3) * MM_TO_M)
        valid[c, :n] = True
    return sym_R, sym_t, valid


def _rotation_angle_rad(R_pred: torch.Tensor, R_true: torch.Tensor) -> torch.Tensor:
    """(...,3,3) pairs -> (...) angle of R_true^T R_pred in radians, in [0, pi]; atan2 of
    the sine and cosine parts, accurate at small angles too (unlike a clamped acos)."""
    D = R_true.transpose(-2, -1) @ R_pred
    cos = (D.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    skew = torch.stack([D[..., 2, 1] - D[..., 1, 2], D[..., 0, 2] - D[..., 2, 0],
                        D[..., 1, 0] - D[..., 0, 1]], dim=-1)
    sin = torch.linalg.vector_norm(skew, dim=-1) / 2
    return torch.atan2(sin, cos)


@torch.no_grad()
def rotation_error_deg(R_pred: torch.Tensor, R_true: torch.Tensor) -> torch.Tensor:
    """(B,) angle in degrees, in [0, 180], of the rotation between (B,3,3) R_pred and R_true
    (no symmetries)."""
    return torch.rad2deg(_rotation_angle_rad(R_pred, R_true))


@torch.no_grad()
def symmetric_rotation_error_deg(R_pred: torch.Tensor, R_true: torch.Tensor, sym_R: torch.Tensor,
                                 valid: torch.Tensor) -> torch.Tensor:
    """(B,) min over the valid s of the angle (degrees) between R_pred and R_true @ sym_R[:, s].

    ``sym_R``: (B,S,3,3); ``valid``: (B,S) bool (see :func:`pad_symmetries`). A continuous
    symmetry is given as a sampled set, so for it the result is approximate: it can exceed
    the true error by up to half the sampling step (e.g. 5 degrees for 10-degree steps).
    With only the identity valid it equals :func:`rotation_error_deg`.
    """
    ang = _rotation_angle_rad(R_pred[:, None], R_true[:, None] @ sym_R)  # (B,S)
    ang = ang.masked_fill(~valid.bool(), float("inf"))
    return torch.rad2deg(ang.min(dim=1).values)


@torch.no_grad()
def pixelda_angle_deg(q_pred: torch.Tensor, q_true: torch.Tensor) -> torch.Tensor:
    """(B,) PixelDA's pose metric: 2 acos|q_pred . q_true| in degrees for (B,4) quaternions
    (normalised first; the sign of a quaternion does not matter); no symmetries."""
    return quaternion_angle_deg(q_pred, q_true)


@torch.no_grad()
def translation_error(t_pred: torch.Tensor, t_true: torch.Tensor) -> torch.Tensor:
    """(B,) Euclidean distance ||t_pred - t_true|| of (B,3) translations, in their unit."""
    return torch.linalg.vector_norm(t_pred - t_true, dim=-1)


@torch.no_grad()
def add_error(R_pred: torch.Tensor, t_pred: torch.Tensor, R_true: torch.Tensor, t_true: torch.Tensor,
              points: torch.Tensor) -> torch.Tensor:
    """ADD (Hinterstoisser et al. 2012): (B,) mean_i ||(R_pred x_i + t_pred) - (R_true x_i +
    t_true)|| over the (B,N,3) model points x_i; the unit of the points and t (metres)."""
    diff = points @ (R_pred - R_true).transpose(1, 2) + (t_pred - t_true)[:, None]
    return torch.linalg.vector_norm(diff, dim=-1).mean(1)


@torch.no_grad()
def adds_error(R_pred: torch.Tensor, t_pred: torch.Tensor, R_true: torch.Tensor, t_true: torch.Tensor,
               points: torch.Tensor, chunk: int = 1 << 22) -> torch.Tensor:
    """ADD-S: (B,) mean_i min_j ||(R_pred x_i + t_pred) - (R_true x_j + t_true)|| over the
    (B,N,3) model points; unit of the points (metres). For symmetric objects.

    Computed in the true model frame (same distances, better float32 accuracy far from the
    camera) with ``torch.cdist``, ``chunk`` pairwise distances (about B*rows*N) at a time.
    """
    # R_true^T (R_pred x + t_pred - t_true) against x
    Rt = R_true.transpose(1, 2)
    a = points @ (Rt @ R_pred).transpose(1, 2) + (Rt @ (t_pred - t_true)[..., None]).transpose(1, 2)
    B, N = points.shape[:2]
    rows = max(1, chunk // max(1, B * N))
    mins = [torch.cdist(a[:, i:i + rows], points, compute_mode="donot_use_mm_for_euclid_dist")
            .min(dim=2).values for i in range(0, N, rows)]
    return torch.cat(mins, dim=1).mean(1)


@torch.no_grad()
def add_or_adds(R_pred: torch.Tensor, t_pred: torch.Tensor, R_true: torch.Tensor, t_true: torch.Tensor,
                points: torch.Tensor, symmetric: torch.Tensor) -> torch.Tensor:
    """(B,) ADD(-S), the BOP/LineMOD convention: ADD for the samples whose object is not
    symmetric, ADD-S where ``symmetric`` (B,) bool is True. Unit of the points (metres)."""
    out = add_error(R_pred, t_pred, R_true, t_true, points)
    sym = symmetric.bool()
    if sym.any():
        out[sym] = adds_error(R_pred[sym], t_pred[sym], R_true[sym], t_true[sym], points[sym])
    return out


def recall(errors, thresholds) -> float:
    """Share of samples with error < threshold (per-sample thresholds (B,) or a scalar), e.g.
    ADD(-S) recall with ``thresholds = 0.1 * diameters``. NaN for an empty batch."""
    e = torch.as_tensor(errors, dtype=torch.float64).reshape(-1)
    if e.numel() == 0:
        return float("nan")
    thr = torch.as_tensor(thresholds, dtype=torch.float64)
    return float((e < thr).double().mean())


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64).reshape(-1)


def _round(x: float, digits: int) -> float:
    return float(round(x, digits)) if math.isfinite(x) else float(x)


def pose_summary(rot_err_deg=None, pixelda_angle_deg=None, trans_err_m=None, add_s_err_m=None,
                 diameters_m=None, correct=None) -> dict:
    """Aggregate per-sample pose errors (arrays or tensors of shape (B,)) into a dict.

    Inputs: ``rot_err_deg`` (symmetry-aware rotation error, degrees), ``pixelda_angle_deg``
    (degrees), ``trans_err_m`` (METRES), ``add_s_err_m`` (ADD(-S), METRES), ``diameters_m``
    (object diameters, METRES), ``correct`` (correct class, bool). Any input left None drops
    its keys. Keys: mean_rot_err_deg, median_rot_err_deg, rot_under_5deg, rot_under_10deg,
    rot_under_20deg, mean_trans_err_mm, median_trans_err_mm, add_s_recall_10
    (share with ADD(-S) < 0.1 diameter), pixelda_angle_mean_deg, pixelda_angle_median_deg,
    accuracy. Angles are rounded to 2 decimals, everything else to 4; an empty input gives NaN.
    """
    out: dict = {}

    def stat(fn, v):
        return float(fn(v)) if v.size else float("nan")

    if rot_err_deg is not None:
        r = _np(rot_err_deg)
        out["mean_rot_err_deg"] = _round(stat(np.mean, r), 2)
        out["median_rot_err_deg"] = _round(stat(np.median, r), 2)
        for deg in (5, 10, 20):
            out[f"rot_under_{deg}deg"] = _round(stat(np.mean, r < deg), 4)
    if trans_err_m is not None:
        t_mm = _np(trans_err_m) * 1000.0
        out["mean_trans_err_mm"] = _round(stat(np.mean, t_mm), 4)
        out["median_trans_err_mm"] = _round(stat(np.median, t_mm), 4)
    if add_s_err_m is not None and diameters_m is not None:
        out["add_s_recall_10"] = _round(recall(_np(add_s_err_m), 0.1 * _np(diameters_m)), 4)
    if pixelda_angle_deg is not None:
        p = _np(pixelda_angle_deg)
        out["pixelda_angle_mean_deg"] = _round(stat(np.mean, p), 2)
        out["pixelda_angle_median_deg"] = _round(stat(np.median, p), 2)
    if correct is not None:
        out["accuracy"] = _round(stat(np.mean, _np(correct)), 4)
    return out
