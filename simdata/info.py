"""Summaries and validation of a BOP dataset on disk (used by `simdata info`)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from .bop_layout import find_rgb, scene_dirs
from .errors import SimdataError
from .fileio import read_image


def _load(path: Path, problems: list[str]):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        problems.append(f"missing {path}")
    except json.JSONDecodeError as e:
        problems.append(f"{path} is not valid JSON ({e})")
    return None


def dataset_info(root: str | Path, split: str = "train_pbr", check_images: bool = True) -> dict:
    """Counts, objects, image size and a list of problems (empty when the dataset is valid).

    With ``check_images`` every image and mask is opened and compared with the JSON ground
    truth (pixel counts, sizes); otherwise only the files' presence is checked.
    """
    root = Path(root)
    if not (root / split).is_dir():
        raise SimdataError(f"{root} has no {split}/ folder; pass the root of a BOP dataset")
    problems: list[str] = []
    camera = _load(root / "camera.json", problems) or {}
    models_info = _load(root / "models" / "models_info.json", problems) or {}
    names = json.loads((root / "objects.json").read_text()) if (root / "objects.json").exists() else {}
    for oid in models_info:
        if not (root / "models" / f"obj_{int(oid):06d}.ply").exists():
            problems.append(f"models_info.json lists obj {oid} but models/obj_{int(oid):06d}.ply is missing")
    size = (camera.get("width"), camera.get("height"))
    scenes = scene_dirs(root, split)
    n_images, per_obj, visib = 0, Counter(), []
    for scene in scenes:
        cams = _load(scene / "scene_camera.json", problems)
        gts = _load(scene / "scene_gt.json", problems)
        infos = _load(scene / "scene_gt_info.json", problems)
        if cams is None or gts is None or infos is None:
            continue
        if not set(cams) == set(gts) == set(infos):
            problems.append(f"{scene}: scene_camera/scene_gt/scene_gt_info list different images")
            continue
        for im in sorted(cams, key=int):
            n_images += 1
            name = f"{int(im):06d}"
            R = np.array(cams[im].get("cam_R_w2c", np.eye(3).ravel())).reshape(3, 3)
            if not np.allclose(R @ R.T, np.eye(3), atol=1e-5):
                problems.append(f"{scene.name}/{name}: cam_R_w2c is not a rotation")
            if len(gts[im]) != len(infos[im]):
                problems.append(f"{scene.name}/{name}: scene_gt and scene_gt_info differ in length")
                continue
            try:
                rgb_path = find_rgb(scene, int(im))
            except SimdataError as e:
                problems.append(str(e))
                continue
            depth_path = scene / "depth" / f"{name}.png"
            if not depth_path.exists():
                problems.append(f"missing {depth_path}")
            if check_images:
                problems += _check_images(scene, name, rgb_path, depth_path, size, gts[im], infos[im])
            for gt, info in zip(gts[im], infos[im]):
                per_obj[gt["obj_id"]] += 1
                visib.append(info["visib_fract"])
    return {
        "root": str(root), "split": split, "scenes": len(scenes), "images": n_images,
        "instances": sum(per_obj.values()), "image_size": list(size),
        "depth_scale_mm": camera.get("depth_scale"),
        "objects": {int(k): {"name": names.get(k, {}).get("name", f"obj_{int(k):06d}"),
                             "diameter_mm": round(v["diameter"], 1),
                             "instances": per_obj.get(int(k), 0)}
                    for k, v in sorted(models_info.items(), key=lambda kv: int(kv[0]))},
        "mean_visib_fract": float(np.mean(visib)) if visib else 0.0,
        "unfinished_scenes": len(list((root / split).glob(".tmp-*"))),
        "problems": problems,
    }


def _check_images(scene, name, rgb_path, depth_path, size, gts, infos) -> list[str]:
    problems = []
    try:
        rgb = read_image(rgb_path)
        depth = read_image(depth_path)
    except SimdataError as e:
        return [str(e)]
    if (rgb.shape[1], rgb.shape[0]) != tuple(size) or depth.shape[::-1] != tuple(size):
        problems.append(f"{scene.name}/{name}: image size differs from camera.json {size}")
    if depth.dtype != np.uint16:
        problems.append(f"{depth_path}: depth must be uint16, found {depth.dtype}")
    for k, info in enumerate(infos):
        for folder, key in (("mask", "px_count_all"), ("mask_visib", "px_count_visib")):
            p = scene / folder / f"{name}_{k:06d}.png"
            if not p.exists():
                problems.append(f"missing {p}")
                continue
            count = int((read_image(p) > 0).sum())
            if count != info[key]:
                problems.append(f"{p}: {count} pixels but {key} = {info[key]}")
    return problems


def format_info(info: dict) -> str:
    """A short human-readable report of :func:`dataset_info`."""
    lines = [f"dataset   {info['root']} ({info['split']})",
             f"scenes    {info['scenes']}   images {info['images']}   instances {info['instances']}",
             f"images    {info['image_size'][0]}x{info['image_size'][1]}, depth unit "
             f"{info['depth_scale_mm']} mm, mean visible fraction {info['mean_visib_fract']:.2f}",
             "objects"]
    for oid, o in info["objects"].items():
        lines.append(f"  {oid:4d}  {o['name']:<28} diameter {o['diameter_mm']:7.1f} mm  "
                     f"{o['instances']} instances")
    if info["unfinished_scenes"]:
        lines.append(f"unfinished scenes: {info['unfinished_scenes']} (rerun `simdata render` to resume)")
    if info["problems"]:
        lines.append(f"INVALID: {len(info['problems'])} problems")
        lines += [f"  - {p}" for p in info["problems"][:20]]
    else:
        lines.append("valid: every image, mask and JSON entry checked")
    return "\n".join(lines)
