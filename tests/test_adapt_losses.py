"""Losses and net shapes of adapt, against direct formulas."""
import math

import numpy as np
import pytest
import torch

from adapt.losses import masked_pmse, quaternion_angle_deg, quaternion_loss
from adapt.nets import build
from adapt.nets.discriminators import pixelda_strided_layers


def pmse_direct(x, y, m):
    """The paper's formula, one sample at a time, in numpy."""
    out = []
    for xi, yi, mi in zip(x, y, m):
        mi = np.broadcast_to(mi, xi.shape)
        d = ((xi - yi) * mi).ravel()
        k = mi.sum()
        out.append(d @ d / k - d.sum() ** 2 / k ** 2)
    return float(np.mean(out))


def test_masked_pmse_matches_the_formula_and_ignores_a_constant_shift():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 8, 8, generator=g, dtype=torch.float64)
    y = torch.rand(3, 3, 8, 8, generator=g, dtype=torch.float64)
    m = (torch.rand(3, 1, 8, 8, generator=g) > 0.5).double()
    assert masked_pmse(x, y, m).item() == pytest.approx(pmse_direct(x.numpy(), y.numpy(), m.numpy()))
    shifted = x + 0.37 * m  # a constant change of the foreground costs nothing
    assert masked_pmse(x, shifted, m).item() == pytest.approx(0.0, abs=1e-12)
    # changes outside the mask cost nothing either; inside, a non-constant one does
    assert masked_pmse(x, x + 5 * (1 - m), m).item() == pytest.approx(0.0, abs=1e-12)
    assert masked_pmse(x, x + torch.rand_like(x) * m, m).item() > 1e-3
    assert torch.isfinite(masked_pmse(x, y, torch.zeros_like(m)))
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: masked_pmse(a, y, m), (x,))


def test_quaternion_loss_and_angle_error():
    q = torch.nn.functional.normalize(torch.randn(16, 4, generator=torch.Generator().manual_seed(1)), dim=1)
    assert torch.allclose(quaternion_loss(q, q), quaternion_loss(q, -q))
    assert quaternion_loss(q, q).item() == pytest.approx(math.log(1e-4), abs=1e-3)
    assert quaternion_loss(q, q.roll(1, 0)).item() > quaternion_loss(q, q).item() + 1
    z90 = torch.tensor([[math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4)]])
    ident = torch.tensor([[1.0, 0, 0, 0]])
    assert quaternion_angle_deg(z90, ident).item() == pytest.approx(90, abs=1e-3)
    assert quaternion_angle_deg(ident, -ident).item() == pytest.approx(0, abs=1e-2)


@pytest.mark.parametrize("size, layers", [(64, 4), (32, 3), (28, 3), (4, 0), (128, 5)])
def test_discriminator_halves_until_four_or_less(size, layers):
    assert pixelda_strided_layers(size) == layers
    d = build("pixelda-discriminator", channels=4, size=size, filters=8)
    assert d.out_hw <= 4 and (layers == 0 or d.out_hw > 2)
    assert d(torch.randn(2, 4, size, size)).shape == (2,)


def test_generator_and_task_net_shapes():
    g = build("pixelda-generator", channels=4, size=32, filters=8, blocks=2)
    x = torch.rand(3, 4, 32, 32) * 2 - 1
    y = g(x, g.sample_noise(3, "cpu"))
    assert y.shape == x.shape and y.abs().max() <= 1
    for rotation in ("6d", "quat"):
        t = build("pose-net", channels=3, size=32, classes=5, width=8, rotation=rotation)
        logits, R, code = t(torch.rand(2, 3, 32, 32))
        assert logits.shape == (2, 5) and R.shape == (2, 3, 3) and code.shape == (2, 3)
        eye = torch.eye(3).expand(2, 3, 3)
        assert torch.allclose(R @ R.transpose(1, 2), eye, atol=1e-5)
        assert torch.allclose(torch.linalg.det(R), torch.ones(2), atol=1e-5)
    with pytest.raises(KeyError, match="unknown net"):
        build("unet-9000")
