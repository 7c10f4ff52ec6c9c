"""Loss functions as pure tensor maths (shapes in the docstrings; no module state)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_pmse(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked pairwise mean squared error (Bousmalis et al., CVPR 2017, eq. 5).

    For each sample, with d = (x - y) * m over the k = sum(m) masked entries:
        (1/k) ||d||^2 - (1/k^2) (sum d)^2
    i.e. the variance of the difference inside the mask: it penalises changes in the *shape*
    of the foreground, not a constant shift of it. ``x``, ``y``: (B,C,H,W); ``mask``:
    (B,1,H,W) or (B,C,H,W) in {0,1}. Returns the mean over the batch (a scalar).
    """
    m = mask.expand_as(x).to(x.dtype)
    d = (x - y) * m
    k = m.flatten(1).sum(1).clamp_min(1.0)
    sq = d.flatten(1).pow(2).sum(1) / k
    lin = d.flatten(1).sum(1).pow(2) / k.pow(2)
    return (sq - lin).mean()


def quaternion_loss(q_pred: torch.Tensor, q_true: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """log(eps + 1 - |q_pred . q_true|) averaged over the batch; q: (B,4), unit. Zero-ish at
    q_pred = +-q_true (the sign of a quaternion does not matter)."""
    dot = (F.normalize(q_pred, dim=1) * F.normalize(q_true, dim=1)).sum(1).abs()
    return torch.log(eps + 1.0 - dot.clamp(max=1.0)).mean()


def quaternion_angle_deg(q_pred: torch.Tensor, q_true: torch.Tensor) -> torch.Tensor:
    """(B,) angle in degrees of the rotation between two (B,4) unit quaternions."""
    dot = (F.normalize(q_pred, dim=1) * F.normalize(q_true, dim=1)).sum(1).abs().clamp(max=1.0)
    return torch.rad2deg(2.0 * torch.acos(dot))


def gan_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator side of the standard GAN: BCE(real -> 1) + BCE(fake -> 0)."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def gan_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: BCE(fake -> 1)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def lsgan_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN, discriminator: (D(real) - 1)^2 + D(fake)^2, halved."""
    return 0.5 * ((real - 1).pow(2).mean() + fake.pow(2).mean())


def lsgan_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN, generator: (D(fake) - 1)^2, halved."""
    return 0.5 * (fake - 1).pow(2).mean()


def perceptual_l1(feats_a: list[torch.Tensor], feats_b: list[torch.Tensor]) -> torch.Tensor:
    """L1 distance of two lists of activations taken as one concatenated vector (mean over
    all elements of all layers)."""
    total = sum((a - b).abs().sum() for a, b in zip(feats_a, feats_b))
    count = sum(a.numel() for a in feats_a)
    return total / count


def masked_l1(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean |pred - target| over ``valid`` pixels (e.g. depth where the simulator has a
    surface). Shapes (B,1,H,W)."""
    v = valid.to(pred.dtype)
    return ((pred - target).abs() * v).sum() / v.sum().clamp_min(1.0)


def patch_nce(feat_q: torch.Tensor, feat_k: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """PatchNCE (CUT, Park et al. ECCV 2020, eq. 2-3): InfoNCE between patch features.

    ``feat_q``, ``feat_k``: (B,N,C), L2-normalised along C; row n of image b of the query
    (the translated image) and of the key (the input) come from the same position. For each
    query patch, logits = q . k_m / temperature over the N key patches of the *same* image
    (the official ``nce_includes_all_negatives_from_minibatch=False``): the positive is the
    key at the same position (the diagonal), the other N-1 are the negatives; the loss is the
    cross-entropy with the diagonal as the class, averaged over B*N patches (a scalar).
    Equal to the official form (positive first, self-similarity on the negatives' diagonal
    masked to -10) up to exp(-10/T). CUT stops the gradient through the keys: pass
    ``feat_k.detach()``."""
    b, n, _ = feat_q.shape
    logits = torch.bmm(feat_q, feat_k.transpose(1, 2)) / temperature  # (B,N,N)
    target = torch.arange(n, device=feat_q.device).repeat(b)
    return F.cross_entropy(logits.reshape(b * n, n), target)


# --- pose losses (rotation; symmetry-aware) ---------------------------------------------
# Symmetries: ``sym_R`` (B,S,3,3) holds, per sample, the rotations R_s of the object's
# symmetry set in the model frame (identity first), padded to a common S with ``valid``
# (B,S) False on padding rows; (R R_s) is then an equivalent pose for a true rotation R.
# Build it per class with adapt.pose_metrics.pad_symmetries and index by the class labels:
# ``sym_R[labels]``, ``valid[labels]``. Every row needs at least one valid entry.


def _min_over_valid(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(B,S) values -> (B,) minimum over the entries where ``valid`` (B,S) is True."""
    return values.masked_fill(~valid.bool(), float("inf")).min(dim=1).values


def symmetric_rotation_loss(R_pred: torch.Tensor, R_true: torch.Tensor, sym_R: torch.Tensor,
                            valid: torch.Tensor) -> torch.Tensor:
    """Symmetry-aware rotation loss: mean over the batch of
        min over valid s of ||R_pred - R_true @ sym_R[:, s]||_F^2.

    ``R_pred``, ``R_true``: (B,3,3); ``sym_R``: (B,S,3,3); ``valid``: (B,S) bool. Unitless;
    for a rotation error of angle theta the term is 4 (1 - cos theta), so 0 at every
    symmetric equivalent of the truth, 4 at 90 degrees, 8 at 180. Differentiable w.r.t.
    ``R_pred`` (the gradient flows through the closest equivalent).
    """
    targets = R_true[:, None] @ sym_R  # (B,S,3,3)
    d = (R_pred[:, None] - targets).pow(2).sum((-2, -1))  # (B,S)
    return _min_over_valid(d, valid).mean()


def _closest_point_mean_dist(a: torch.Tensor, b: torch.Tensor, eps: float) -> torch.Tensor:
    """(B,N,3), (B,M,3) -> (B,) mean over i of min over j ||a_i - b_j||, via squared
    distances (min before the square root keeps the gradient finite at zero)."""
    sq = (a.pow(2).sum(-1)[:, :, None] + b.pow(2).sum(-1)[:, None, :]
          - 2 * a @ b.transpose(1, 2)).clamp_min(0)
    return sq.min(dim=2).values.clamp_min(eps).sqrt().mean(1)


def point_matching_loss(R_pred: torch.Tensor, R_true: torch.Tensor, points: torch.Tensor,
                        sym_R: torch.Tensor, valid: torch.Tensor, closest: torch.Tensor,
                        eps: float = 1e-12) -> torch.Tensor:
    """Symmetry-aware point matching loss on model points (PoseCNN's ShapeMatch-Loss, the
    DeepIM point matching loss), rotation only (translation is trained separately).

    Per sample, with model points x_i (metres) and Euclidean (L2) distances per point:
    - ``closest`` False: min over valid s of mean_i ||R_pred x_i - R_true R_s x_i||
      (a discrete symmetry set; S = 1 with the identity for an asymmetric object);
    - ``closest`` True: mean_i min_j ||R_pred x_i - R_true x_j|| (the ADD-S form, for
      continuous symmetries, where a sampled set would be too coarse).
    Returns the batch mean in METRES (the points' unit). ``R_pred``, ``R_true``: (B,3,3);
    ``points``: (B,N,3); ``sym_R``: (B,S,3,3); ``valid``: (B,S) bool; ``closest``: (B,)
    bool. Differentiable w.r.t. ``R_pred``; distances are floored at sqrt(eps) so the
    gradient stays finite at an exact match. The closest-point form costs B*N*N memory:
    subsample the points (a few hundred are plenty).
    """
    pred = points @ R_pred.transpose(1, 2)  # (B,N,3)
    truth = points[:, None] @ (R_true[:, None] @ sym_R).transpose(-2, -1)  # (B,S,N,3)
    dist = (pred[:, None] - truth).pow(2).sum(-1).clamp_min(eps).sqrt().mean(-1)  # (B,S)
    per = _min_over_valid(dist, valid)
    closest = closest.bool()
    if closest.any():
        idx = closest.nonzero(as_tuple=True)[0]
        adds = _closest_point_mean_dist(pred[idx], points[idx] @ R_true[idx].transpose(1, 2), eps)
        per = per.index_put((idx,), adds)
    return per.mean()
