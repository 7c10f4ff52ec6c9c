"""Plain data passed between the stages: sample -> settle -> render -> write."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .texture_image import TextureImage


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels (OpenCV convention) for a width x height image."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @property
    def K(self) -> np.ndarray:
        """(3,3) camera matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def resized(self, width: int, height: int) -> "Intrinsics":
        """The same camera at another resolution (focal lengths and centre scaled)."""
        sx, sy = width / self.width, height / self.height
        return Intrinsics(self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5,
                          (self.cy + 0.5) * sy - 0.5, width, height)


# A PrimeSense/Kinect-class camera at 640x480: the LineMOD/Occlusion intrinsics.
PRIMESENSE = Intrinsics(572.4114, 573.57043, 325.2611, 242.04899, 640, 480)


@dataclass
class ObjectModel:
    """One object: its visual mesh (in metres, model frame) and what physics needs.

    ``mesh`` is a ``trimesh.Trimesh`` already scaled to metres. ``collision_path`` points at a
    convex decomposition (one convex part per OBJ object) in the *source* units; multiply by
    ``scale`` to get metres. ``mass_kg``/``inertia_diag`` come from a URDF when one exists.
    """

    obj_id: int
    name: str
    mesh: object
    source: Path
    scale: float = 1.0
    unit: str = "m"
    collision_path: Path | None = None
    mass_kg: float | None = None
    com_m: np.ndarray | None = None
    inertia_diag: np.ndarray | None = None
    textured: bool = False
    warnings: list[str] = field(default_factory=list)
    # Set by simdata.assets.load_model and cached with the mesh ("" / None for meshes made in
    # code): a key of the files the mesh and its look were loaded from (content hash), and the
    # look at the vertices, (V,4) uint8 RGBA (a texture sampled at the vertices' UVs). Both
    # describe the mesh as loaded: a model given another mesh must not keep them.
    content_key: str = ""
    vertex_colors: np.ndarray | None = None
    # The texture image of a textured OBJ-style mesh, kept apart from the mesh (whose material
    # then has no image) and read when a renderer draws the model: (H,W,4) uint8 RGBA.
    # None: the mesh holds its own look.
    texture: TextureImage | None = None

    @property
    def extents_m(self) -> np.ndarray:
        return np.asarray(self.mesh.extents)


@dataclass
class PlacedObject:
    """An object instance in a scene: which model, and its pose T_world_obj (4,4), metres."""

    model_index: int
    T_world_obj: np.ndarray


@dataclass
class Table:
    """A rectangular table top centred at the world origin, top surface at z = 0 (metres)."""

    size_xy: tuple[float, float]
    color_rgb: tuple[float, float, float]
    thickness: float = 0.05
    # procedural texture of the top: {"kind": plain|checker|stripes|noise, "tile_m": period in
    # metres, "color2_rgb": second colour, "seed": int}; None = plain colour
    texture: dict | None = None


@dataclass
class Lighting:
    """Lights of one scene: ambient RGB in [0,1] and directional lights (direction, intensity)."""

    ambient: tuple[float, float, float]
    directions: list[np.ndarray]
    intensities: list[float]
    colors: list | None = None                       # RGB per directional light (None = white)
    points: list[dict] = field(default_factory=list)  # {"position", "color", "intensity"}


@dataclass
class Scene:
    """One scene as sampling and physics made it: what the renderer draws and the writer
    records (scene_simdata.json). Poses are T_world_obj (4,4) and cameras T_world_cam (4,4,
    OpenCV axes), metres; z = 0 is the table top.

    ``objects``: the labelled objects at rest, in the order of their ids and masks
    (``model_index`` into the models list); ``materials``: one per object, a draw of
    randomize.draw_material or {"kind": "keep"} (its own look; [] = all keep theirs);
    ``distractors``: unlabelled occluders on the table [(ObjectModel, T_world_obj)];
    ``clutter``: what is in view but is no object on the table (a bin's walls included),
    rendered only [(ObjectModel, T, "world" | "camera")], T being T_cam_obj for clutter fixed
    to the camera; ``dropped``:
    (model index, reason) of the objects physics lost; ``settle_steps``: pybullet steps of
    1/240 s it took; ``style``: what the randomizers drew.
    """

    objects: list[PlacedObject]
    lighting: Lighting
    table: Table | None = None
    cameras: list[np.ndarray] = field(default_factory=list)
    materials: list[dict] = field(default_factory=list)
    distractors: list[tuple[ObjectModel, np.ndarray]] = field(default_factory=list)
    clutter: list[tuple[ObjectModel, np.ndarray, str]] = field(default_factory=list)
    dropped: list[tuple[int, str]] = field(default_factory=list)
    settle_steps: int = 0
    at_rest: bool = True
    attempts: int = 1
    style: dict = field(default_factory=dict)

    def record(self, models: list[ObjectModel]) -> dict:
        """What the writer keeps of the scene (JSON-able): physics' outcome, table, lights,
        object names and what the randomizers drew."""
        table, lighting = self.table, self.lighting
        return {
            "attempts": self.attempts, "settle_steps": self.settle_steps, "at_rest": self.at_rest,
            "table": None if table is None else {
                "size_xy_m": list(table.size_xy), "color_rgb": list(table.color_rgb),
                "texture": table.texture},
            "lighting": {"ambient": list(lighting.ambient),
                         "directions": [list(map(float, d)) for d in lighting.directions],
                         "intensities": lighting.intensities, "colors": lighting.colors,
                         "points": lighting.points},
            "objects": [models[p.model_index].name for p in self.objects],
            "dropped": [{"object": models[i].name, "reason": r} for i, r in self.dropped],
            "style": self.style}


@dataclass
class Frame:
    """One rendered view. Images are (H,W[,C]); masks are bool; depth is metres (0 = none).

    ``masks``/``masks_visib`` are (N,H,W) for the N placed objects, in scene order;
    ``normals`` are unit camera-frame normals (H,W,3), zero where nothing was hit.
    ``rgb``/``depth_m`` are what the modelled sensor returns; the clean render is kept in
    ``rgb_clean``/``depth_clean_m`` when a sensor model changed them.
    """

    rgb: np.ndarray
    depth_m: np.ndarray
    masks: np.ndarray
    masks_visib: np.ndarray
    normals: np.ndarray | None
    T_world_cam: np.ndarray
    # the render before sensor effects (privileged); None = rgb/depth_m are clean already
    rgb_clean: np.ndarray | None = None
    depth_clean_m: np.ndarray | None = None
    # (H,W) bool: pixels of clutter (randomize.draw_clutter, draw_bin), None when the scene has none
    clutter: np.ndarray | None = None
