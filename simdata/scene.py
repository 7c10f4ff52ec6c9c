"""One scene, start to finish: layout (objects, physics, table, lights, cameras), style
(randomized appearance), rendering, sensor model, and writing.

Three independent generators per scene keep switches orthogonal: the layout generator
(seed, i), the style generator (seed, i, 1), and per image (seed, i, 2|3, image) for the
background and the sensor noise.
"""
from __future__ import annotations

import time

import numpy as np

from .config import RenderConfig
from .physics import settle
from .randomize import (bin_rng, draw_bin, draw_clutter, draw_distractor, draw_material, edge_clearance_m,
                        jitter_camera, list_images_in, procedural_background, random_image_patch,
                        randomize_lighting, style_rng)
from .render import SceneRenderer
from .sampling import (sample_cameras, sample_drops, sample_lighting, sample_table, scene_rng,
                       stack_drops, top_of_stack)
from .sensors import apply_sensor
from .transforms import transform_points
from .types import ObjectModel, Scene
from .writers.base import SceneWriter


def image_rng(seed: int, scene_index: int, stream: int, im_id: int) -> np.random.Generator:
    """Per-image generator: stream 2 draws backgrounds, stream 3 sensor noise."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, scene_index, stream, im_id])))


def layout_scene(models: list[ObjectModel], cfg: RenderConfig, scene_index: int) -> Scene:
    """Draw and settle scene ``scene_index``; appearance draws come from the style generator.
    Its objects are the labelled ones that came to rest on the table."""
    rng, srng, dr = scene_rng(cfg.seed, scene_index), style_rng(cfg.seed, scene_index), cfg.randomize
    for attempt in range(cfg.max_attempts):
        table = sample_table(rng, cfg.scene)
        drops = sample_drops(rng, models, cfg.scene)
        n_dist = int(srng.integers(dr.distractors[0], dr.distractors[1] + 1)) if dr.distractors[1] else 0
        extra = [draw_distractor(srng, dr, k) for k in range(n_dist)]
        all_models = models + [m for m, _ in extra]
        drops += stack_drops(srng, all_models, range(len(models), len(all_models)),
                             cfg.scene.drop_radius * 1.5, top_of_stack(models, drops))
        result = settle(all_models, drops, table, cfg.scene.physics)
        kept = [p for p in result.kept if p.model_index < len(models)]
        if kept:
            break
    distractors = [(all_models[p.model_index], p.T_world_obj) for p in result.kept
                   if p.model_index >= len(models)]
    lighting = sample_lighting(rng, cfg.scene)
    target = np.mean([p.T_world_obj[:3, 3] for p in kept], axis=0) if kept else np.zeros(3)
    target = target + np.array([*rng.normal(0, 0.02, 2), 0.0])
    cameras = sample_cameras(rng, target, cfg.scene)

    style: dict = {"randomizers": dr.enabled()}
    textures = list_images_in(dr.texture_dir) if dr.texture_dir else []
    materials = [draw_material(srng, dr, textures) if dr.materials else {"kind": "keep"}
                 for _ in kept]
    if dr.lights:
        randomize_lighting(srng, dr, lighting)
    if dr.camera_jitter_m > 0 or dr.camera_jitter_deg > 0:
        for T in cameras:
            T[:3, 3] += srng.normal(0, dr.camera_jitter_m, 3)
        cameras = [jitter_camera(srng, T, dr) for T in cameras]
    style["materials"] = materials
    style["distractors"] = [spec for _, spec in extra]
    style["distractors_kept"] = len(distractors)
    n_clutter = int(srng.integers(dr.clutter[0], dr.clutter[1] + 1)) if dr.clutter[1] else 0
    clearance = edge_clearance_m(cameras, cfg.scene.intrinsics)
    clutter = [draw_clutter(srng, dr, table.size_xy, k, clearance) for k in range(n_clutter)]
    brng = bin_rng(cfg.seed, scene_index) if dr.bins > 0 else None
    if brng is not None and brng.random() < dr.bins:
        def footprint(m, T):  # (N,2) world xy of the convex hull (trimesh caches the hull)
            return transform_points(T, np.asarray(m.mesh.convex_hull.vertices))[:, :2]
        tote = draw_bin(brng, dr, [footprint(models[p.model_index], p.T_world_obj) for p in kept],
                        [footprint(m, T) for m, T in distractors], len(clutter))
        if tote is not None:
            clutter.append(tote)
    if clutter:
        style["clutter"] = [spec for _, _, spec in clutter]
    return Scene(objects=kept, lighting=lighting, table=table, cameras=cameras, materials=materials,
                 distractors=distractors, clutter=[(m, T, spec["frame"]) for m, T, spec in clutter],
                 dropped=[(i, r) for i, r in result.dropped if i < len(models)],
                 settle_steps=result.steps, at_rest=result.at_rest, attempts=attempt + 1, style=style)


def image_background(rng, images: list, shape) -> tuple[np.ndarray, str]:
    """Background of one image, (h, w) = shape: a random patch of one of ``images``, else
    procedural. Returns the image and what it came from."""
    if images:
        return random_image_patch(rng, images, shape)
    return procedural_background(rng, *shape), "procedural"


def render_scene(models: list[ObjectModel], cfg: RenderConfig, renderer: SceneRenderer,
                 scene_index: int, writer: SceneWriter, scene: Scene | None = None) -> dict:
    """Simulate and render scene ``scene_index`` into ``writer`` and commit it; returns counts
    and timings (s). ``scene``: the scene as ``layout_scene(models, cfg, scene_index)`` made it
    elsewhere (another process or machine; physics is then skipped here). On an error the
    caller, who opened the writer, aborts it."""
    t0 = time.perf_counter()
    if scene is None:
        scene = layout_scene(models, cfg, scene_index)
    t1 = time.perf_counter()
    sensor = cfg.sensor_model
    t_render = t_write = 0.0
    per_image = []
    bg_images = list_images_in(cfg.randomize.background_dir) if cfg.randomize.background_dir else []
    renderer.set_scene(scene)
    for im_id, T_world_cam in enumerate(scene.cameras):
        a = time.perf_counter()
        frame = renderer.render(T_world_cam, normals="normals" in cfg.extras or not sensor.is_clean)
        info: dict = {}
        if cfg.randomize.backgrounds:
            bg, info["background"] = image_background(
                image_rng(cfg.seed, scene_index, 2, im_id), bg_images, frame.rgb.shape[:2])
            frame.rgb = np.where((frame.depth_m > 0)[..., None], frame.rgb, bg)
        if not sensor.is_clean:
            rgb, depth, info["sensor"] = apply_sensor(
                sensor, image_rng(cfg.seed, scene_index, 3, im_id), frame.rgb, frame.depth_m,
                frame.normals, cfg.scene.intrinsics.fx)
            frame.rgb_clean, frame.depth_clean_m = frame.rgb, frame.depth_m
            frame.rgb, frame.depth_m = rgb, depth
        per_image.append(info)
        b = time.perf_counter()
        writer.add_frame(im_id, frame, scene.objects, models)
        t_render += b - a
        t_write += time.perf_counter() - b
    a = time.perf_counter()
    writer.commit({"scene_index": scene_index, "seed": cfg.seed, **scene.record(models),
                   "sensor": sensor.name, "images": per_image})
    t_write += time.perf_counter() - a
    return {"scene": scene_index, "images": len(scene.cameras),
            "instances": len(scene.objects) * len(scene.cameras), "dropped": len(scene.dropped),
            "physics": t1 - t0, "render": t_render, "write": t_write}
