"""`simdata render --mode crops`: single objects rendered in small crops on black (or randomized
backgrounds), no physics and no table, so it is far faster than cutting scenes. Two pose
protocols (``--poses``):

- ``viewpoints`` (default), PixelDA's Cropped LineMOD after Wohlhart & Lepetit: each object
  rests on its most stable face, or stands as modelled with ``--crop-rest upright`` (resting
  plane z = 0 of the world, z up), and is seen
  from a camera on the upper hemisphere (elevation, azimuth, distance), rolled about its
  optical axis (in-plane rotation); the object's centre projects anywhere in the central part of
  a virtual full camera image (PrimeSense 640x480 unless --width/--fx/... say otherwise), and
  the crop is cut around it the way ``simdata crops`` cuts real frames: a square of 1.2x the
  object's silhouette box, centred on it, resized to size x size. It is rendered directly at
  that size with the crop's own intrinsics, so K differs crop to crop like crops of real frames.
- ``uniform``: a uniformly random 3D rotation at a fixed distance, centred (the old protocol;
  most of its orientations never occur in front of a real camera).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from .assets import load_models
from .config import RenderConfig
from .crops import CROP_PAD, crop_intrinsics, label_for
from .diskcache import array_digest, cached_json
from .errors import SimdataError
from .randomize import draw_material, list_images_in, randomize_lighting, style_rng
from .render import SceneRenderer, resolve_msaa
from .sampling import sample_lighting, scene_rng
from .scene import image_background, image_rng
from .sensors import apply_sensor
from .symmetry import symmetries_for_models
from .transforms import (invert_transform, look_at, make_transform, project_points,
                         random_rotation, transform_points)
from .types import PRIMESENSE, Intrinsics, ObjectModel, PlacedObject, Scene
from .writers.crops import CropWriter

FILL = 0.85  # uniform poses: the object's bounding sphere spans this share of the crop
PAD = CROP_PAD  # viewpoint poses: crop side / longer side of the object's silhouette box
POSES = ("viewpoints", "uniform")


def crop_camera(size: int) -> Intrinsics:
    """Square crop camera with a 45-degree-ish field of view, principal point at the centre."""
    f = 1.2 * size
    return Intrinsics(f, f, (size - 1) / 2, (size - 1) / 2, size, size)


@dataclass
class ViewpointConfig:
    """Camera viewpoints of ``--poses viewpoints`` (ranges are (MIN, MAX), drawn uniformly).

    elevation_deg  angle of the camera above the resting plane, seen from the object's centre
                   (--crop-elevation; 10..80: the hemisphere above the table, no grazing or
                   straight-down views); drawn uniformly over the sphere's area in that band
    azimuth_deg    camera direction about the world's vertical (--crop-azimuth)
    inplane_deg    rotation of the camera about its optical axis (--crop-inplane); positive
                   turns the camera clockwise as seen from behind it, so the object appears
                   turned counter-clockwise in the image
    distance_m     camera to the object's centre (bounding-box centre), metres (--crop-distance;
                   about LineMOD's)
    offcentre      the object's centre projects uniformly into the central ``offcentre`` share
                   of the full image's width and height around its principal point
                   (--crop-offcentre; 0 = always on the principal point)
    intrinsics     the virtual full camera the crops are cut from (PrimeSense 640x480)
    rest           how the object stands (--crop-rest): "stable", on its most stable face
                   (convex hull and centre of mass); "upright", as modelled, +z up (models
                   authored standing, such as LineMOD's and BOP's, on their lowest point)
    """

    elevation_deg: tuple[float, float] = (10.0, 80.0)
    azimuth_deg: tuple[float, float] = (0.0, 360.0)
    inplane_deg: tuple[float, float] = (-30.0, 30.0)
    distance_m: tuple[float, float] = (0.5, 1.0)
    offcentre: float = 0.5
    intrinsics: Intrinsics = PRIMESENSE
    rest: str = "stable"

    def validate(self) -> "ViewpointConfig":
        if self.rest not in RESTS:
            raise SimdataError(f"--crop-rest {self.rest!r}: use {' or '.join(RESTS)}")

        def check(flag, r, lo, hi, unit):
            a, b = (float(v) for v in r)
            if not (math.isfinite(a) and math.isfinite(b) and lo <= a <= b <= hi):
                raise SimdataError(f"{flag} {a:g}:{b:g} must satisfy {lo:g} <= MIN <= MAX <= "
                                   f"{hi:g} {unit}")
        check("--crop-elevation", self.elevation_deg, 0, 90, "degrees")
        check("--crop-azimuth", self.azimuth_deg, -360, 360, "degrees")
        if self.azimuth_deg[1] - self.azimuth_deg[0] > 360:
            raise SimdataError(f"--crop-azimuth {self.azimuth_deg[0]:g}:{self.azimuth_deg[1]:g} "
                               f"spans more than 360 degrees")
        check("--crop-inplane", self.inplane_deg, -180, 180, "degrees")
        check("--crop-distance", self.distance_m, 1e-3, 100, "metres")
        if not 0 <= self.offcentre <= 1:
            raise SimdataError(f"--crop-offcentre {self.offcentre:g} must be within 0..1 "
                               f"(share of the full image)")
        return self


@dataclass
class RestingModel:
    """A model at rest (stable face, or upright): T_world_obj puts it on the plane z = 0."""

    T_world_obj: np.ndarray
    center_world: np.ndarray   # bounding-box centre, world frame (what the camera looks at)
    hull_world: np.ndarray     # convex hull vertices, world frame (the silhouette's extremes)
    up_model: np.ndarray       # world z (the resting plane's normal) in the model frame


def resting_pose(model: ObjectModel) -> np.ndarray:
    """T_world_obj (4,4) of ``model`` resting on its most stable face on the plane z = 0
    (trimesh's stable poses of the convex hull about the centre of mass: the URDF's when known).
    The most probable pose; ties (a can's top and bottom) go to the pose whose up direction is
    closest to the model's +z, then to trimesh's order. Deterministic."""
    mesh = model.mesh
    com = np.asarray(model.com_m if model.com_m is not None else mesh.convex_hull.center_mass, float)

    def compute():
        transforms, probs = mesh.compute_stable_poses(center_mass=com, sigma=0.0, n_samples=1,
                                                      threshold=0.0)
        if len(probs) == 0:
            return None
        probs = np.asarray(probs)
        best = np.flatnonzero(probs >= probs.max() - 1e-9)
        up_z = [np.asarray(transforms[i])[2, 2] for i in best]  # (R^T e_z) . e_z = R[2, 2]
        return np.asarray(transforms[best[int(np.argmax(np.round(up_z, 9)))]], float).tolist()

    # trimesh takes 0.4 s per 15k-triangle model: cached by the numbers it depends on
    key = array_digest(np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64),
                       com, version="resting-pose-v1")
    T = cached_json("resting_poses", key, compute)
    if T is None:
        raise SimdataError(f"{model.name}: trimesh found no stable pose for its mesh")
    return np.asarray(T, float)


RESTS = ("stable", "upright")


def upright_pose(model: ObjectModel) -> np.ndarray:
    """T_world_obj (4,4) of ``model`` as modelled (+z up), lowest point on the plane z = 0."""
    T = np.eye(4)
    T[2, 3] = -float(np.asarray(model.mesh.vertices)[:, 2].min())
    return T


def rest(model: ObjectModel, how: str = "stable") -> RestingModel:
    T = resting_pose(model) if how == "stable" else upright_pose(model)
    mesh = model.mesh
    return RestingModel(T, transform_points(T, np.asarray(mesh.bounds).mean(0)[None])[0],
                        transform_points(T, np.asarray(mesh.convex_hull.vertices)),
                        T[2, :3].copy())


def _rotation_z_to(r: np.ndarray) -> np.ndarray:
    """Smallest rotation taking +z to the unit vector ``r`` (Rodrigues)."""
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(z, r)
    s, c = np.linalg.norm(axis), float(r[2])
    if s < 1e-12:
        return np.eye(3)
    k = axis / s
    Kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * Kx + (1 - c) * Kx @ Kx


def sample_viewpoint(rng: np.random.Generator, vp: ViewpointConfig, obj: RestingModel,
                     size: int, pad: float = PAD):
    """Draw one viewpoint of a resting object -> (T_world_cam, K_crop (3,3), box (x0, y0, side)
    in the full image's pixels, viewpoint dict). The box is the square of ``pad`` x the longer
    side of the projected silhouette box, centred on it (integer pixels, like a cut crop)."""
    lo, hi = np.sin(np.radians(vp.elevation_deg))
    elev = float(np.degrees(np.arcsin(np.clip(rng.uniform(lo, hi), -1.0, 1.0))))
    azim = float(rng.uniform(*vp.azimuth_deg))
    inplane = float(rng.uniform(*vp.inplane_deg))
    dist = float(rng.uniform(*vp.distance_m))
    full = vp.intrinsics
    u = full.cx + float(rng.uniform(-0.5, 0.5)) * vp.offcentre * full.width
    v = full.cy + float(rng.uniform(-0.5, 0.5)) * vp.offcentre * full.height
    e, a = np.radians(elev), np.radians(azim)
    eye = obj.center_world + dist * np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a),
                                              np.sin(e)])
    T_world_cam = look_at(eye, obj.center_world, up=(0.0, 0.0, 1.0), roll_rad=np.radians(inplane))
    # turn the camera about its centre so that the object's centre lands on pixel (u, v)
    ray = np.linalg.solve(full.K, [u, v, 1.0])
    T_world_cam[:3, :3] = T_world_cam[:3, :3] @ _rotation_z_to(ray / np.linalg.norm(ray)).T
    pts = transform_points(invert_transform(T_world_cam), obj.hull_world)
    if pts[:, 2].min() < 0.02:
        raise SimdataError(f"--crop-distance {vp.distance_m[0]:g}:{vp.distance_m[1]:g}: the camera "
                           f"is inside or too close to an object; use a larger distance")
    uv = project_points(pts, full.K)
    (x_lo, y_lo), (x_hi, y_hi) = uv.min(0), uv.max(0)
    side = max(int(np.ceil(max(x_hi - x_lo, y_hi - y_lo) * pad)), 2)
    box = (int(round((x_lo + x_hi) / 2 - side / 2 + 0.5)),
           int(round((y_lo + y_hi) / 2 - side / 2 + 0.5)), side)
    view = {"elevation_deg": elev, "azimuth_deg": azim, "inplane_deg": inplane,
            "distance_m": dist}
    return T_world_cam, crop_intrinsics(full.K, box, size), box, view


class _CropJob:
    """Everything one process needs to render crop i of a run (the parent's, or a pool
    worker's: a crop depends only on the run's settings and i, so the output does not depend
    on --workers)."""

    def __init__(self, cfg: RenderConfig, models: list[ObjectModel], size: int,
                 vp: ViewpointConfig | None, resting: list[RestingModel]):
        self.cfg, self.models, self.size, self.vp, self.resting = cfg, models, size, vp, resting
        self.names = {m.obj_id: m.name for m in models}
        self.K = crop_camera(size)
        dr = cfg.randomize
        self.textures = list_images_in(dr.texture_dir) if dr.texture_dir else []
        self.bg_images = list_images_in(dr.background_dir) if dr.background_dir else []
        self.renderer = SceneRenderer(models, self.K, msaa=cfg.msaa)
        self._spheres: dict[int, tuple] = {}  # uniform poses: model index -> (box centre, radius)

    def _bounding_sphere(self, index: int) -> tuple[np.ndarray, float]:
        """(box centre (3,), radius of the vertices about it) of model ``index``, metres; computed
        once per model (a real YCB mesh has 8k vertices), not per crop."""
        if index not in self._spheres:
            mesh = self.models[index].mesh
            center = np.asarray(mesh.bounds).mean(0)
            self._spheres[index] = (center, float(np.linalg.norm(mesh.vertices - center, axis=1).max()))
        return self._spheres[index]

    def crop(self, i: int) -> tuple:
        """(rgb, depth_m, mask, label, privileged arrays) of crop i: object i mod N."""
        cfg, models, size, vp, K, renderer = (self.cfg, self.models, self.size, self.vp, self.K,
                                              self.renderer)
        sensor, dr = cfg.sensor_model, cfg.randomize
        rng, srng = scene_rng(cfg.seed, i), style_rng(cfg.seed, i)
        index = i % len(models)
        if vp is None:  # uniform: a random rotation, centred at a fixed distance
            center, radius = self._bounding_sphere(index)
            R = random_rotation(rng)
            T_world_obj = make_transform(R, -R @ center)  # box centre at the origin
            distance = K.fx * radius / (FILL * size / 2)
            T_world_cam = look_at([0.0, 0.0, distance], [0.0, 0.0, 0.0], up=(0.0, 1.0, 0.0))
            K_crop, box, extra_label = K.K, (0, 0, size), {}
        else:  # viewpoints: the resting object from the upper hemisphere, cut like a frame
            T_world_obj = self.resting[index].T_world_obj
            T_world_cam, K_crop, box, view = sample_viewpoint(rng, vp, self.resting[index], size)
            renderer.set_intrinsics(Intrinsics(K_crop[0, 0], K_crop[1, 1], K_crop[0, 2],
                                               K_crop[1, 2], size, size))
            extra_label = {"viewpoint": view}
        lighting = sample_lighting(rng, cfg.scene)
        material = draw_material(srng, dr, self.textures) if dr.materials else {"kind": "keep"}
        if dr.lights:  # no point lights: their positions are for table scenes
            randomize_lighting(srng, dr, lighting, point_lights=False)
        renderer.set_scene(Scene([PlacedObject(index, T_world_obj)], lighting, materials=[material]))
        frame = renderer.render(T_world_cam, normals=not sensor.is_clean)
        mask = frame.masks_visib[0]
        # exactly black (or the background) outside the mask, antialiased fringe included
        bg = (image_background(image_rng(cfg.seed, i, 2, 0), self.bg_images, (size, size))[0]
              if dr.backgrounds else 0)
        frame.rgb = np.where(mask[..., None], frame.rgb, bg).astype(np.uint8)
        extra = {}
        if not sensor.is_clean:
            rgb, depth, _ = apply_sensor(sensor, image_rng(cfg.seed, i, 3, 0), frame.rgb,
                                         frame.depth_m, frame.normals, float(K_crop[0, 0]))
            extra = {"rgb_clean": frame.rgb, "depth_clean": frame.depth_m}
            frame.rgb, frame.depth_m = rgb, depth
        T_cam_obj = invert_transform(T_world_cam) @ T_world_obj
        label = label_for(models[index].obj_id, self.names, T_cam_obj[:3, :3], T_cam_obj[:3, 3],
                          K_crop, box, float(mask.any()), None) | extra_label
        return frame.rgb, frame.depth_m, mask, label, extra

    def close(self) -> None:
        self.renderer.close()


# The crop job of a pool worker (set once by the pool initializer, never in the parent).
_worker_job: dict = {}


def _init_crop_worker(*args) -> None:
    _worker_job["job"] = _CropJob(*args)


def _crop_chunk(indices: range) -> list[tuple]:
    job = _worker_job["job"]
    return [job.crop(i) for i in indices]


CHUNK = 16  # crops per pool task: small enough to keep every worker busy, big enough to batch


def _rendered_crops(job_args: tuple, count: int, workers: int):
    """Crops 0..count-1 in order, from this process or a pool of ``workers`` processes."""
    if workers <= 1 or count <= CHUNK:
        job = _CropJob(*job_args)
        try:
            for i in range(count):
                yield job.crop(i)
        finally:
            job.close()
        return
    from .pools import worker_executor

    chunks = [range(a, min(a + CHUNK, count)) for a in range(0, count, CHUNK)]
    with worker_executor(min(workers, len(chunks)), _init_crop_worker, job_args,
                         who="a crop-rendering worker process",
                         then="nothing was written: rerun the command") as pool:
        for crops in pool.map(_crop_chunk, chunks):  # in order: the writer's shards too
            yield from crops


def render_crops(cfg: RenderConfig, count: int, size: int = 64, progress: bool = True,
                 poses: str = "viewpoints", viewpoints: ViewpointConfig | None = None) -> dict:
    """Render ``count`` crops into ``cfg.out``; crop i shows object i mod N (balanced classes).

    ``poses``: "viewpoints" (resting objects seen from the upper hemisphere, ranges in
    ``viewpoints``, default :class:`ViewpointConfig`) or "uniform" (random 3D rotations).
    ``cfg.workers`` processes render in parallel; the output does not depend on their number.
    Returns {"out", "crops", "seconds"}.
    """
    from tqdm import tqdm

    cfg.validate()
    if poses not in POSES:
        raise SimdataError(f"--poses {poses!r}: use {' or '.join(POSES)}")
    vp = (viewpoints or ViewpointConfig()).validate() if poses == "viewpoints" else None
    unused = [n for n in ("distractors", "clutter", "bins") if n in cfg.randomize.enabled()]
    if unused:  # a crop holds one object alone: nothing else is placed
        raise SimdataError(f"--randomize {','.join(unused)} cannot be honoured by --mode crops (one "
                           f"object per crop); use materials, lights, backgrounds, camera")
    cfg = replace(cfg, msaa=resolve_msaa(cfg.msaa))  # the count rendered with is recorded
    if cfg.workers > 1 and count > CHUNK:
        from .pools import start_fork_server

        start_fork_server()  # the pool's processes: their imports overlap loading the models
    models = load_models(cfg.meshes, cfg.units, cfg.max_texture)
    names = {m.obj_id: m.name for m in models}
    resting = [rest(m, vp.rest) for m in models] if vp else []
    dr = cfg.randomize
    writer = CropWriter(Path(cfg.out), {
        "size": size, "background": "randomized" if dr.backgrounds else "black",
        "names": [names[k] for k in sorted(names)], "obj_ids": sorted(names),
        "source": f"render --mode crops --meshes {cfg.meshes}", "config": asdict(cfg)},
        models=models, symmetries=symmetries_for_models(models, cfg.symmetries))
    writer.info["poses"] = poses
    if vp is not None:
        writer.info["viewpoints"] = {**asdict(vp), "pad": PAD, "resting_up_model": {
            m.name: [round(float(c), 6) + 0.0 for c in r.up_model] for m, r in zip(models, resting)}}
    start = time.perf_counter()
    try:
        crops = _rendered_crops((cfg, models, size, vp, resting), count, cfg.workers)
        for rgb, depth, mask, label, extra in tqdm(crops, total=count, unit="crop", desc="crops",
                                                   disable=not progress):
            writer.add(rgb, depth, mask, label, **extra)
        out = writer.close()
    except BaseException:
        writer.abort()
        raise
    return {"out": out, "crops": count, "seconds": time.perf_counter() - start}
