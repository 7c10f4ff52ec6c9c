"""Domain randomization: seeded draws of how a scene looks (not where things are).

Everything here is drawn from the scene's *style* generator, separate from the layout
generator, so switching a randomizer on changes appearance without moving objects (except
distractors, which take part in physics). Every draw is returned as plain data and stored in
the dataset (scene_simdata.json), so each image's settings can be read back.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from .errors import SimdataError

Range = tuple[float, float]
PATTERNS = ("plain", "checker", "stripes", "noise")
MATERIAL_KINDS = ("color", "checker", "stripes", "noise", "image")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp")


@dataclass
class RandomizationConfig:
    """Switches and ranges of the randomizers. All off by default (``enabled()`` is empty)."""

    materials: bool = False              # replace object materials
    material_prob: float = 0.8           # share of instances whose material is replaced
    material_kinds: tuple[str, ...] = MATERIAL_KINDS
    texture_dir: str = ""                # images for kind "image" ("" = that kind is skipped)
    roughness: Range = (0.2, 1.0)
    metallic: Range = (0.0, 0.4)
    lights: bool = False                 # light colours and extra point lights
    light_temperature_k: Range = (2700.0, 7500.0)
    point_lights: tuple[int, int] = (1, 3)
    point_intensity: Range = (1.0, 6.0)  # pyrender point light intensity (candela-like)
    backgrounds: bool = False            # images behind the table where nothing is hit
    background_dir: str = ""             # "" = procedural backgrounds
    distractors: tuple[int, int] = (0, 0)   # primitives dropped with the objects, not labelled
    distractor_size_m: Range = (0.02, 0.09)
    # things in view that are not objects on the table, rendered only (no physics) and written
    # as mask_clutter: shelves, walls and bins beyond the table's edges, and robot links
    # hovering over it (a wrist or head camera sees its own arm and gripper)
    clutter: tuple[int, int] = (0, 0)
    clutter_hover_m: Range = (0.01, 0.25)  # gap between a hovering link and the top
    # share of scenes whose objects stand in a bin (a tote's four walls around them, rendered
    # only and written as mask_clutter: not an object); robots pick from bins as often as from
    # tables, and a wall is a raised shape that is not an object
    bins: float = 0.0
    bin_wall_height_m: Range = (0.03, 0.2)
    bin_margin_m: Range = (0.005, 0.08)   # free floor between the objects and each wall
    bin_max_side_m: float = 0.8           # objects spread wider than this stand in no bin
    camera_jitter_m: float = 0.0         # look-at point jitter (std, metres)
    camera_jitter_deg: float = 0.0       # extra rotation of each camera (std, degrees)

    def enabled(self) -> list[str]:
        on = [n for n in ("materials", "lights", "backgrounds") if getattr(self, n)]
        if self.distractors[1] > 0:
            on.append("distractors")
        if self.clutter[1] > 0:
            on.append("clutter")
        if self.bins > 0:
            on.append("bins")
        if self.camera_jitter_m > 0 or self.camera_jitter_deg > 0:
            on.append("camera")
        return on

    def validate(self) -> "RandomizationConfig":
        bad = set(self.material_kinds) - set(MATERIAL_KINDS)
        if bad or not self.material_kinds:
            raise SimdataError(f"material kinds {sorted(bad) or '[]'} unknown; choose from "
                               f"{', '.join(MATERIAL_KINDS)}")
        if self.distractors[0] > self.distractors[1] or self.distractors[0] < 0:
            raise SimdataError(f"--distractors {self.distractors[0]}:{self.distractors[1]} is "
                               f"empty; write MIN:MAX")
        if self.clutter[0] > self.clutter[1] or self.clutter[0] < 0:
            raise SimdataError(f"--clutter {self.clutter[0]}:{self.clutter[1]} is empty; write "
                               f"MIN:MAX")
        if not 0 <= self.bins <= 1:
            raise SimdataError(f"--bins {self.bins:g} is a share of scenes: give 0..1")
        for name in ("texture_dir", "background_dir"):
            folder = getattr(self, name)
            if folder and not list_images_in(folder):
                raise SimdataError(f"{name.replace('_', '-')} {folder} holds no images "
                                   f"({'/'.join(IMAGE_EXTS)}); give a folder of pictures")
        return self

    @classmethod
    def from_file(cls, path: str | Path, **overrides) -> "RandomizationConfig":
        """Read a JSON file of field -> value (lists for ranges); unknown keys are an error."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise SimdataError(f"cannot read randomization config {path}: {e}") from None
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise SimdataError(f"{path}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**{**data, **overrides})

    def to_dict(self) -> dict:
        return asdict(self)


def style_rng(seed: int, scene_index: int) -> np.random.Generator:
    """Generator of a scene's appearance, independent of its layout generator."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, scene_index, 1])))


def list_images_in(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS)


# ----------------------------------------------------------------------------- patterns
def pattern_image(kind: str, color1, color2, seed: int = 0, size: int = 256) -> np.ndarray:
    """(size,size,3) uint8 tileable pattern mixing two RGB colours in [0,1]."""
    c1, c2 = np.asarray(color1, float) * 255, np.asarray(color2, float) * 255
    y, x = np.mgrid[0:size, 0:size] / size
    if kind == "checker":
        w = ((x < 0.5) ^ (y < 0.5)).astype(float)
    elif kind == "stripes":
        w = (np.sin(2 * np.pi * 4 * x) > 0).astype(float)
    elif kind == "noise":  # smooth value noise, tileable (filtered in the Fourier domain)
        coarse = np.random.default_rng(seed).random((8, 8))
        w = np.kron(coarse, np.ones((size // 8, size // 8)))
        k = np.fft.fftfreq(size)[:, None] ** 2 + np.fft.fftfreq(size)[None] ** 2
        w = np.real(np.fft.ifft2(np.fft.fft2(w) * np.exp(-k * 4000)))
        w = (w - w.min()) / max(np.ptp(w), 1e-9)
    elif kind == "plain":
        w = np.zeros_like(x)
    else:
        raise ValueError(f"unknown pattern {kind!r}")
    img = (1 - w[..., None]) * c1 + w[..., None] * c2
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def vertex_pattern(vertices: np.ndarray, kind: str, color1, color2, period_m: float,
                   seed: int = 0) -> np.ndarray:
    """(N,4) uint8 vertex colours of a 3D pattern, for meshes without UV coordinates."""
    rng = np.random.default_rng(seed)
    v = np.asarray(vertices) / period_m
    if kind == "checker":
        w = (np.floor(v).sum(1) % 2).astype(float)
    elif kind == "stripes":
        axis = rng.normal(size=3)
        w = (np.sin(2 * np.pi * v @ (axis / np.linalg.norm(axis))) > 0).astype(float)
    elif kind == "noise":
        dirs, phases = rng.normal(size=(6, 3)), rng.uniform(0, 2 * np.pi, 6)
        w = np.sin(v @ dirs.T * 2 + phases).sum(1)
        w = (w - w.min()) / max(np.ptp(w), 1e-9)
    else:
        w = np.zeros(len(v))
    rgb = (1 - w[:, None]) * np.asarray(color1) + w[:, None] * np.asarray(color2)
    return np.concatenate([np.round(rgb * 255), np.full((len(v), 1), 255)], 1).astype(np.uint8)


def random_image_patch(rng, folder_images: list[Path], size: tuple[int, int]) -> tuple[np.ndarray, str]:
    """A random crop of a random image from a folder, resized to size (h, w). Returns the
    image (uint8 RGB) and the file used."""
    import cv2

    from .fileio import read_image

    path = folder_images[int(rng.integers(len(folder_images)))]
    img = read_image(path, cv2.IMREAD_COLOR)
    h, w = img.shape[:2]
    ch, cw = size
    scale = max(ch / h, cw / w) * rng.uniform(1.0, 1.6)
    img = cv2.resize(img, (max(cw, int(round(w * scale))), max(ch, int(round(h * scale)))),
                     interpolation=cv2.INTER_AREA)
    y0 = int(rng.integers(img.shape[0] - ch + 1))
    x0 = int(rng.integers(img.shape[1] - cw + 1))
    return np.ascontiguousarray(img[y0:y0 + ch, x0:x0 + cw]), str(path)


def procedural_background(rng, height: int, width: int) -> np.ndarray:
    """A cluttered-looking background: a colour gradient, random shapes and soft noise."""
    import cv2

    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    c1, c2 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    a = rng.uniform(0, 2 * np.pi)
    t = (np.cos(a) * x + np.sin(a) * y)
    t = (t - t.min()) / max(np.ptp(t), 1e-9)
    img = ((1 - t[..., None]) * c1 + t[..., None] * c2) * 255
    img = img.astype(np.uint8).copy()
    for _ in range(int(rng.integers(5, 20))):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        cx, cy = int(rng.integers(width)), int(rng.integers(height))
        r = int(rng.integers(max(height, width) // 30 + 1, max(height, width) // 5 + 2))
        if rng.random() < 0.5:
            cv2.circle(img, (cx, cy), r, color, -1)
        else:
            cv2.rectangle(img, (cx - r, cy - r // 2), (cx + r, cy + r // 2), color, -1)
    noise = cv2.GaussianBlur(rng.normal(0, 12, (height, width, 3)), (0, 0), 3)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- draws
def kelvin_to_rgb(kelvin: float) -> np.ndarray:
    """Approximate RGB (max 1) of a black body at ``kelvin`` (Tanner Helland's fit)."""
    t = kelvin / 100.0
    r = 255.0 if t <= 66 else 329.698727446 * (t - 60) ** -0.1332047592
    g = 99.4708025861 * np.log(t) - 161.1195681661 if t <= 66 else 288.1221695283 * (t - 60) ** -0.0755148492
    b = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.5177312231 * np.log(t - 10) - 305.0447927307)
    rgb = np.clip([r, g, b], 0, 255) / 255.0
    return rgb / rgb.max()


def draw_material(rng, cfg: RandomizationConfig, textures: list[Path]) -> dict:
    """One material: {"kind", "color", "color2", "roughness", "metallic", "seed", "period_m"}."""
    kinds = [k for k in cfg.material_kinds if k != "image" or textures]
    if rng.random() >= cfg.material_prob or not kinds:
        return {"kind": "keep"}
    kind = str(rng.choice(kinds))
    m = {"kind": kind, "color": rng.uniform(0, 1, 3).tolist(), "color2": rng.uniform(0, 1, 3).tolist(),
         "roughness": float(rng.uniform(*cfg.roughness)), "metallic": float(rng.uniform(*cfg.metallic)),
         "seed": int(rng.integers(2**31)), "period_m": float(rng.uniform(0.01, 0.05))}
    if kind == "image":
        m["image"] = str(textures[int(rng.integers(len(textures)))])
    return m


def paint(mesh, rgb_255) -> np.ndarray:
    """Colour every vertex of ``mesh`` (trimesh, in place) with ``rgb_255`` (3,) in 0..255;
    returns the RGBA (4,) uint8 it wore."""
    import trimesh

    color = np.append(rgb_255, 255).astype(np.uint8)
    mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=np.tile(color, (len(mesh.vertices), 1)))
    return color


def draw_point_lights(rng, cfg: RandomizationConfig) -> list[dict]:
    lights = []
    for _ in range(int(rng.integers(cfg.point_lights[0], cfg.point_lights[1] + 1))):
        r, a = rng.uniform(0.3, 1.0), rng.uniform(0, 2 * np.pi)
        lights.append({"position": [r * np.cos(a), r * np.sin(a), float(rng.uniform(0.4, 1.5))],
                       "color": kelvin_to_rgb(rng.uniform(*cfg.light_temperature_k)).tolist(),
                       "intensity": float(rng.uniform(*cfg.point_intensity))})
    return lights


def randomize_lighting(rng, cfg: RandomizationConfig, lighting, point_lights: bool = True) -> None:
    """Give the directional lights random colour temperatures and add point lights (in place)."""
    lighting.colors = [kelvin_to_rgb(rng.uniform(*cfg.light_temperature_k)).tolist()
                       for _ in lighting.directions]
    if point_lights:
        lighting.points = draw_point_lights(rng, cfg)


def draw_distractor(rng, cfg: RandomizationConfig, index: int):
    """A random primitive (box, cylinder, sphere or capsule) as an ObjectModel, metres."""
    import trimesh

    from .types import ObjectModel

    s = rng.uniform(*cfg.distractor_size_m, size=3)
    kind = str(rng.choice(["box", "cylinder", "sphere", "capsule"]))
    if kind == "box":
        mesh = trimesh.creation.box(s)
    elif kind == "cylinder":
        mesh = trimesh.creation.cylinder(s[0] / 2, s[1], sections=24)
    elif kind == "sphere":
        mesh = trimesh.creation.icosphere(subdivisions=2, radius=s[0] / 2)
    else:
        mesh = trimesh.creation.capsule(height=s[1], radius=s[0] / 3, count=[12, 12])
    color = paint(mesh, rng.uniform(0, 1, 3) * 255)
    return ObjectModel(obj_id=0, name=f"distractor_{index}_{kind}", mesh=mesh,
                       source=Path(f"<{kind}>")), {"kind": kind, "size_m": s.tolist(),
                                                  "color": (color[:3] / 255).tolist()}


def edge_clearance_m(cameras, intrinsics) -> np.ndarray:
    """Depth (camera z, metres) at which the rays through the middles of the image's bottom,
    left, top and right edges meet the table plane z = 0, the smallest over ``cameras``
    (T_world_cam, OpenCV axes); inf for a ray that never meets it. (4,)"""
    k = intrinsics
    pixels = np.array([[k.cx, k.height], [0, k.cy], [k.cx, 0], [k.width, k.cy]], float)
    rays = np.stack([(pixels[:, 0] - k.cx) / k.fx, (pixels[:, 1] - k.cy) / k.fy,
                     np.ones(4)], 1)  # camera frame, unit z: the hit's depth is its ray length
    out = np.full(4, np.inf)
    for T in cameras:
        down = -(rays @ T[:3, :3].T)[:, 2]  # fall of the world z per unit of camera depth
        hit = np.where(down > 1e-6, T[2, 3] / np.maximum(down, 1e-6), np.inf)
        out = np.minimum(out, hit)
    return out


def draw_gripper(rng, clearance_m=None):
    """A parallel-jaw hand seen by a camera on the wrist, as (trimesh, T_cam_hand, size (3,),
    metres, OpenCV camera frame). Hands differ a lot (a Franka hand's 2 cm fingers 8 cm apart,
    pads of industrial jaws 8 cm wide and 20 cm apart, a camera 15 or 60 cm behind the
    fingertips; a two-armed robot's camera sees two wrists 15 cm thick), so all of that is
    drawn: "fingers" 1.5-16 cm wide, boxes or rounded, 4-18 cm long, 2-25 cm apart (at most
    about half the image), pitched 0-75 deg away from the camera (from along the image plane to
    almost along the optical axis), the palm at one image edge (the bottom in half of the
    draws), at 50-100 % of the depth that keeps the fingertips 10 % short of the table (that
    depth at most 1 m and at least 15 cm; 0.6 m without ``clearance_m``, (4,): the depth at
    which the bottom, left, top and right edges see the table, edge_clearance_m)."""
    import trimesh

    from .transforms import make_transform

    finger, pitch = rng.uniform(0.04, 0.18), np.radians(rng.uniform(0, 75))  # tips away (+z)
    palm_y, palm_z = rng.uniform(0.02, 0.06), rng.uniform(0.03, 0.1)
    edge = int(rng.choice(4, p=[0.5, 1 / 6, 1 / 6, 1 / 6]))  # bottom, left, top, right
    reach = (finger + palm_y) * np.sin(pitch) + palm_z  # depth from the palm to the tips
    far = 0.6 if clearance_m is None else min(1.0, 0.9 * float(clearance_m[edge]) - reach)
    far = max(far, 0.15)
    z = rng.uniform(max(0.12, 0.5 * far), far)
    # fingers, or the wrists and forearms of a two-armed robot; together at most about half
    # the image wide: a hand that fills the view hides the task
    width = rng.uniform(0.015, max(0.015, min(0.16, 0.3 * z)))
    thick = rng.uniform(0.01, max(0.05, width))
    gap = rng.uniform(0.02, max(0.02, min(0.25, 0.6 * z)))
    palm = np.array([gap + 2 * width + rng.uniform(0, 0.04), palm_y, palm_z])
    parts = [trimesh.creation.box(palm)]
    rounded = rng.random() < 0.5
    for side in (-1, 1):  # fingers point along -y: into the image from its bottom edge
        if rounded:  # a capsule along y (trimesh's runs along z)
            f = trimesh.creation.capsule(height=max(finger - width, 1e-3), radius=width / 2,
                                         count=[10, 10])
            f.apply_transform(make_transform(np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], float),
                                             np.zeros(3)))
        else:
            f = trimesh.creation.box((width, finger, thick))
        f.apply_translation((side * (gap + width) / 2, -(finger + palm[1]) / 2, 0))
        parts.append(f)
    mesh = trimesh.util.concatenate(parts)
    Rp = np.array([[1, 0, 0], [0, np.cos(pitch), np.sin(pitch)], [0, -np.sin(pitch), np.cos(pitch)]])
    # turn about the optical axis, then put the palm at the image's edge (tan of the half field
    # of view of common depth cameras)
    roll = edge * np.pi / 2 + rng.uniform(-0.4, 0.4)
    out = z * (0.46, 0.61)[edge % 2] * rng.uniform(0.75, 1.1)
    Rz = np.array([[np.cos(roll), -np.sin(roll), 0], [np.sin(roll), np.cos(roll), 0], [0, 0, 1]])
    centre = Rz @ np.array([rng.uniform(-0.3, 0.3) * z, out, z])
    return mesh, make_transform(Rz @ Rp, centre), np.array([palm[0], finger, width])


def draw_clutter(rng, cfg: RandomizationConfig, table_size_xy, index: int, clearance_m=None):
    """Something in view that is not an object on the table, as (ObjectModel, T_world_obj,
    spec), metres, world frame (table top at z = 0, centred at the origin):

    - ``shelf``: a box beyond one of the table's edges (up to 15 cm away), from below the top
      to up to 60 cm above it, like furniture, walls and bins around a real table;
    - ``link``: a bar, cylinder or capsule (10-40 cm long, 3-20 cm thick) like a robot's arm in
      view: over the table tilted up to 45 deg, or (half of them) across one of its edges
      tilted up to 15 deg, its lowest point ``clutter_hover_m`` above the top;
    - ``gripper``: a parallel-jaw hand fixed to the camera (a wrist camera sees its own
      gripper), reaching into the image from one of its edges (draw_gripper; ``clearance_m``
      keeps it off the table). Its pose is camera-frame (OpenCV axes): spec ``frame`` says which."""
    import trimesh

    from .transforms import make_transform
    from .types import ObjectModel

    half = np.asarray(table_size_xy, float) / 2
    kind = str(rng.choice(["shelf", "link", "gripper"], p=[0.3, 0.3, 0.4]))
    frame = "world"
    if kind == "gripper":
        frame = "camera"
        mesh, T, size = draw_gripper(rng, clearance_m)
        R, centre = T[:3, :3], T[:3, 3]
    elif kind == "shelf":
        axis, sign = int(rng.integers(2)), float(rng.choice([-1.0, 1.0]))
        size = np.empty(3)
        size[1 - axis] = rng.uniform(0.2, 0.8)              # along the edge
        size[axis] = rng.uniform(0.05, 0.4)                 # away from it
        bottom, top = rng.uniform(-0.3, 0.0), rng.uniform(0.02, 0.6)
        size[2] = top - bottom
        centre = np.empty(3)
        centre[axis] = sign * (half[axis] + rng.uniform(0.0, 0.15) + size[axis] / 2)
        centre[1 - axis] = rng.uniform(-half[1 - axis], half[1 - axis])
        centre[2] = (top + bottom) / 2
        mesh, R = trimesh.creation.box(size), np.eye(3)
    else:
        # robot links and joints: a Franka's are about 10 cm thick, a UR's or a YuMi's 15-20
        length, thick = rng.uniform(0.1, 0.4), rng.uniform(0.03, 0.2)
        shape = str(rng.choice(["box", "cylinder", "capsule"]))
        if shape == "box":
            mesh = trimesh.creation.box((length, thick, thick * rng.uniform(0.5, 1.5)))
        else:  # trimesh's cylinders and capsules run along z: turn them along x
            mesh = (trimesh.creation.cylinder(thick / 2, length, sections=20) if shape == "cylinder"
                    else trimesh.creation.capsule(height=max(length - thick, 1e-3), radius=thick / 2,
                                                  count=[12, 12]))
            mesh.apply_transform(make_transform(np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]], float),
                                                np.zeros(3)))
        at_edge = rng.random() < 0.5  # an arm mounted at the table's edge, as most are
        yaw = rng.uniform(0, 2 * np.pi)
        tilt = np.radians(rng.uniform(-15, 15) if at_edge else rng.uniform(-45, 45))
        cy, sy, ct, st = np.cos(yaw), np.sin(yaw), np.cos(tilt), np.sin(tilt)
        R = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]]) @ np.array([[ct, 0, st], [0, 1, 0], [-st, 0, ct]])
        if at_edge:
            axis, sign = int(rng.integers(2)), float(rng.choice([-1.0, 1.0]))
            centre = np.empty(3)
            centre[axis] = sign * (half[axis] + rng.uniform(-0.1, 0.15))
            centre[1 - axis] = rng.uniform(-half[1 - axis], half[1 - axis])
        else:
            centre = np.array([*(rng.uniform(-1.2, 1.2, 2) * half), 0.0])
        # the link's lowest point clears the top by clutter_hover_m (a box's side is <= 1.5 thick)
        lowest = length / 2 * abs(st) + 0.75 * thick * ct
        centre[2] = lowest + rng.uniform(*cfg.clutter_hover_m)
        size = np.array([length, thick, thick])
    grey = rng.random() < 0.5  # robots and furniture are often grey, white or black
    color = paint(mesh, (np.full(3, rng.uniform(0.1, 0.95)) if grey else rng.uniform(0, 1, 3)) * 255)
    model = ObjectModel(obj_id=0, name=f"clutter_{index}_{kind}", mesh=mesh, source=Path(f"<{kind}>"))
    spec = {"kind": kind, "frame": frame, "size_m": np.round(size, 4).tolist(),
            "centre_m": np.round(centre, 4).tolist(), "color": (color[:3] / 255).round(3).tolist()}
    return model, make_transform(R, centre), spec


def bin_rng(seed: int, scene_index: int) -> np.random.Generator:
    """Generator of a scene's bin, apart from its style: a scene with bins switched off is the
    same as without them, and switched on it only gains the bin."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, scene_index, 4])))


def draw_bin(rng, cfg: RandomizationConfig, objects_xy: list[np.ndarray], others_xy: list[np.ndarray],
             index: int):
    """A bin around the objects, as (ObjectModel, T_world_obj, spec), metres, world frame (table
    top at z = 0): four walls standing on the table, turned by a random yaw about z, enclosing
    every footprint of ``objects_xy`` (each (N,2): a settled object's points seen from above)
    with ``bin_margin_m`` of floor on each side, ``bin_wall_height_m`` high, 0.5-3 cm thick.
    ``others_xy`` (distractors) end up inside the bin or wholly outside its walls, never under
    one. No floor: the table is the bin's. Rendered only; the walls touch no object or
    distractor (hovering clutter may pass through them). None when
    the bin would be longer than ``bin_max_side_m`` (objects that rolled far apart: a bin that
    size would be out of view, and no tote is)."""
    import trimesh

    from .transforms import make_transform
    from .types import ObjectModel

    yaw = rng.uniform(0, np.pi / 2)
    c, s = np.cos(yaw), np.sin(yaw)
    R2 = np.array([[c, -s], [s, c]])
    margin_lo, margin_hi = rng.uniform(*cfg.bin_margin_m, 2), rng.uniform(*cfg.bin_margin_m, 2)
    height, thick = rng.uniform(*cfg.bin_wall_height_m), rng.uniform(0.005, 0.03)
    grey, shade, hue = rng.random() < 0.5, rng.uniform(0.1, 0.95), rng.uniform(0, 1, 3)
    inside = [np.asarray(f, float).reshape(-1, 2) @ R2 for f in objects_xy]  # bin frame: R2^T p
    rest = [np.asarray(f, float).reshape(-1, 2) @ R2 for f in others_xy]
    while True:  # take in every distractor the walls (and a 5 mm gap) would cut
        pts = np.concatenate(inside)
        lo, hi = pts.min(0) - margin_lo, pts.max(0) + margin_hi
        cut = [bool(np.all(f.max(0) > lo - thick - 0.005) and np.all(f.min(0) < hi + thick + 0.005))
               for f in rest]
        if not any(cut):
            break
        inside += [f for f, c in zip(rest, cut) if c]
        rest = [f for f, c in zip(rest, cut) if not c]
    inner, centre_local = hi - lo, (hi + lo) / 2
    if inner.max() + 2 * thick > cfg.bin_max_side_m:
        return None
    sink = 0.002  # below the top: no sliver of light between wall and table
    walls = []
    for axis in (0, 1):  # walls across the bin's x (at +-x), then across its y
        for sign in (-1.0, 1.0):
            size = np.empty(3)
            size[axis], size[1 - axis], size[2] = thick, inner[1 - axis] + 2 * thick * axis, height + sink
            box = trimesh.creation.box(size)
            offset = np.zeros(3)
            offset[axis] = sign * (inner[axis] + thick) / 2
            offset[2] = (height - sink) / 2
            box.apply_translation(offset)
            walls.append(box)
    mesh = trimesh.util.concatenate(walls)
    color = paint(mesh, (np.full(3, shade) if grey else hue) * 255)  # totes: grey, black, blue, red ...
    R = np.eye(3)
    R[:2, :2] = R2
    centre = np.array([*(R2 @ centre_local), 0.0])
    model = ObjectModel(obj_id=0, name=f"clutter_{index}_bin", mesh=mesh, source=Path("<bin>"))
    spec = {"kind": "bin", "frame": "world", "size_m": np.round([*inner, height], 4).tolist(),
            "wall_m": round(float(thick), 4), "yaw_deg": round(float(np.degrees(yaw)), 3),
            "centre_m": np.round(centre, 4).tolist(), "color": (color[:3] / 255).round(3).tolist()}
    return model, make_transform(R, centre), spec


def jitter_camera(rng, T_world_cam: np.ndarray, cfg: RandomizationConfig) -> np.ndarray:
    """Rotate a camera pose by a random small rotation (std camera_jitter_deg)."""
    from .transforms import make_transform, rotation_about

    if cfg.camera_jitter_deg <= 0:
        return T_world_cam
    axis = rng.normal(size=3)
    angle = np.radians(rng.normal(0, cfg.camera_jitter_deg))
    return T_world_cam @ make_transform(rotation_about(axis, angle), np.zeros(3))
