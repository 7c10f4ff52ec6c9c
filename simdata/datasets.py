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
    ``depth_clean``    (1,H,W) float32  clean z-depth in metres (simdata extra, if any)
    ``clutter``        (H,W) bool       pixels of clutter: no object on the table (simdata
                                        extra, with ``--randomize clutter``)
    ``R_w2c``, ``t_w2c``  (3,3), (3,)   world -> camera, metres (when the files give them)
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
        if "cam_R_w2c" in cam:
            out["R_w2c"] = torch.tensor(cam["cam_R_w2c"], dtype=torch.float32).reshape(3, 3)
            out["t_w2c"] = torch.tensor(cam["cam_t_w2c"], dtype=torch.float32) / 1000.0
        clean = scene / "depth_m" / f"{name}.npy"
        if clean.exists():  # privileged: the simulator's clean z-buffer
            out["depth_clean"] = torch.from_numpy(np.load(clean).astype(np.float32))[None]
        if self.load_full_masks:
            out["masks"] = masks("mask")
        clutter = scene / "mask_clutter" / f"{name}.png"
        if clutter.exists():
            out["clutter"] = torch.from_numpy(read_image(clutter) > 0)
        normals = scene / "normals" / f"{name}.png"
        if self.load_normals and normals.exists():
            enc = read_image(normals).astype(np.float32)
            n = np.where(enc.any(-1, keepdims=True), enc / 127.5 - 1.0, 0.0)
            out["normals"] = torch.from_numpy(n.astype(np.float32)).permute(2, 0, 1)
        return out

    @staticmethod
    def collate(batch: list[dict]) -> dict:
        """Stack fixed-size fields; keep per-instance fields (variable N) as lists."""
        fixed = ("rgb", "depth", "K", "normals", "depth_clean", "R_w2c", "t_w2c", "clutter")
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


class CropsDataset(Dataset):
    """Crops written by `simdata crops` or `simdata render --mode crops` (see simdata.crops).

    ``dataset[i]`` is a dict: ``rgb`` (3,S,S) float32 in [0,1], ``depth`` (1,S,S) float32
    metres, ``mask`` (1,S,S) bool, ``label`` int64 class index (into :attr:`names`),
    ``obj_id`` int64, ``quat`` (4,) float32 wxyz model->camera, ``t`` (3,) float32 metres,
    ``K`` (3,3) float32 crop intrinsics; ``depth_clean`` (1,S,S) and ``rgb_clean`` (3,S,S)
    when the crops hold them.
    """

    def __init__(self, root: str | Path, cache_shards: int = 2):
        self.root = Path(root)
        labels, info = self.root / "labels.jsonl", self.root / "crops_info.json"
        if not labels.is_file() or not info.is_file():
            raise SimdataError(f"{self.root} is no crops folder (labels.jsonl and crops_info.json "
                               f"missing); make one with `simdata crops` or `render --mode crops`")
        self.info = json.loads(info.read_text())
        self.labels = [json.loads(line) for line in labels.read_text().splitlines() if line]
        self.names: list[str] = self.info["names"]
        # BOP models_info of the objects (diameter, min_*/size_* mm, symmetries); {} if absent
        mi = self.root / "models_info.json"
        self.models_info: dict[int, dict] = (
            {int(k): v for k, v in json.loads(mi.read_text()).items()} if mi.is_file() else {})
        self._points: dict[int, np.ndarray] | None = None
        self._cache: dict[int, dict] = {}
        self._cache_size = cache_shards

    def __len__(self) -> int:
        return len(self.labels)

    def model_points(self, obj_id: int) -> np.ndarray | None:
        """(N,3) float32 points on object ``obj_id``'s surface in metres (model frame), from
        model_points.npz; None when the crops folder has none for it."""
        if self._points is None:
            path = self.root / "model_points.npz"
            self._points = {}
            if path.is_file():
                with np.load(path) as z:
                    self._points = {int(k[4:]): z[k] for k in z.files if k.startswith("obj_")}
        return self._points.get(int(obj_id))

    def _shard(self, k: int) -> dict:
        if k not in self._cache:
            if len(self._cache) >= self._cache_size:
                self._cache.pop(next(iter(self._cache)))
            path = self.root / f"shard_{k:06d}.npz"
            try:
                with np.load(path) as z:
                    self._cache[k] = {name: z[name] for name in z.files}
            except (OSError, ValueError) as e:
                raise SimdataError(f"cannot read {path} ({e}); the crops folder is damaged, "
                                   f"make it again") from None
        return self._cache[k]

    def raw(self, index: int) -> tuple[dict, dict]:
        """The crop's numpy arrays (rgb uint8 HWC, depth, mask, ...) and its label line."""
        label = self.labels[index]
        shard = self._shard(label["shard"])
        return {k: v[label["index"]] for k, v in shard.items()}, label

    def __getitem__(self, index: int) -> dict:
        arrays, label = self.raw(index)
        out = {"rgb": torch.from_numpy(arrays["rgb"]).permute(2, 0, 1).float() / 255.0,
               "depth": torch.from_numpy(arrays["depth"])[None],
               "mask": torch.from_numpy(arrays["mask"])[None],
               "label": torch.tensor(label["label"]), "obj_id": torch.tensor(label["obj_id"]),
               "quat": torch.tensor(label["quat_wxyz"], dtype=torch.float32),
               "t": torch.tensor(label["t_m"], dtype=torch.float32),
               "K": torch.tensor(label["K"], dtype=torch.float32).reshape(3, 3)}
        if "depth_clean" in arrays:
            out["depth_clean"] = torch.from_numpy(arrays["depth_clean"])[None]
        if "rgb_clean" in arrays:
            out["rgb_clean"] = torch.from_numpy(arrays["rgb_clean"]).permute(2, 0, 1).float() / 255.0
        return out


_IMAGE_EXTS = (".png", ".jpg", ".jpeg")
_NOT_RGB_DIRS = {"depth", "mask", "mask_visib", "normals", "depth_m", "rgb_clean", "mask_clutter"}


def _read_intrinsics_yaml(path: Path) -> np.ndarray | None:
    """3x3 K from a meta.yml with ``INTRINSICS: [9 numbers]`` (the YCB-Video demo layout)."""
    import re

    text = path.read_text(errors="replace")
    m = re.search(r"INTRINSICS:\s*\[([^\]]*)\]", text, flags=re.S)
    if not m:
        return None
    vals = [float(v) for v in re.findall(r"[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?", m.group(1))]
    return np.array(vals).reshape(3, 3) if len(vals) == 9 else None


class ImageFolder(Dataset):
    """Unlabelled real images (the target domain), with depth where it can be found.

    Finds ``.png/.jpg`` images under ``root`` (recursively) and pairs depth by layout:
    ``X-color.png`` + ``X-depth.png`` (uint16 millimetres), ``X.png`` + ``depth_X.npy``
    (float metres), or a BOP split (``rgb/`` + ``depth/`` + ``scene_camera.json``). Intrinsics
    come from ``meta.yml`` (``INTRINSICS: [...]``) or ``scene_camera.json`` when present.
    ``root`` may also be a ROS 1 or ROS 2 bag (simdata.bags: ``.bag``, ``.db3``, ``.mcap`` or a
    ROS 2 folder): its colour frames, the depth paired with them and K from CameraInfo, the
    topics chosen by ``topics`` (simdata.bags.BagTopics; None: all found from the message
    types); a frame's ``path``
    is ``ROOT/frame_NNNNNN``.

    ``dataset[i]``: ``rgb`` (3,H,W) float32 [0,1]; ``depth`` (1,H,W) float32 metres (zeros
    when there is none, see ``has_depth``); ``K`` (3,3) float32 (NaN when unknown);
    ``path`` str. With ``crop_size`` every item is a square window of that size: ``crops=
    "random"`` (seeded by (seed, index)), ``"center"``, or ``"mask"`` (around a random
    visible object; needs BOP ``mask_visib/``). ``resize`` first scales the shorter side.
    """

    def __init__(self, root: str | Path, crop_size: int | None = None, crops: str = "random",
                 resize: int | None = None, seed: int = 0, pad: float = 1.2, topics=None):
        from .bags import is_bag

        self.root = Path(root)
        if not self.root.exists():
            raise SimdataError(f"image folder {self.root} does not exist")
        if crops not in ("random", "center", "mask"):
            raise SimdataError(f"crops={crops!r}: use random, center or mask")
        self.crop_size, self.crops, self.resize, self.seed, self.pad = crop_size, crops, resize, seed, pad
        self.bag = None  # simdata.bags.BagFrames when root is a bag
        if is_bag(self.root):
            self.items = self._scan_bag(topics)
        elif self.root.is_dir():
            self.items = self._scan()
        else:
            raise SimdataError(f"{self.root} is neither a folder of images nor a ROS bag (.bag, .db3, "
                               f".mcap); pass one of those")
        if not self.items:
            raise SimdataError(f"no images (.png/.jpg) found in {self.root}")
        if crops == "mask" and crop_size and not any(it["masks"] for it in self.items):
            raise SimdataError(f"crops='mask' needs object masks (a BOP layout with mask_visib/) "
                               f"and {self.root} has none; use crops='random'")

    def _scan(self) -> list[dict]:
        items = []
        metas = {}
        for p in sorted(self.root.rglob("*")):
            if p.suffix.lower() not in _IMAGE_EXTS or p.parent.name in _NOT_RGB_DIRS:
                continue
            stem = p.stem
            if stem.endswith(("-depth", "_labels", "_color")) or stem.startswith("depth_"):
                continue  # depth, label and overlay images that sit beside the photos
            item = {"rgb": p, "depth": None, "depth_unit_m": None, "K": None, "masks": []}
            if p.parent.name == "rgb" and (p.parent.parent / "scene_camera.json").exists():
                scene = p.parent.parent  # BOP layout
                cam = json.loads((scene / "scene_camera.json").read_text()).get(str(int(stem)), {})
                d = scene / "depth" / f"{stem}.png"
                if d.exists():
                    item.update(depth=d, depth_unit_m=cam.get("depth_scale", 1.0) / 1000.0)
                if "cam_K" in cam:
                    item["K"] = np.array(cam["cam_K"]).reshape(3, 3)
                item["masks"] = sorted((scene / "mask_visib").glob(f"{stem}_*.png"))
            else:
                base = stem[:-len("-color")] if stem.endswith("-color") else stem
                for cand, unit in ((p.with_name(f"{base}-depth.png"), 1e-3),
                                   (p.with_name(f"depth_{base}.npy"), None),
                                   (p.with_name(f"depth_{base.removeprefix('rgb_')}.npy"), None)):
                    if cand.exists():
                        item.update(depth=cand, depth_unit_m=unit)
                        break
                meta = p.parent / "meta.yml"
                if meta.exists():
                    if meta not in metas:
                        metas[meta] = _read_intrinsics_yaml(meta)
                    item["K"] = metas[meta]
            items.append(item)
        return items

    def _scan_bag(self, topics) -> list[dict]:
        from .bags import BagFrames, BagTopics

        self.bag = BagFrames(self.root, topics or BagTopics())
        if not self.bag.has_colour:
            raise SimdataError(f"{self.root} has no colour image topic to read; name one with "
                               f"--colour-topic (depth-only bags: simdata.bags.iter_bag_frames)")
        return [{"frame": i, "rgb": self.root / f"frame_{i:06d}", "K": self.bag.K(i), "masks": []}
                for i in range(len(self.bag))]

    def __len__(self) -> int:
        return len(self.items)

    def _read(self, item) -> tuple[np.ndarray, np.ndarray | None]:
        """(H,W,3) uint8 RGB and (H,W) float32 metres or None, from files or the bag."""
        import cv2

        if "frame" in item:
            frame = self.bag[item["frame"]]
            return frame.rgb, frame.depth_m
        rgb = read_image(item["rgb"], cv2.IMREAD_COLOR)
        return rgb, self._depth_m(item, rgb.shape[:2])

    def _depth_m(self, item, shape) -> np.ndarray | None:
        if item["depth"] is None:
            return None
        if item["depth"].suffix == ".npy":
            try:
                d = np.load(item["depth"]).astype(np.float32)
            except (OSError, ValueError) as e:
                raise SimdataError(f"cannot read depth {item['depth']} ({e}); fix or remove it") from None
        else:
            d = read_image(item["depth"]).astype(np.float32) * item["depth_unit_m"]
        if d.shape != shape:
            raise SimdataError(f"depth {item['depth']} is {d.shape[::-1]} but its image is "
                               f"{shape[::-1]}; pair files of the same size")
        return d

    def __getitem__(self, index: int) -> dict:
        import cv2

        item = self.items[index]
        rgb, depth = self._read(item)
        K = item["K"].copy() if item["K"] is not None else np.full((3, 3), np.nan)
        masks = item["masks"]
        if self.resize:
            s = self.resize / min(rgb.shape[:2])
            size = (int(round(rgb.shape[1] * s)), int(round(rgb.shape[0] * s)))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            depth = None if depth is None else cv2.resize(depth, size, interpolation=cv2.INTER_NEAREST)
            K[:2] *= s
            K[0, 2], K[1, 2] = K[0, 2] + 0.5 * (s - 1), K[1, 2] + 0.5 * (s - 1)  # pixel centres
        if self.crop_size:
            rgb, depth, K = self._crop(index, rgb, depth, K, masks)
        h, w = rgb.shape[:2]
        return {"rgb": torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255.0,
                "depth": torch.from_numpy(depth if depth is not None else np.zeros((h, w), np.float32))[None],
                "has_depth": depth is not None, "K": torch.tensor(K, dtype=torch.float32),
                "path": str(item["rgb"])}

    def _crop(self, index, rgb, depth, K, masks):
        import cv2

        from .crops import crop_intrinsics, cut, square_box

        h, w = rgb.shape[:2]
        size = self.crop_size
        rng = np.random.default_rng([self.seed, index])
        if self.crops == "mask" and masks:
            mask = read_image(masks[int(rng.integers(len(masks)))]) > 0
            if mask.shape != (h, w):
                mask = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
            box = square_box(mask, self.pad) or (0, 0, min(h, w))
        else:
            side = min(size, h, w)
            if self.crops == "center":
                box = ((w - side) // 2, (h - side) // 2, side)
            else:
                box = (int(rng.integers(w - side + 1)), int(rng.integers(h - side + 1)), side)
        out_rgb = cut(rgb, box, size, cv2.INTER_AREA)
        out_depth = None if depth is None else cut(depth, box, size, cv2.INTER_NEAREST)
        return out_rgb, out_depth, crop_intrinsics(K, box, size)
