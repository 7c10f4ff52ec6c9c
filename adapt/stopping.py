"""Early stopping for GAN training (SPIGAN, Lee et al. 2019): stop when the discriminator
loss is significantly and consistently lower than the generator loss."""
from __future__ import annotations


def discriminator_wins(d_losses: list[float], g_losses: list[float], window: int, margin: float,
                       fraction: float = 0.9) -> bool:
    """True when, over the last ``window`` logged values, the discriminator loss was below
    ``margin`` x the generator loss in at least ``fraction`` of them."""
    if window < 1 or len(d_losses) < window or len(g_losses) < window:
        return False
    pairs = list(zip(d_losses[-window:], g_losses[-window:]))
    return sum(d < margin * g for d, g in pairs) >= fraction * window
