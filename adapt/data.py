"""Domains for training: labelled synthetic crops and (un)labelled target images, sampled
statelessly by step so that a resumed run sees exactly the batches of an uninterrupted one."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from simdata import CropsDataset, ImageFolder
from simdata.errors import SimdataError

CHANNELS = {"rgb": 3, "rgbd": 4}
DEPTH_RANGE_M = 0.1  # depth enters the nets as (z - median z of the object) / 0.1 m, clipped


def to_input(rgb: torch.Tensor, depth: torch.Tensor | None, channels: str) -> torch.Tensor:
    """Network input in [-1,1] from rgb (B,3,H,W) in [0,1] and depth (B,1,H,W) in metres.

    rgbd adds object-relative depth: (z - median of valid z) / 0.1 m, clipped, -1 where no
    reading. Returns (B, 3 or 4, H, W)."""
    x = rgb * 2 - 1
    if channels == "rgb":
        return x
    d = depth
    valid = d > 0
    med = torch.stack([di[vi].median() if vi.any() else di.new_tensor(0.0) for di, vi in zip(d, valid)])
    rel = ((d - med.view(-1, 1, 1, 1)) / DEPTH_RANGE_M).clamp(-1, 1)
    return torch.cat([x, torch.where(valid, rel, torch.full_like(rel, -1.0))], 1)


def seed_for(seed: int, stream: int, step: int) -> int:
    """A 63-bit seed for (run seed, data stream, step)."""
    return int(np.random.SeedSequence([seed, stream, step]).generate_state(2, np.uint32)
               .astype(np.uint64).dot([1, 1 << 32]) % (1 << 63))


@dataclass
class DomainInfo:
    size: int
    names: list[str]
    labelled: bool


class Domain:
    """A folder of crops (`simdata crops` / `render --mode crops`) or of images (ImageFolder,
    cut into random ``size`` windows). ``batch(step, n)`` is a pure function of the step."""

    def __init__(self, path: str | Path, size: int, channels: str, stream: int, seed: int):
        self.path, self.size, self.channels, self.stream, self.seed = Path(path), size, channels, stream, seed
        if (self.path / "labels.jsonl").exists():
            self.ds = CropsDataset(self.path, cache_shards=1 << 20)  # crops are small: keep all
            s = self.ds.info["size"]
            if s != size:
                raise SimdataError(f"crops in {self.path} are {s}x{s} but --size is {size}; "
                                   f"make crops of that size or pass --size {s}")
            self.info = DomainInfo(size, list(self.ds.names), True)
        else:
            self.ds = ImageFolder(self.path, crop_size=size, crops="random", seed=seed)
            self.info = DomainInfo(size, [], False)
        if len(self.ds) == 0:
            raise SimdataError(f"{self.path} holds no samples")
        self.labelled, self.names = self.info.labelled, self.info.names

    def __len__(self):
        return len(self.ds)

    def items(self, indices) -> dict:
        samples = [self.ds[int(i)] for i in indices]
        out = {"x": to_input(torch.stack([s["rgb"] for s in samples]),
                             torch.stack([s["depth"] for s in samples]), self.channels)}
        if self.info.labelled:
            out["mask"] = torch.stack([s["mask"] for s in samples]).float()
            out["label"] = torch.stack([s["label"] for s in samples])
            out["quat"] = torch.stack([s["quat"] for s in samples])
        return out

    def batch(self, step: int, n: int) -> dict:
        g = torch.Generator().manual_seed(seed_for(self.seed, self.stream, step))
        idx = torch.randint(len(self.ds), (n,), generator=g)
        if isinstance(self.ds, ImageFolder):  # a new random window per step, reproducibly
            self.ds.seed = seed_for(self.seed, self.stream + 100, step)
        return self.items(idx.tolist())
