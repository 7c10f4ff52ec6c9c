"""Domains for training: labelled synthetic crops and (un)labelled target images, sampled
statelessly by step so that a resumed run sees exactly the batches of an uninterrupted one."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from simdata import CropsDataset, ImageFolder
from simdata.bags import BagTopics
from simdata.errors import SimdataError

from .inputs import CHANNELS, input_description  # noqa: F401 (the tasks import them from here)
from . import inputs

POINTS = 256  # model points per object in a batch (point-matching loss)


def _per_image(fn, depth: torch.Tensor) -> torch.Tensor:
    """Apply the numpy function ``fn`` ((H,W) -> (H,W), adapt.inputs) to every (1,H,W) image
    of a (B,1,H,W) batch."""
    out = [torch.from_numpy(fn(d[0].detach().cpu().numpy())) for d in depth]
    return torch.stack(out)[:, None].to(device=depth.device, dtype=depth.dtype)


def normalise_depth(depth: torch.Tensor) -> torch.Tensor:
    """(B,1,H,W) metres (0 = no reading) -> (B,1,H,W) in [-1,1] (see DEPTH_NORMALISATION;
    adapt.inputs.normalise_depth per image).

    Relative to each image's median, so it does not change when the camera moves along its
    axis (every z shifts by the same amount): the same in training, eval, export and predict."""
    return _per_image(inputs.normalise_depth, depth)


def fit_plane_inverse_depth(depth: torch.Tensor) -> torch.Tensor | None:
    """(H,W) metres -> the plane's coefficients (3,) float64 (adapt.inputs.fit_plane_inverse_depth),
    or None with fewer than 3 readings."""
    coef = inputs.fit_plane_inverse_depth(depth.detach().cpu().numpy())
    return None if coef is None else torch.from_numpy(coef)


def fill_holes(depth: torch.Tensor) -> torch.Tensor:
    """(H,W) metres with 0 = no reading -> the holes inpainted (adapt.inputs.fill_holes)."""
    if not (depth <= 0).any() or (depth <= 0).all():
        return depth
    return torch.from_numpy(inputs.fill_holes(depth.numpy())).to(depth.dtype)


def height_above_plane(depth: torch.Tensor) -> torch.Tensor:
    """(B,1,H,W) metres (0 = no reading) -> (B,1,H,W) in [-1,1] (see HEIGHT_NORMALISATION;
    adapt.inputs.height_above_plane per image).

    z_plane - z along each ray: 0 on the table, positive for what stands on it, negative beyond
    its edge. Moving the camera along its axis shifts z and z_plane alike, so it is unchanged."""
    return _per_image(inputs.height_above_plane, depth)


def to_input(rgb: torch.Tensor | None, depth: torch.Tensor | None, channels: str) -> torch.Tensor:
    """Network input in [-1,1]: rgb (B,3,H,W) in [0,1] as rgb * 2 - 1; for ``rgbd`` / ``depth``
    the normalised depth (B,1,H,W) metres, for ``rgbh`` / ``height`` its height above the
    dominant plane. Returns (B, CHANNELS[channels], H, W)."""
    if channels == "rgb":
        return rgb * 2 - 1
    d = height_above_plane(depth) if channels in ("rgbh", "height") else normalise_depth(depth)
    return d if channels in ("depth", "height") else torch.cat([rgb * 2 - 1, d], 1)


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
    cut into random ``size`` windows; also a ROS bag, read with ``topics``). ``batch(step, n)``
    is a pure function of the step."""

    def __init__(self, path: str | Path, size: int, channels: str, stream: int, seed: int,
                 topics: BagTopics | None = None):
        self.path, self.size, self.channels, self.stream, self.seed = Path(path), size, channels, stream, seed
        if (self.path / "labels.jsonl").exists():
            self.ds = CropsDataset(self.path, cache_shards=1 << 20)  # crops are small: keep all
            s = self.ds.info["size"]
            if s != size:
                raise SimdataError(f"crops in {self.path} are {s}x{s} but --size is {size}; "
                                   f"make crops of that size or pass --size {s}")
            self.info = DomainInfo(size, list(self.ds.names), True)
            self.obj_ids = [int(i) for i in self.ds.info.get("obj_ids", range(1, len(self.ds.names) + 1))]
            # BOP models_info entries (mm, symmetries) keyed by obj_id as a string, as in JSON
            self.models_info = {str(k): v for k, v in self.ds.models_info.items()}
            self._points = {i: self.ds.model_points(i) for i in self.obj_ids}
        else:
            self.ds = ImageFolder(self.path, crop_size=size, crops="random", seed=seed, topics=topics)
            self.info = DomainInfo(size, [], False)
            self.obj_ids, self.models_info, self._points = [], {}, {}
        if len(self.ds) == 0:
            raise SimdataError(f"{self.path} holds no samples")
        self.labelled, self.names = self.info.labelled, self.info.names
        self._table = self.points_table(self.obj_ids)  # (C,POINTS,3) or None
        self._all: dict | None = None  # every crop, stacked (see _crops)

    @property
    def has_points(self) -> bool:
        return bool(self._points) and all(p is not None for p in self._points.values())

    def points_table(self, obj_ids: list[int], n: int = POINTS) -> torch.Tensor | None:
        """(C,n,3) float32 model points in metres, one row per obj_id (None without points)."""
        if not self.has_points or any(i not in self._points for i in obj_ids):
            return None
        rows = []
        for i in obj_ids:
            p = self._points[i]
            rows.append(torch.from_numpy(p[np.linspace(0, len(p) - 1, n).astype(int)]).float())
        return torch.stack(rows)

    def __len__(self):
        return len(self.ds)

    def _crops(self) -> dict[str, torch.Tensor]:
        """Every crop of the folder as stacked tensors, read once: a batch is then one gather
        (per-sample Python made training data-bound on a GPU). rgb stays uint8."""
        if self._all is None:  # the dataset keeps every shard it reads (cache_shards above)
            labels = self.ds.labels
            raw = [self.ds.raw(i)[0] for i in range(len(labels))]
            t = {k: torch.from_numpy(np.stack([r[k] for r in raw])) for k in ("rgb", "depth", "mask")}
            self._all = {"rgb": t["rgb"].permute(0, 3, 1, 2).contiguous(),
                         "depth": t["depth"][:, None].float(), "mask": t["mask"][:, None],
                         "label": torch.tensor([lb["label"] for lb in labels]),
                         "obj_id": torch.tensor([lb["obj_id"] for lb in labels]),
                         "quat": torch.tensor([lb["quat_wxyz"] for lb in labels], dtype=torch.float32),
                         "t": torch.tensor([lb["t_m"] for lb in labels], dtype=torch.float32),
                         "K": torch.tensor([lb["K"] for lb in labels], dtype=torch.float32).view(-1, 3, 3)}
        return self._all

    def items(self, indices) -> dict:
        if isinstance(self.ds, ImageFolder):
            samples = [self.ds[int(i)] for i in indices]
            return {"x": to_input(torch.stack([s["rgb"] for s in samples]),
                                  torch.stack([s["depth"] for s in samples]), self.channels)}
        idx = torch.as_tensor(list(indices), dtype=torch.int64)
        a = self._crops()
        out = {"x": to_input(a["rgb"][idx].float() / 255.0, a["depth"][idx], self.channels),
               "mask": a["mask"][idx].float()}
        for key in ("label", "quat", "t", "K", "obj_id"):
            out[key] = a[key][idx]
        if self._table is not None:
            out["points"] = self._table[out["label"]]
        return out

    def batch(self, step: int, n: int, part: slice | None = None) -> dict:
        """The ``n`` samples of ``step``, or the ``part`` of them one process of several takes
        (adapt.distributed): the same draws, so the parts of all processes make up the batch."""
        g = torch.Generator().manual_seed(seed_for(self.seed, self.stream, step))
        idx = torch.randint(len(self.ds), (n,), generator=g)
        if isinstance(self.ds, ImageFolder):  # a new random window per step, reproducibly
            self.ds.seed = seed_for(self.seed, self.stream + 100, step)  # windows seeded by index
        return self.items(idx[part or slice(None)].tolist())
