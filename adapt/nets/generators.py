"""Generators: image (+ noise) -> image of the same size and channels, tanh output."""
from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus the input."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x):
        return x + self.body(x)


class PixelDAGenerator(nn.Module):
    """PixelDA generator G(x, z) (Bousmalis et al. 2017): residual blocks at full resolution.

    The noise z (B, noise_dim), U(-1,1), is projected by a linear layer to one extra input
    channel of size H x W. Input x: (B, channels, size, size) in [-1,1]; output the same.
    """

    def __init__(self, channels: int = 3, size: int = 64, noise_dim: int = 10, filters: int = 64,
                 blocks: int = 6):
        super().__init__()
        self.channels, self.size, self.noise_dim = channels, size, noise_dim
        self.noise = nn.Linear(noise_dim, size * size)
        self.head = nn.Sequential(nn.Conv2d(channels + 1, filters, 3, padding=1), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*[ResidualBlock(filters) for _ in range(blocks)])
        self.tail = nn.Conv2d(filters, channels, 3, padding=1)

    def example_inputs(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        """(image, noise): the noise is an explicit input, so an export is deterministic."""
        return (torch.rand(batch, self.channels, self.size, self.size) * 2 - 1,
                torch.rand(batch, self.noise_dim) * 2 - 1)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        zc = self.noise(z).view(-1, 1, self.size, self.size)
        return torch.tanh(self.tail(self.blocks(self.head(torch.cat([x, zc], 1)))))

    def sample_noise(self, batch: int, device, generator: torch.Generator | None = None):
        return torch.rand(batch, self.noise_dim, device=device, generator=generator) * 2 - 1


class SimGANRefiner(nn.Module):
    """SimGAN refiner R (Shrivastava et al. 2017): a 3x3 convolution of ``filters`` (ReLU),
    ``blocks`` ResNet blocks of two 3x3 convolutions of ``filters`` (no normalisation, as the
    paper describes them), a 1x1 convolution to ``channels`` and tanh. Full resolution
    throughout, no noise: (B,C,H,W) in [-1,1] -> the same shape, any H, W."""

    noise_dim = 0

    def __init__(self, channels: int = 3, filters: int = 64, blocks: int = 4, **_):
        super().__init__()
        self.channels = channels
        self.head = nn.Sequential(nn.Conv2d(channels, filters, 3, padding=1), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*[_PlainResidual(filters) for _ in range(blocks)])
        self.tail = nn.Conv2d(filters, channels, 1)

    def example_inputs(self, batch: int = 2, size: int = 64) -> tuple[torch.Tensor, ...]:
        return (torch.rand(batch, self.channels, size, size) * 2 - 1,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.tail(self.blocks(self.head(x))))


class _PlainResidual(nn.Module):
    """relu(x + conv3x3(relu(conv3x3(x)))), SimGAN's ResNet block."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(c, c, 3, padding=1))

    def forward(self, x):
        return torch.relu(x + self.body(x))


class ResnetGenerator(nn.Module):
    """Johnson et al. / CycleGAN image-to-image generator: c7s1-F, two stride-2 convs, ``blocks``
    residual blocks, two fractionally-strided convs, c7s1-C, tanh; instance norm; no noise.
    Fully convolutional: any H, W divisible by 4. (B,C,H,W) in [-1,1] -> same shape.
    ``residual``: the output is the input plus the net's (tanh) output, clamped to [-1, 1], and
    the last conv starts at zero, so G starts as the identity: a task net trained on G's
    images (SPIGAN's T) sees the source images, not noise, while G is still untrained."""

    def __init__(self, channels: int = 3, filters: int = 64, blocks: int = 9,
                 residual: bool = False, **_):
        super().__init__()
        f, self.channels, self.residual = filters, channels, residual

        def conv(cin, cout, k, s, p):
            return [nn.Conv2d(cin, cout, k, s, p, padding_mode="reflect" if p > 1 else "zeros"),
                    nn.InstanceNorm2d(cout, affine=True), nn.ReLU(inplace=True)]
        layers = conv(channels, f, 7, 1, 3) + conv(f, 2 * f, 3, 2, 1) + conv(2 * f, 4 * f, 3, 2, 1)
        layers += [_InstanceResidual(4 * f) for _ in range(blocks)]
        for cin, cout in ((4 * f, 2 * f), (2 * f, f)):
            layers += [nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1),
                       nn.InstanceNorm2d(cout, affine=True), nn.ReLU(inplace=True)]
        layers += [nn.Conv2d(f, channels, 7, 1, 3, padding_mode="reflect"), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        if residual:
            nn.init.zeros_(layers[-2].weight)
            nn.init.zeros_(layers[-2].bias)

    noise_dim = 0  # no noise input: any image size, whole scenes

    def example_inputs(self, batch: int = 2, size: int = 64) -> tuple[torch.Tensor, ...]:
        return (torch.rand(batch, self.channels, size, size) * 2 - 1,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + self.net(x)).clamp(-1, 1) if self.residual else self.net(x)

    def encode(self, x: torch.Tensor, layers) -> list[torch.Tensor]:
        """Intermediate activations for contrastive losses (CUT's PatchNCE): for each k in
        ``layers``, the output of the first k modules of ``self.net`` (0 = the input itself;
        with F filters: 1-3 the 7x7 conv / norm / ReLU, F channels at full resolution; 4-6 the
        first stride-2 conv / norm / ReLU, 2F at 1/2; 7-9 the second, 4F at 1/4; 9 + b the
        b-th residual block, b = 1..blocks). Stops after the deepest requested module; the
        forward output is unchanged. ``x``: (B,C,H,W); returns (B,C_k,H_k,W_k) in ``layers``'
        order (a module followed by an in-place ReLU is cloned first)."""
        layers = list(layers)
        if any(not 0 <= k <= len(self.net) for k in layers):
            raise ValueError(f"encode layers {layers}: use 0..{len(self.net)}")
        feats: dict[int, torch.Tensor] = {}
        h = x
        for k in range(max(layers, default=0) + 1):
            if k:
                h = self.net[k - 1](h)
            if k in layers:
                nxt = self.net[k] if k < len(self.net) else None
                feats[k] = h.clone() if isinstance(nxt, nn.ReLU) and nxt.inplace else h
        return [feats[k] for k in layers]

    def encode_channels(self, layers) -> list[int]:
        """Channels of what ``encode`` returns for each of ``layers`` (no forward pass)."""
        out = []
        for k in layers:
            c = self.channels
            for m in list(self.net)[:k]:
                if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                    c = m.out_channels
            out.append(c)
        return out


class _InstanceResidual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1, padding_mode="reflect"), nn.InstanceNorm2d(c, affine=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, padding=1, padding_mode="reflect"), nn.InstanceNorm2d(c, affine=True))

    def forward(self, x):
        return x + self.body(x)
