"""Object-centred crops: cut from a rendered BOP dataset, or rendered directly one object at a
time (the Synthetic Cropped LineMOD protocol of PixelDA).

Crops folder format::

    crops_info.json          size, background, object names (class index = position), source
    shard_NNNNNN.npz         rgb (N,S,S,3) uint8, depth (N,S,S) float32 metres (0 = none),
                             mask (N,S,S) bool (visible part of the object);
                             privileged, when known: depth_clean (N,S,S) float32 metres
                             (before the sensor model), rgb_clean (N,S,S,3) uint8
    labels.jsonl             one JSON object per crop, in order:
      id, shard, index       where the crop's arrays are
      obj_id, name, label    BOP object id, object name, class index
      quat_wxyz              rotation model -> camera, unit, w >= 0 (see transforms)
      t_m                    translation model -> camera, metres
      K                      3x3 intrinsics *of the crop* (row-major), so that projecting the
                             model with quat_wxyz, t_m and K lands on the crop's pixels
      box_xywh               the square cut from the source image, source pixels
      visib_fract, source    visibility in the source image; {scene, im_id, gt_id} or null
    models_info.json         BOP models_info of the objects (keys: obj_id strings): diameter,
                             min_*/size_* in mm, symmetries_discrete/_continuous (mm) when the
                             object has any (see simdata.symmetry)
    model_points.npz         obj_NNNNNN: (1000,3) float32 points on each model's surface, metres
                             (area-uniform, fixed seed), model frame
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from .bop_layout import SPLIT, find_rgb, list_images
from .errors import SimdataError
from .fileio import read_image
from .writers.crops import CropWriter

log = logging.getLogger(__name__)


CROP_PAD = 1.2  # the one crop convention: a square of 1.2x the object's longer box side


def crop_pad_of(info: dict) -> float | None:
    """The pad a crops folder's crops were cut with, from its crops_info.json ``info``:
    `simdata crops --pad` (config.pad) or render --mode crops --poses viewpoints (viewpoints.pad);
    None for render --mode crops --poses uniform, whose crops frame the object's bounding sphere
    (simdata.crop_render.FILL), which no pad around a silhouette box reproduces. Folders that
    record neither were cut at CROP_PAD."""
    if info.get("poses") == "uniform":
        return None
    pad = (info.get("viewpoints") or {}).get("pad") or (info.get("config") or {}).get("pad")
    return float(pad) if pad else CROP_PAD


def square_box(mask: np.ndarray, pad: float) -> tuple[int, int, int] | None:
    """Square (x0, y0, side) around a mask's bounding box, ``pad`` times its longer side."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return square_of_box((xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1), pad)


def square_of_box(box_xywh, pad: float) -> tuple[int, int, int]:
    """Square (x0, y0, side) around a box (x, y, w, h) of pixels x .. x + w - 1 and
    y .. y + h - 1 (BOP's bbox convention), centred on it, ``pad`` times its longer side."""
    x, y, w, h = (float(v) for v in box_xywh)
    cx, cy = x + (w - 1) / 2, y + (h - 1) / 2
    side = int(np.ceil(max(w, h) * pad))
    return int(round(cx - side / 2 + 0.5)), int(round(cy - side / 2 + 0.5)), max(side, 2)


def cut(image: np.ndarray, box, size: int, interpolation) -> np.ndarray:
    """Cut the square ``box`` (zero outside the image) and resize it to size x size."""
    x0, y0, side = box
    h, w = image.shape[:2]
    out = np.zeros((side, side, *image.shape[2:]), image.dtype)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
    src = out.astype(np.uint8) if out.dtype == bool else out
    res = cv2.resize(src, (size, size), interpolation=interpolation)
    return res.astype(bool) if out.dtype == bool else res


def cut_object(rgb: np.ndarray | None, depth: np.ndarray | None, box, size: int,
               mask: np.ndarray | None = None, black: bool = False):
    """One object's crop: the square ``box`` (x0, y0, side) of colour (H,W,3) uint8 (area
    resizing), depth (H,W) metres and the object's visible mask (H,W) bool (both nearest) at
    ``size`` x ``size``; with ``black``, colour and depth are zero outside the mask (the
    ``--background black`` crops). Returns (rgb, depth, mask), None for what was not given."""
    c_rgb = None if rgb is None else cut(rgb, box, size, cv2.INTER_AREA)
    c_depth = None if depth is None else cut(depth, box, size, cv2.INTER_NEAREST)
    c_mask = None if mask is None else cut(mask, box, size, cv2.INTER_NEAREST)
    if black and c_mask is not None:
        c_rgb = None if c_rgb is None else np.where(c_mask[..., None], c_rgb, 0).astype(np.uint8)
        c_depth = None if c_depth is None else np.where(c_mask, c_depth, 0.0)
    return c_rgb, c_depth, c_mask


def crop_intrinsics(K: np.ndarray, box, size: int) -> np.ndarray:
    """Intrinsics of the crop ``box`` resized to ``size`` (pixel-centre convention)."""
    x0, y0, side = box
    s = size / side
    return np.array([[K[0, 0] * s, 0.0, (K[0, 2] - x0 + 0.5) * s - 0.5],
                     [0.0, K[1, 1] * s, (K[1, 2] - y0 + 0.5) * s - 0.5],
                     [0.0, 0.0, 1.0]])


@dataclass
class CropsConfig:
    size: int = 64                  # crop side, pixels
    background: str = "black"       # black: zero outside the object's visible mask; scene: keep
    pad: float = CROP_PAD           # square side / longer side of the object's silhouette box
    min_visib_fract: float = 0.3    # skip instances less visible than this
    min_px: int = 64                # ... or with fewer visible pixels
    shard_size: int = 1024

    def validate(self) -> "CropsConfig":
        if not 8 <= self.size <= 1024:
            raise SimdataError(f"--size {self.size} must be within 8..1024 pixels")
        if self.background not in ("black", "scene"):
            raise SimdataError(f"--background {self.background!r}: use black or scene")
        if self.pad < 1.0:
            raise SimdataError(f"--pad {self.pad} must be at least 1 (the crop holds the object)")
        return self


def object_names(root: Path) -> dict[int, str]:
    objects = root / "objects.json"
    if objects.exists():
        return {int(k): v["name"] for k, v in json.loads(objects.read_text()).items()}
    info = json.loads((root / "models" / "models_info.json").read_text())
    return {int(k): f"obj_{int(k):06d}" for k in info}


def label_for(obj_id, names: dict, R, t_m, K_crop, box, visib, source) -> dict:
    from .transforms import matrix_to_quat_wxyz

    ids = sorted(names)
    return {"obj_id": int(obj_id), "name": names[obj_id], "label": ids.index(obj_id),
            "quat_wxyz": matrix_to_quat_wxyz(np.asarray(R)).tolist(),
            "t_m": [float(v) for v in t_m], "K": np.asarray(K_crop).ravel().tolist(),
            "box_xywh": [box[0], box[1], box[2], box[2]], "visib_fract": float(visib),
            "source": source}


def dataset_models(root: Path, names: dict[int, str], overrides_path: str | Path = ""
                   ) -> tuple[list, dict[int, dict]]:
    """ObjectModels (meshes in metres) of a BOP dataset's models/obj_NNNNNN.ply and their
    symmetries: the ``overrides_path`` entries, else the dataset's models_info.json
    (simdata.symmetry.model_symmetries)."""
    from .assets import ModelSource, load_model
    from .symmetry import symmetries_for_models

    models = [load_model(ModelSource(name, root / "models" / f"obj_{obj_id:06d}.ply", unit="mm",
                                     obj_id=obj_id), obj_id)
              for obj_id, name in sorted(names.items())
              if (root / "models" / f"obj_{obj_id:06d}.ply").is_file()]
    return models, symmetries_for_models(models, overrides_path)


def crops_from_dataset(dataset: str | Path, out: str | Path, cfg: CropsConfig,
                       split: str = SPLIT, progress: bool = True,
                       symmetries: str | Path = "") -> Path:
    """Cut one crop per visible instance of a BOP dataset into a crops folder (with the
    dataset's models_info symmetries, or those of the ``symmetries`` overrides file)."""
    from tqdm import tqdm

    cfg.validate()
    root = Path(dataset)
    if not (root / split).is_dir():
        raise SimdataError(f"{root} has no {split}/ folder; pass the root of a BOP dataset")
    names = object_names(root)
    models, syms = dataset_models(root, names, symmetries)
    meshes = {m.obj_id: m.mesh for m in models}
    writer = CropWriter(Path(out), {"size": cfg.size, "background": cfg.background,
                                    "names": [names[k] for k in sorted(names)],
                                    "obj_ids": sorted(names), "source": str(root),
                                    "config": asdict(cfg)}, cfg.shard_size,
                        models=models, symmetries=syms)
    scene_json: dict[Path, tuple] = {}
    try:
        for scene, im_id in tqdm(list_images(root, split), unit="img", desc="crops",
                                 disable=not progress):
            if scene not in scene_json:  # read each scene's ground truth once
                scene_json = {scene: tuple(json.loads((scene / n).read_text()) for n in (
                    "scene_camera.json", "scene_gt.json", "scene_gt_info.json"))}
            cams, gts, infos = scene_json[scene]
            _crop_image(writer, scene, im_id, names, cfg, cams[str(im_id)], gts[str(im_id)],
                        infos[str(im_id)], meshes)
        return writer.close()
    except BaseException:
        writer.abort()
        raise


def silhouette(mesh_m, R: np.ndarray, t_m: np.ndarray, K: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(H,W) bool: the model's triangles (mesh in metres) projected with pose R, t (metres)
    and K and filled: the amodal mask, for real datasets that come without masks."""
    pts = np.asarray(mesh_m.vertices) @ R.T + t_m
    uv = pts[:, :2] / pts[:, 2:] * [K[0, 0], K[1, 1]] + K[:2, 2]
    mask = np.zeros(hw, np.uint8)
    tris = np.round(uv[np.asarray(mesh_m.faces)] * 16).astype(np.int32)  # 4 bits of sub-pixel
    cv2.fillPoly(mask, list(tris), 1, lineType=cv2.LINE_8, shift=4)
    return mask > 0


def _crop_image(writer: CropWriter, scene: Path, im_id: int, names: dict, cfg: CropsConfig,
                cam: dict, gts: list, infos: list, meshes: dict):
    """Crops of one image. Real BOP test sets may lack depth (then zero) and masks (then the
    model's silhouette at the annotated pose; every instance counts as fully visible)."""
    name = f"{im_id:06d}"
    K = np.array(cam["cam_K"]).reshape(3, 3)
    rgb = read_image(find_rgb(scene, im_id), cv2.IMREAD_COLOR)
    depth_path = scene / "depth" / f"{name}.png"
    depth = (read_image(depth_path).astype(np.float32) * cam.get("depth_scale", 1.0) / 1000.0
             if depth_path.is_file() else np.zeros(rgb.shape[:2], np.float32))
    clean_path = scene / "depth_m" / f"{name}.npy"
    clean = np.load(clean_path) if clean_path.exists() else None
    for k, (gt, info) in enumerate(zip(gts, infos)):
        R = np.array(gt["cam_R_m2c"]).reshape(3, 3)
        t_m = np.array(gt["cam_t_m2c"]) / 1000.0
        mask_path = scene / "mask" / f"{name}_{k:06d}.png"
        if mask_path.is_file():
            full = read_image(mask_path) > 0
            visib = read_image(scene / "mask_visib" / f"{name}_{k:06d}.png") > 0
        elif gt["obj_id"] in meshes:
            full = visib = silhouette(meshes[gt["obj_id"]], R, t_m, K, rgb.shape[:2])
        else:
            raise SimdataError(f"{mask_path} is missing and so is the model of object "
                               f"{gt['obj_id']}; a crops source needs masks or models/")
        if info.get("visib_fract", 1.0) < cfg.min_visib_fract or \
                info.get("px_count_visib", int(visib.sum())) < cfg.min_px:
            continue
        box = square_box(full, cfg.pad)
        black = cfg.background == "black"
        c_rgb, c_depth, c_mask = cut_object(rgb, depth, box, cfg.size, visib, black)
        extra = {} if clean is None else {"depth_clean": cut_object(None, clean, box, cfg.size, visib, black)[1]}
        writer.add(c_rgb, c_depth, c_mask, label_for(
            gt["obj_id"], names, R, t_m, crop_intrinsics(K, box, cfg.size), box,
            info.get("visib_fract", 1.0), {"scene": scene.name, "im_id": im_id, "gt_id": k}), **extra)
