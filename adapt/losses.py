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
