"""`simdata render --mode crops`: single objects rendered centred in small crops, in uniformly
random rotations, on black (or randomized backgrounds) — the "Synthetic Cropped LineMOD"
protocol of PixelDA. No physics and no table, so it is far faster than cutting scenes.
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .assets import load_models
from .config import RenderConfig
from .crops import CropWriter, label_for
from .randomize import draw_material, list_images_in, randomize_lighting, style_rng
from .render import SceneRenderer
from .sampling import sample_lighting, scene_rng
from .scene import image_background, image_rng
from .sensors import apply_sensor
from .transforms import invert_transform, look_at, make_transform, random_rotation
from .types import Intrinsics, PlacedObject

FILL = 0.85  # the object's bounding sphere spans this share of the crop


def crop_camera(size: int) -> Intrinsics:
    """Square crop camera with a 45-degree-ish field of view, principal point at the centre."""
    f = 1.2 * size
    return Intrinsics(f, f, (size - 1) / 2, (size - 1) / 2, size, size)


def render_crops(cfg: RenderConfig, count: int, size: int = 64, progress: bool = True) -> dict:
    """Render ``count`` crops into ``cfg.out``; crop i shows object i mod N (balanced classes).

    Returns {"out", "crops", "seconds"}.
    """
    from tqdm import tqdm

    cfg.validate()
    models = load_models(cfg.meshes, cfg.units)
    names = {m.obj_id: m.name for m in models}
    K = crop_camera(size)
    sensor, dr = cfg.sensor_model, cfg.randomize
    writer = CropWriter(Path(cfg.out), {
        "size": size, "background": "randomized" if dr.backgrounds else "black",
        "names": [names[k] for k in sorted(names)], "obj_ids": sorted(names),
        "source": f"render --mode crops --meshes {cfg.meshes}", "config": asdict(cfg)})
    textures = list_images_in(dr.texture_dir) if dr.texture_dir else []
    bg_images = list_images_in(dr.background_dir) if dr.background_dir else []
    start = time.perf_counter()
    try:
        with SceneRenderer(models, K) as renderer:
            for i in tqdm(range(count), unit="crop", desc="crops", disable=not progress):
                rng, srng = scene_rng(cfg.seed, i), style_rng(cfg.seed, i)
                index = i % len(models)
                mesh = models[index].mesh
                center = np.asarray(mesh.bounds).mean(0)
                radius = float(np.linalg.norm(mesh.vertices - center, axis=1).max())
                R = random_rotation(rng)
                T_world_obj = make_transform(R, -R @ center)  # bounding-box centre at the origin
                distance = K.fx * radius / (FILL * size / 2)
                T_world_cam = look_at([0.0, 0.0, distance], [0.0, 0.0, 0.0], up=(0.0, 1.0, 0.0))
                lighting = sample_lighting(rng, cfg.scene)
                material = draw_material(srng, dr, textures) if dr.materials else {"kind": "keep"}
                if dr.lights:  # no point lights: their positions are for table scenes
                    randomize_lighting(srng, dr, lighting, point_lights=False)
                renderer.set_scene([PlacedObject(index, T_world_obj)], None, lighting, [material])
                frame = renderer.render(T_world_cam, normals=not sensor.is_clean)
                mask = frame.masks_visib[0]
                # exactly black (or the background) outside the mask, antialiased fringe included
                bg = (image_background(image_rng(cfg.seed, i, 2, 0), bg_images, (size, size))[0]
                      if dr.backgrounds else 0)
                frame.rgb = np.where(mask[..., None], frame.rgb, bg).astype(np.uint8)
                extra = {}
                if not sensor.is_clean:
                    rgb, depth, _ = apply_sensor(sensor, image_rng(cfg.seed, i, 3, 0), frame.rgb,
                                                 frame.depth_m, frame.normals)
                    extra = {"rgb_clean": frame.rgb, "depth_clean": frame.depth_m}
                    frame.rgb, frame.depth_m = rgb, depth
                T_cam_obj = invert_transform(T_world_cam) @ T_world_obj
                writer.add(frame.rgb, frame.depth_m, mask, label_for(
                    models[index].obj_id, names, T_cam_obj[:3, :3], T_cam_obj[:3, 3], K.K,
                    (0, 0, size), float(mask.any()), None), **extra)
        out = writer.close()
    except BaseException:
        writer.abort()
        raise
    return {"out": out, "crops": count, "seconds": time.perf_counter() - start}
