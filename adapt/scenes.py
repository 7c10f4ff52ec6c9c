"""Scene-level data for segmentation methods (SPIGAN): labelled simdata BOP datasets with the
simulator's depth as privileged information, unlabelled real image folders, and (for
evaluation) folders of images with NAME_labels.png label images and a classes.json list.

Labels: 0 background (nothing hit), 1 table, 2.. one per object class (in obj_id order), or
2 = "object" when class-agnostic; 255 = ignore (unlabelled surfaces such as distractors).
With ``objectness`` the question a real camera asks: 0 = not an object (table and empty space
merged: a real camera never sees "nothing"), 1 = object: anything standing on the table,
distractors included; clutter (simdata's --randomize clutter and bins: shelves beyond the
table, robot links over it, bin walls around the objects) is not.

Inputs: rgb, or with ``channels`` rgbd / depth the sensor's depth (the sensor-modelled depth of
a simdata dataset, the depth files of an image folder), normalised per image (adapt.data).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from simdata import BopDataset, ImageFolder
from simdata.errors import SimdataError

from .data import seed_for, to_input

IGNORE = 255
# resized inputs and labels a domain keeps in memory (about 0.5 MB an image at 120x160, so some
# 1000 images): no file is read and no table plane fitted twice
CACHE_BYTES = 512 << 20
TABLE_TOLERANCE_M = 0.005


OBJECTNESS = ["not object", "object"]


def class_names(root: Path, agnostic: bool, objectness: bool = False) -> list[str]:
    if objectness:
        return list(OBJECTNESS)
    if agnostic:
        return ["background", "table", "object"]
    objects = json.loads((root / "objects.json").read_text()) if (root / "objects.json").exists() else None
    info = json.loads((root / "models" / "models_info.json").read_text())
    ids = sorted(int(k) for k in info)
    names = [objects[str(i)]["name"] if objects else f"obj_{i:06d}" for i in ids]
    return ["background", "table", *names]


def to_objectness(labels: torch.Tensor, names: list[str]) -> torch.Tensor:
    """Labels of a background/table/objects set -> 0 not object / 1 object (ignore kept)."""
    obj = labels >= 2 if names[:2] == ["background", "table"] else labels == names.index("object")
    return torch.where(labels == IGNORE, labels, obj.long())


def label_map(sample: dict, obj_ids: list[int], agnostic: bool, objectness: bool = False) -> torch.Tensor:
    """(H,W) int64 labels of one BopDataset sample (see the module docstring). Surfaces above
    the table that are no labelled object (distractors) are ignored for per-class labels and
    "object" (2) with ``objectness``, where anything standing on the table is one; clutter
    (what is in view but not on the table) is ignored, or background (0) with objectness."""
    depth = sample.get("depth_clean", sample["depth"])[0]
    labels = torch.zeros(depth.shape, dtype=torch.int64)
    surface = depth > 0
    if "R_w2c" in sample:  # table top: back-projected points at world z = 0
        K = sample["K"]
        h, w = depth.shape
        v, u = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                              indexing="ij")
        pts = torch.stack([(u - K[0, 2]) * depth / K[0, 0], (v - K[1, 2]) * depth / K[1, 1], depth], -1)
        z_world = ((pts - sample["t_w2c"]) @ sample["R_w2c"])[..., 2]
        table = surface & (z_world.abs() < TABLE_TOLERANCE_M)
        above = surface & (z_world >= TABLE_TOLERANCE_M)
    else:
        table, above = surface, torch.zeros_like(surface)
    labels[surface] = IGNORE
    labels[table] = 1
    labels[above] = 2 if objectness else IGNORE
    if "clutter" in sample:
        labels[sample["clutter"]] = 0 if objectness else IGNORE
    for mask, oid in zip(sample["masks_visib"], sample["obj_ids"].tolist()):
        labels[mask] = 2 if agnostic else 2 + obj_ids.index(oid)
    return labels


def _resize(t: torch.Tensor, hw, mode: str) -> torch.Tensor:
    if tuple(t.shape[-2:]) == tuple(hw):
        return t
    t4 = t[None].float() if t.dim() == 3 else t[None, None].float()
    out = F.interpolate(t4, size=hw, mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))
    return out[0] if t.dim() == 3 else out[0, 0].to(t.dtype)


class SceneDomain:
    """Images resized to ``height`` (aspect kept) and cut into random ``crop`` x ``crop``
    windows; from a simdata BOP dataset (labels + privileged depth), an image folder or a ROS
    bag (read with ``topics``, a simdata.bags.BagTopics). With ``hflip`` the training crops
    (:meth:`batch`) are mirrored left-right at random, half of them."""

    def __init__(self, path: str | Path, height: int, crop: int, stream: int, seed: int,
                 agnostic: bool = False, channels: str = "rgb", objectness: bool = False, topics=None,
                 hflip: bool = False):
        self.path, self.height, self.crop, self.hflip = Path(path), height, crop, hflip
        self.stream, self.seed, self.agnostic = stream, seed, agnostic
        self.channels, self.objectness = channels, objectness
        if crop > height:
            raise SimdataError(f"--crop {crop} is larger than --height {height}")
        self.file_names: list[str] = []  # class names of a labelled image folder's label files
        if (self.path / "train_pbr").is_dir():
            self.ds = BopDataset(self.path, load_full_masks=False, load_normals=True)
            self.names = class_names(self.path, agnostic, objectness)
            self.file_names = class_names(self.path, agnostic)  # before objectness merges them
            info = json.loads((self.path / "models" / "models_info.json").read_text())
            self.obj_ids = sorted(int(k) for k in info)
            self.labelled = True
        elif (self.path / "classes.json").is_file():  # images + NAME_labels.png (evaluation)
            self.ds = ImageFolder(self.path)
            self.file_names = json.loads((self.path / "classes.json").read_text())
            self.names = list(OBJECTNESS) if objectness else self.file_names
            if objectness and "object" not in self.file_names and self.file_names[:2] != ["background", "table"]:
                raise SimdataError(f"{self.path}/classes.json names no 'object' class; objectness "
                                   f"labels need one")
            self.obj_ids, self.labelled = [], True
        else:
            self.ds = ImageFolder(self.path, topics=topics)
            self.names, self.obj_ids, self.labelled = [], [], False
        if len(self.ds) == 0:
            raise SimdataError(f"{self.path} holds no images")
        self._cache: dict[int, dict] = {}
        self._cached_bytes = 0

    def __len__(self):
        return len(self.ds)

    def _label_file(self, index: int) -> torch.Tensor:
        from simdata.fileio import read_image

        rgb = self.ds.items[index]["rgb"]
        path = rgb.with_name(f"{rgb.stem}_labels.png")
        if not path.is_file():
            raise SimdataError(f"{rgb} has no label image {path.name}; every image of a labelled "
                               f"folder needs NAME_labels.png (class ids as in classes.json)")
        return torch.from_numpy(read_image(path).astype(np.int64))

    def sample(self, index: int, rng: np.random.Generator | None) -> dict:
        """One image, resized and (with ``rng``) randomly cropped; ``rng=None`` keeps it whole."""
        out = self._cache.get(index)
        if out is None:
            out = self._whole(index)
            size = sum(v.numel() * v.element_size() for v in out.values())
            if self._cached_bytes + size <= CACHE_BYTES:
                self._cache[index] = out
                self._cached_bytes += size
        if rng is not None:
            hw = out["x"].shape[-2:]
            y0 = int(rng.integers(hw[0] - self.crop + 1))
            x0 = int(rng.integers(hw[1] - self.crop + 1))
            out = {k: v[..., y0:y0 + self.crop, x0:x0 + self.crop] for k, v in out.items()}
        return out

    def _whole(self, index: int) -> dict:
        s = self.ds[index]
        h, w = s["rgb"].shape[-2:]
        hw = (self.height, max(self.crop, int(round(w * self.height / h))))
        depth = None
        if self.channels != "rgb":  # what the sensor saw, not the clean render
            if not s.get("has_depth", True):
                raise SimdataError(f"{s.get('path', self.path)} has no depth file; --channels "
                                   f"{self.channels} needs depth beside every image")
            depth = _resize(s["depth"], hw, "nearest")[None]
        out = {"x": to_input(_resize(s["rgb"], hw, "bilinear")[None], depth, self.channels)[0]}
        if self.labelled and isinstance(self.ds, BopDataset):
            labels = label_map(s, self.obj_ids, self.agnostic, self.objectness)
            out["label"] = _resize(to_objectness(labels, self.file_names) if self.objectness
                                   else labels, hw, "nearest")
            out["depth"] = _resize(s.get("depth_clean", s["depth"]), hw, "nearest")
            if "normals" in s:  # privileged: camera-frame normals
                out["normals"] = _resize(s["normals"], hw, "nearest")
        elif self.labelled:
            labels = self._label_file(index)
            if self.objectness:
                labels = to_objectness(labels, self.file_names)
            out["label"] = _resize(labels, hw, "nearest")
        return out

    def augment(self, item: dict, rng: np.random.Generator) -> dict:
        """A sampled crop as training sees it (subclasses may draw from ``rng``): with ``hflip``
        mirrored left-right for one draw in two (the camera-frame normals' x negated with it),
        else as it is. Without ``hflip`` nothing is drawn, so the crops stay those of before."""
        if not self.hflip or not rng.integers(2):
            return item
        out = {k: v.flip(-1) for k, v in item.items()}
        if "normals" in out:
            out["normals"] = out["normals"] * out["normals"].new_tensor([-1.0, 1.0, 1.0])[:, None, None]
        return out

    def batch(self, step: int, n: int, part: slice | None = None) -> dict:
        """The ``n`` crops of ``step``, or the ``part`` of them one process of several takes
        (adapt.distributed). The crops draw from one stream in turn, so every process draws
        them all (from the image cache) to take the same ones as a single process would."""
        rng = np.random.default_rng(seed_for(self.seed, self.stream, step))
        idx = rng.integers(len(self.ds), size=n)
        items = [self.augment(self.sample(int(i), rng), rng) for i in idx][part or slice(None)]
        return {k: torch.stack([it[k] for it in items]) for k in items[0]}
