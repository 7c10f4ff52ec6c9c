"""BopDataset: a torch Dataset over any BOP folder (ours or one downloaded from the BOP site)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .bop_layout import find_rgb, list_images
from .errors import SimdataError
from .fileio import read_image


class BopDataset(Dataset):
    """Images of one split of a BOP dataset with their ground truth, as tensors.

    ``dataset[i]`` is a dict:

    =================  ===============  ================================================
    key                shape / dtype    meaning
    =================  ===============  ================================================
    ``rgb``            (3,H,W) float32  colour in [0, 1]
    ``depth``          (1,H,W) float32  z-depth in **metres** (0 = no reading)
    ``K``              (3,3) float32    intrinsics, pixels
    ``obj_ids``        (N,) int64       BOP object id of each GT instance
    ``R``              (N,3,3) float32  rotation model -> camera
    ``t``              (N,3) float32    translation model -> camera, **metres**
    ``masks_visib``    (N,H,W) bool     visible part of each instance
    ``masks``          (N,H,W) bool     full silhouette (when ``load_full_masks``)
    ``bbox_visib``     (N,4) int64      x, y, w, h of the visible part (-1s if none)
    ``visib_fract``    (N,) float32     visible fraction of the silhouette
    ``normals``        (3,H,W) float32  camera-frame unit normals (simdata extra, if any)
    ``scene_id``, ``im_id``  int        where the image comes from
    =================  ===============  ================================================

    N varies per image: use :meth:`collate` as the DataLoader's ``collate_fn``. Instances
    whose ``visib_fract`` is below ``min_visib_fract`` are left out.
    """

    def __init__(self, root: str | Path, split: str = "train_pbr", load_full_masks: bool = True,
                 load_normals: bool = True, min_visib_fract: float = 0.0):
        self.root = Path(root)
        if not (self.root / split).is_dir():
            raise SimdataError(f"{self.root} has no {split}/ folder; pass the root of a BOP "
                               f"dataset (the folder holding camera.json and {split}/)")
        self.split = split
        self.load_full_masks, self.load_normals = load_full_masks, load_normals
        self.min_visib_fract = min_visib_fract
        self.items = list_images(self.root, split)
        self._scene_json: dict[Path, tuple[dict, dict, dict]] = {}

    def __len__(self) -> int:
        return len(self.items)

    def _json(self, scene: Path):
        if scene not in self._scene_json:
            load = lambda n: json.loads((scene / n).read_text()) if (scene / n).exists() else {}
            self._scene_json[scene] = (load("scene_camera.json"), load("scene_gt.json"),
                                       load("scene_gt_info.json"))
        return self._scene_json[scene]

    def __getitem__(self, index: int) -> dict:
        scene, im_id = self.items[index]
        cams, gts, infos = self._json(scene)
        cam, gt, info = cams[str(im_id)], gts.get(str(im_id), []), infos.get(str(im_id), [])
        name = f"{im_id:06d}"
        rgb = read_image(find_rgb(scene, im_id))
        depth_mm = read_image(scene / "depth" / f"{name}.png").astype(np.float32) * cam["depth_scale"]
        keep = [k for k in range(len(gt))
                if not info or info[k]["visib_fract"] >= self.min_visib_fract]

        def masks(folder):
            h, w = depth_mm.shape
            if not keep:
                return torch.zeros((0, h, w), dtype=torch.bool)
            return torch.from_numpy(np.stack([read_image(scene / folder / f"{name}_{k:06d}.png") > 0
                                              for k in keep]))

        out = {
            "rgb": torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0,
            "depth": torch.from_numpy(depth_mm / 1000.0)[None],
            "K": torch.tensor(cam["cam_K"], dtype=torch.float32).reshape(3, 3),
            "obj_ids": torch.tensor([gt[k]["obj_id"] for k in keep], dtype=torch.int64),
            "R": torch.tensor([gt[k]["cam_R_m2c"] for k in keep], dtype=torch.float32).reshape(-1, 3, 3),
            "t": torch.tensor([gt[k]["cam_t_m2c"] for k in keep], dtype=torch.float32).reshape(-1, 3) / 1000.0,
            "masks_visib": masks("mask_visib"),
            "bbox_visib": torch.tensor([info[k]["bbox_visib"] for k in keep] if info else
                                       [[-1] * 4] * len(keep), dtype=torch.int64).reshape(-1, 4),
            "visib_fract": torch.tensor([info[k]["visib_fract"] for k in keep] if info else
                                        [1.0] * len(keep), dtype=torch.float32),
            "scene_id": int(scene.name), "im_id": im_id,
        }
        if self.load_full_masks:
            out["masks"] = masks("mask")
        normals = scene / "normals" / f"{name}.png"
        if self.load_normals and normals.exists():
            enc = read_image(normals).astype(np.float32)
            n = np.where(enc.any(-1, keepdims=True), enc / 127.5 - 1.0, 0.0)
            out["normals"] = torch.from_numpy(n.astype(np.float32)).permute(2, 0, 1)
        return out

    @staticmethod
    def collate(batch: list[dict]) -> dict:
        """Stack fixed-size fields; keep per-instance fields (variable N) as lists."""
        fixed = ("rgb", "depth", "K", "normals")
        out = {}
        for key in batch[0]:
            values = [b[key] for b in batch]
            if key in fixed:
                out[key] = torch.stack(values)
            elif key in ("scene_id", "im_id"):
                out[key] = torch.tensor(values)
            else:
                out[key] = values
        return out
