"""COCO writer: instance annotations of the BOP images, for detection and instance
segmentation tools (pycocotools, detectron2, mmdetection, torchvision).

Files, beside the BOP ones (``--format bop,coco``)::

    coco/instances_train_pbr.json    the COCO file, rebuilt from the parts after every run
    coco/parts/NNNNNN.json           one scene's images and annotations (ids not yet given)

``instances_train_pbr.json`` holds:

- ``images``: id (1, 2, ... in scene then view order), ``file_name`` relative to the *dataset
  folder* (the BOP image, e.g. ``train_pbr/000000/rgb/000000.jpg``; pass the dataset folder
  as the image root), width, height, and ``bop_scene_id``, ``bop_im_id``;
- ``categories``: id = BOP obj_id, name = the object's name (every model, used or not);
- ``annotations``: one per ground-truth instance with at least one visible pixel: id,
  image_id, category_id, ``segmentation`` (the visible mask as COCO RLE, counts a str),
  ``area`` (visible pixels), ``bbox`` [x, y, w, h] in pixels (BOP's ``bbox_visib``),
  ``iscrowd`` 0, and two extras: ``segmentation_amodal`` (the full silhouette, RLE, as BOP's
  ``mask/``) and ``bop_gt_id`` (the instance's index in scene_gt.json).

A scene's part is written atomically at commit; the merged file is rebuilt by ``finish`` from
all parts in scene order, so it is the same whatever the number of workers, and a resumed or
extended run leaves it consistent.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..bop_layout import SPLIT
from ..errors import SimdataError
from ..fileio import write_json_atomic
from ..types import Frame, ObjectModel, PlacedObject
from .base import mask_bbox

if TYPE_CHECKING:
    from ..config import RenderConfig

COCO_DIR = "coco"
COCO_FILE = f"instances_{SPLIT}.json"


def mask_utils():
    """pycocotools.mask (COCO's reference RLE code), or a SimdataError saying how to get it."""
    try:
        from pycocotools import mask
    except ImportError:
        raise SimdataError("--format coco needs pycocotools; install it with "
                           "pip install 'simdata-adapt[coco]' (or pip install pycocotools)") from None
    return mask


def encode_rle(mask: np.ndarray) -> dict:
    """(H,W) bool mask -> COCO compressed RLE {"size": [H, W], "counts": str}."""
    rle = mask_utils().encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


class CocoWriter:
    """The COCO annotations of dataset ``out`` (see the module docstring); a DatasetWriter.
    Its images are the BOP writer's, so it runs beside it."""

    name = "coco"
    needs = ("bop",)  # file_name points at the BOP rgb images

    def __init__(self, out: Path, cfg: "RenderConfig"):
        mask_utils()  # a missing pycocotools stops the run before --out is touched
        self.out, self.cfg = Path(out), cfg
        self.dir = self.out / COCO_DIR
        self.parts = self.dir / "parts"
        self.categories: list[dict] = []

    def prepare(self, models: list[ObjectModel], symmetries: dict[int, dict]) -> None:
        """Keep the categories for :meth:`finish`; clear temporaries of killed runs."""
        self.categories = [{"id": m.obj_id, "name": m.name, "supercategory": "object"}
                           for m in sorted(models, key=lambda m: m.obj_id)]
        self.parts.mkdir(parents=True, exist_ok=True)
        for stale in self.parts.glob(".*.tmp*"):  # write_json_atomic's, left by a killed run
            stale.unlink(missing_ok=True)

    def part(self, scene_index: int) -> Path:
        return self.parts / f"{scene_index:06d}.json"

    def has_scene(self, scene_index: int) -> bool:
        return self.part(scene_index).is_file()

    def scene(self, scene_index: int) -> "CocoSceneWriter":
        return CocoSceneWriter(self.part(scene_index), scene_index, self.cfg.rgb_format)

    def finish(self) -> None:
        """Merge every part, in scene order, into instances_train_pbr.json (atomically)."""
        if not self.categories:
            raise SimdataError("CocoWriter.finish needs prepare() first (it names the categories)")
        images, annotations = [], []
        for path in sorted(self.parts.glob("[0-9]*.json")):
            part = json.loads(path.read_text())
            for image, anns in zip(part["images"], part["annotations"]):
                images.append({"id": len(images) + 1, **image})
                annotations += [{"id": len(annotations) + k + 1, "image_id": len(images), **a}
                                for k, a in enumerate(anns)]
        write_json_atomic(self.dir / COCO_FILE, {
            "info": {"description": "simdata synthetic scenes; file_name is relative to the "
                                    "dataset folder (the BOP images)"},
            "licenses": [], "images": images, "annotations": annotations,
            "categories": self.categories}, indent=None)


class CocoSceneWriter:
    """Collects one scene's images and annotations; :meth:`commit` writes its part file
    atomically (nothing is on disk before)."""

    def __init__(self, path: Path, scene_index: int, rgb_ext: str):
        self.path, self.scene_index, self.rgb_ext = Path(path), scene_index, rgb_ext
        self.images: list[dict] = []
        self.annotations: list[list[dict]] = []

    def add_frame(self, im_id: int, frame: Frame, placed: list[PlacedObject],
                  models: list[ObjectModel]) -> None:
        h, w = frame.depth_m.shape
        self.images.append({
            "file_name": f"{SPLIT}/{self.scene_index:06d}/rgb/{im_id:06d}.{self.rgb_ext}",
            "width": int(w), "height": int(h), "bop_scene_id": self.scene_index, "bop_im_id": im_id})
        anns = []
        for gt_id, p in enumerate(placed):
            visib = frame.masks_visib[gt_id]
            area = int(visib.sum())
            if area == 0:  # hidden: COCO has no box for it (BOP keeps it with bbox -1)
                continue
            anns.append({"category_id": models[p.model_index].obj_id,
                         "segmentation": encode_rle(visib), "area": area,
                         "bbox": mask_bbox(visib), "iscrowd": 0,
                         "segmentation_amodal": encode_rle(frame.masks[gt_id]), "bop_gt_id": gt_id})
        self.annotations.append(anns)

    def commit(self, scene_info: dict) -> None:
        write_json_atomic(self.path, {"images": self.images, "annotations": self.annotations},
                          indent=None)

    def abort(self) -> None:
        pass  # nothing is written before commit
