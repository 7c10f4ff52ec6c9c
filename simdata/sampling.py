"""Random scene layout: which objects, where they are dropped, table, lights and cameras.

Every draw comes from a generator seeded by (dataset seed, scene index), so a scene does not
depend on which process renders it or in which order.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .errors import SimdataError
from .physics import PhysicsConfig
from .transforms import look_at, make_transform, random_rotation
from .types import PRIMESENSE, Intrinsics, Lighting, ObjectModel, PlacedObject, Table

Range = tuple[float, float]
TABLE_TEXTURES = ("plain", "checker", "stripes", "noise")


@dataclass
class SceneConfig:
    """How scenes are laid out and viewed. Lengths in metres, angles in degrees."""

    objects: tuple[int, int] = (3, 8)        # objects per scene, inclusive range
    views: int = 4                           # camera views per scene
    distance: Range = (0.55, 1.0)            # camera distance to the look-at point
    elevation_deg: Range = (25.0, 75.0)      # above the table plane
    roll_deg: Range = (-15.0, 15.0)          # about the optical axis
    table_size: Range = (0.8, 1.2)           # side lengths of the table top
    drop_radius: float = 0.15                # objects are dropped within this disc
    ambient: Range = (0.15, 0.4)
    light_intensity: Range = (2.0, 5.0)
    lights: tuple[int, int] = (1, 2)
    table_textures: tuple[str, ...] = TABLE_TEXTURES  # kinds drawn from for the table top
    intrinsics: Intrinsics = field(default_factory=lambda: PRIMESENSE)
    physics: PhysicsConfig = field(default_factory=PhysicsConfig)

    def validate(self) -> "SceneConfig":
        """Raise SimdataError naming the option if a value makes no sense."""
        def check_range(name, r, lo=None, hi=None):
            if len(r) != 2 or r[0] > r[1]:
                raise SimdataError(f"--{name} {r[0]}:{r[1]} is empty: the minimum is above the "
                                   f"maximum; write it as MIN:MAX")
            if lo is not None and r[0] < lo or hi is not None and r[1] > hi:
                raise SimdataError(f"--{name} {r[0]}:{r[1]} is outside [{lo}, {hi}]")
        check_range("objects", self.objects, 1, 64)
        check_range("distance", self.distance, 0.05, 20.0)
        check_range("elevation", self.elevation_deg, 0.0, 90.0)
        check_range("roll", self.roll_deg, -180.0, 180.0)
        check_range("table-size", self.table_size, 0.1, 20.0)
        check_range("lights", self.lights, 0, 8)
        check_range("light-intensity", self.light_intensity, 0.0, 100.0)
        check_range("ambient", self.ambient, 0.0, 1.0)
        bad = set(self.table_textures) - set(TABLE_TEXTURES)
        if bad or not self.table_textures:
            raise SimdataError(f"--table-textures {','.join(self.table_textures)}: choose from "
                               f"{', '.join(TABLE_TEXTURES)}")
        if self.views < 1:
            raise SimdataError(f"--views {self.views} must be at least 1")
        K = self.intrinsics
        if K.width < 8 or K.height < 8 or K.fx <= 0 or K.fy <= 0:
            raise SimdataError(f"camera {K} is invalid: need width/height >= 8 and fx, fy > 0")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


def scene_rng(seed: int, scene_index: int) -> np.random.Generator:
    """The generator for one scene; independent streams for every (seed, index)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, scene_index])))


def _uniform(rng, r: Range) -> float:
    return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])


def sample_drops(rng, models: list[ObjectModel], cfg: SceneConfig) -> list[PlacedObject]:
    """Choose objects and stack their random initial poses above the table, without overlap."""
    k = int(rng.integers(cfg.objects[0], cfg.objects[1] + 1))
    replace = k > len(models)
    chosen = rng.choice(len(models), size=k, replace=replace)
    return stack_drops(rng, models, chosen, cfg.drop_radius)


def stack_drops(rng, models: list[ObjectModel], indices, drop_radius: float,
                start_z: float = 0.02) -> list[PlacedObject]:
    """Random orientations and positions within ``drop_radius``, each model in its own height
    slab (bounding sphere about its origin) starting at ``start_z``: no initial overlap."""
    drops, z = [], start_z
    for index in indices:
        radius = float(np.linalg.norm(models[index].mesh.vertices, axis=1).max())
        r, phi = drop_radius * np.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
        z += radius
        drops.append(PlacedObject(int(index), make_transform(random_rotation(rng),
                                                             [r * np.cos(phi), r * np.sin(phi), z])))
        z += radius + 0.01
    return drops


def top_of_stack(models: list[ObjectModel], drops: list[PlacedObject]) -> float:
    """Height above which new drops cannot touch ``drops`` (metres)."""
    return max((d.T_world_obj[2, 3] + float(np.linalg.norm(models[d.model_index].mesh.vertices,
                                                            axis=1).max()) for d in drops),
               default=0.0) + 0.01


def sample_table(rng, cfg: SceneConfig) -> Table:
    size = (_uniform(rng, cfg.table_size), _uniform(rng, cfg.table_size))
    color = tuple(float(c) for c in rng.uniform(0.25, 0.85, size=3))
    texture = {"kind": str(rng.choice(cfg.table_textures)), "tile_m": float(rng.uniform(0.05, 0.3)),
               "color2_rgb": [float(c) for c in rng.uniform(0.1, 0.9, size=3)],
               "seed": int(rng.integers(2**31))}
    return Table(size_xy=size, color_rgb=color, texture=texture)


def sample_lighting(rng, cfg: SceneConfig) -> Lighting:
    n = int(rng.integers(cfg.lights[0], cfg.lights[1] + 1))
    directions, intensities = [], []
    for _ in range(n):
        elev, azim = np.radians(rng.uniform(35, 90)), rng.uniform(0, 2 * np.pi)
        # light shines downwards onto the table
        directions.append(-np.array([np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim),
                                     np.sin(elev)]))
        intensities.append(_uniform(rng, cfg.light_intensity))
    a = _uniform(rng, cfg.ambient)
    return Lighting(ambient=(a, a, a), directions=directions, intensities=intensities)


def sample_cameras(rng, target: np.ndarray, cfg: SceneConfig) -> list[np.ndarray]:
    """``cfg.views`` OpenCV camera poses T_world_cam on a hemisphere, looking at ``target``."""
    poses = []
    for _ in range(cfg.views):
        d = _uniform(rng, cfg.distance)
        elev = np.radians(_uniform(rng, cfg.elevation_deg))
        azim = rng.uniform(0, 2 * np.pi)
        eye = target + d * np.array([np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim),
                                     np.sin(elev)])
        poses.append(look_at(eye, target, roll_rad=np.radians(_uniform(rng, cfg.roll_deg))))
    return poses
