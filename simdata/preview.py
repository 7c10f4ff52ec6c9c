"""Contact sheets of a BOP dataset: one row per image, RGB | depth | visible masks | normals
| grasps (when labelled by simdata grasps)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from .bop_layout import find_rgb, list_images
from .errors import SimdataError
from .fileio import read_image, write_image

PALETTE = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                     [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60],
                     [250, 190, 212], [0, 128, 128], [220, 190, 255]], np.uint8)


def colorize_depth(depth: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """(H,W) depth (any unit, 0 = none) -> (H,W,3) uint8 turbo colours, black where 0."""
    valid = depth > 0
    if not valid.any():
        return np.zeros((*depth.shape, 3), np.uint8)
    lo = np.percentile(depth[valid], 1) if lo is None else lo
    hi = np.percentile(depth[valid], 99) if hi is None else hi
    norm = np.clip((depth - lo) / max(hi - lo, 1e-9), 0, 1)
    colored = cv2.applyColorMap((norm * 255).astype(np.uint8), cv2.COLORMAP_TURBO)[..., ::-1]
    return np.where(valid[..., None], colored, 0).astype(np.uint8)


def overlay_masks(rgb: np.ndarray, masks: list[np.ndarray], alpha: float = 0.6) -> np.ndarray:
    """Blend each (H,W) bool mask over ``rgb`` in its own palette colour, with outlines."""
    out = (rgb.astype(np.float32) * 0.35)
    for i, m in enumerate(masks):
        c = PALETTE[i % len(PALETTE)].astype(np.float32)
        out[m] = (1 - alpha) * out[m] + alpha * c
    out = out.astype(np.uint8)
    for i, m in enumerate(masks):
        contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, tuple(int(v) for v in PALETTE[i % len(PALETTE)]), 1)
    return out


def draw_grasps(rgb: np.ndarray, grasps, color=(40, 220, 40), thickness: int = 1) -> np.ndarray:
    """``rgb`` (H,W,3) uint8 with grasp rectangles (simdata.grasping.planar.PlanarGrasp) drawn:
    the opening's sides in ``color``, the finger pads (the short sides) in red, the centre as a
    dot. Drawn in list order, so pass the best grasp last to keep it on top."""
    out = np.ascontiguousarray(rgb).copy()
    for g in grasps:
        c = np.round(g.corners() * 16).astype(np.int32)  # 4 fractional bits
        for a, b, col in ((0, 1, color), (2, 3, color), (1, 2, (230, 30, 30)), (3, 0, (230, 30, 30))):
            cv2.line(out, tuple(c[a]), tuple(c[b]), col, thickness + (col != color), cv2.LINE_AA, shift=4)
        cv2.circle(out, (int(round(g.u)), int(round(g.v))), 1 + thickness, color, -1, cv2.LINE_AA)
    return out


def _label(img: np.ndarray, text: str) -> np.ndarray:
    img = img.copy()
    cv2.putText(img, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def _depth_scale(scene: Path, im_id: int) -> float:
    return json.loads((scene / "scene_camera.json").read_text())[str(im_id)]["depth_scale"]


def contact_sheet(root: str | Path, out: str | Path, n: int = 6, width: int = 320,
                  split: str = "train_pbr") -> Path:
    """Write a PNG grid: rows are ``n`` images spread over the dataset; columns are RGB (and
    the clean RGB when a sensor model was applied), depth (and clean depth), visible masks
    and (if present) normals. Returns the output path."""
    root = Path(root)
    if not (root / split).is_dir():
        raise SimdataError(f"{root} has no {split}/ folder; is it a BOP dataset? "
                           f"(render one with `simdata render`)")
    items = list_images(root, split)
    if not items:
        raise SimdataError(f"{root}/{split} holds no finished scenes yet")
    pick = [items[i] for i in np.unique(np.linspace(0, len(items) - 1, min(n, len(items))).astype(int))]
    rows = []
    for scene, im_id in pick:
        rgb = read_image(find_rgb(scene, im_id))
        depth = read_image(scene / "depth" / f"{im_id:06d}.png").astype(np.float32)
        gts = json.loads((scene / "scene_gt.json").read_text())[str(im_id)]
        masks = [read_image(scene / "mask_visib" / f"{im_id:06d}_{k:06d}.png") > 0
                 for k in range(len(gts))]
        clean_rgb = scene / "rgb_clean" / f"{im_id:06d}.png"
        clean_depth = scene / "depth_m" / f"{im_id:06d}.npy"
        tiles = [_label(rgb, f"{scene.name}/{im_id:06d} rgb")]
        if clean_rgb.exists():  # a sensor model was applied: show the clean render beside it
            tiles.append(_label(read_image(clean_rgb), "rgb clean"))
        lo_hi = np.percentile(depth[depth > 0], [1, 99]) if (depth > 0).any() else (None, None)
        tiles.append(_label(colorize_depth(depth, *lo_hi), "depth"))
        if clean_rgb.exists() and clean_depth.exists():
            tiles.append(_label(colorize_depth(np.load(clean_depth) * 1000 / _depth_scale(scene, im_id),
                                               *lo_hi), "depth clean"))
        tiles.append(_label(overlay_masks(rgb, masks), f"visible masks ({len(gts)})"))
        normals = scene / "normals" / f"{im_id:06d}.png"
        if normals.exists():
            tiles.append(_label(read_image(normals), "normals"))
        grasps = scene / "grasps" / f"{im_id:06d}.npz"
        if grasps.exists():  # labelled by simdata grasps: the successful grasps seen from here
            from .grasping.labels import read_view_grasps
            from .grasping.planar import PlanarGrasp

            _, rects = read_view_grasps(scene, im_id)
            tiles.append(_label(draw_grasps(rgb, [PlanarGrasp(*r[:5]) for r in rects]),
                                f"grasps ({len(rects)})"))
        h = int(round(rgb.shape[0] * width / rgb.shape[1]))
        rows.append(np.concatenate([cv2.resize(t, (width, h), interpolation=cv2.INTER_AREA)
                                    for t in tiles], axis=1))
    ncol = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, ncol - r.shape[1]), (0, 0))) for r in rows]
    sheet = np.concatenate(rows, axis=0)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_image(out, sheet)
    return out


def crops_sheet(crops: str | Path, out: str | Path, n: int = 48, scale: int = 2) -> Path:
    """Grid of ``n`` crops spread over a crops folder: RGB above colourised depth, captioned
    with the object name and the rotation angle (degrees) of quat_wxyz."""
    from .datasets import CropsDataset

    ds = CropsDataset(crops)
    if len(ds) == 0:
        raise SimdataError(f"{crops} holds no crops")
    picks = np.unique(np.linspace(0, len(ds) - 1, min(n, len(ds))).astype(int))
    tiles = []
    for i in picks:
        item, label = ds.raw(int(i))
        s = item["rgb"].shape[0] * scale
        rgb = cv2.resize(item["rgb"], (s, s), interpolation=cv2.INTER_NEAREST)
        depth = cv2.resize(colorize_depth(item["depth"]), (s, s), interpolation=cv2.INTER_NEAREST)
        angle = np.degrees(2 * np.arccos(np.clip(label["quat_wxyz"][0], -1, 1)))
        caption = np.zeros((28, s, 3), np.uint8)
        for row, text in enumerate((label["name"][:18], f"id {label['obj_id']} rot {angle:.0f}deg")):
            cv2.putText(caption, text, (2, 11 + 13 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.33,
                        (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(np.concatenate([rgb, depth, caption], 0))
    cols = 8
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[r:r + cols], 1) for r in range(0, len(tiles), cols)]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_image(out, np.concatenate(rows, 0))
    return out
