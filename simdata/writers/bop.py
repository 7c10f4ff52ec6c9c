"""BOP writer: the layout and JSON fields that bop_toolkit reads.

Dataset root::

    camera.json                    fx, fy, cx, cy, width, height, depth_scale
    models/obj_NNNNNN.ply          model meshes in millimetres (+ models_info.json)
    models/collision/obj_NNNNNN.obj  simdata extra: the convex parts the scene physics settled
                                   (the model's collision mesh, VHACD or hull; model frame)
    objects.json                   simdata extra: obj_id -> name, source file, unit, and the
                                   rigid body the scene physics simulated ("physics": mass_kg,
                                   com_m in the model frame, inertia_diag kg m^2 about the COM,
                                   collision: file and its scale to metres)
    train_pbr/NNNNNN/              one folder per scene
        rgb/NNNNNN.{jpg,png}       uint8 RGB
        depth/NNNNNN.png           uint16, depth_mm = value * depth_scale
        mask/NNNNNN_MMMMMM.png     full silhouette of GT instance MMMMMM (0/255)
        mask_visib/...             visible part of it
        scene_camera.json          cam_K, depth_scale, cam_R_w2c, cam_t_w2c (mm)
        scene_gt.json              cam_R_m2c, cam_t_m2c (mm), obj_id
        scene_gt_info.json         bbox_obj, bbox_visib, px_count_*, visib_fract
        normals/NNNNNN.png         simdata extra: camera-frame normals, RGB=(n+1)/2*255
        mask_clutter/NNNNNN.png    simdata extra, with --randomize clutter or bins: pixels of
                                   things that are no object on the table (0/255)
        depth_m/NNNNNN.npy         simdata extra: clean float32 z-depth in metres (0 = none)
        rgb_clean/NNNNNN.png       simdata extra: RGB before the sensor model (when one is set)
        scene_simdata.json         simdata extra: table, lights, dropped objects
"""
from __future__ import annotations

import io
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..assets import vertex_colors_of
from ..texture_image import mesh_with_texture
from ..bop_layout import SPLIT
from ..fileio import disk_error, write_bytes_atomic, write_image, write_json_atomic
from ..transforms import M_TO_MM, invert_transform, project_points, transform_points
from ..types import Frame, Intrinsics, ObjectModel, PlacedObject
from .base import mask_bbox, temp_name

if TYPE_CHECKING:
    from ..config import RenderConfig


def ply_bytes(vertices_mm: np.ndarray, normals: np.ndarray, colors: np.ndarray,
              faces: np.ndarray) -> bytes:
    """Binary little-endian PLY with x y z nx ny nz red green blue and vertex_indices faces."""
    n, m = len(vertices_mm), len(faces)
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment simdata model, millimetres\n"
        f"element vertex {n}\nproperty float x\nproperty float y\nproperty float z\n"
        "property float nx\nproperty float ny\nproperty float nz\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        f"element face {m}\nproperty list uchar int vertex_indices\nend_header\n"
    ).encode()
    vdt = np.dtype([("p", "<f4", 3), ("n", "<f4", 3), ("c", "u1", 3)])
    v = np.empty(n, vdt)
    v["p"], v["n"], v["c"] = vertices_mm, normals, colors[:, :3]
    fdt = np.dtype([("k", "u1"), ("i", "<i4", 3)])
    f = np.empty(m, fdt)
    f["k"], f["i"] = 3, faces
    return header + v.tobytes() + f.tobytes()


def model_info(vertices_mm: np.ndarray) -> dict:
    """BOP models_info entry: diameter (max vertex distance), min_* and size_* (mm); cached on
    disk by the vertices (the diameter costs 0.2 s for a 15k-triangle model)."""
    from ..diskcache import array_digest, cached_json

    vertices_mm = np.asarray(vertices_mm, np.float64)
    return cached_json("model_info", array_digest(vertices_mm, version="model-info-v1"),
                       lambda: _model_info(vertices_mm))


def _model_info(vertices_mm: np.ndarray) -> dict:
    import trimesh

    try:
        pts = trimesh.points.PointCloud(vertices_mm).convex_hull.vertices
    except Exception:  # flat or degenerate point sets
        pts = vertices_mm
    if len(pts) > 4000:
        pts = pts[np.linspace(0, len(pts) - 1, 4000).astype(int)]
    d = np.sqrt(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1)).max()
    lo, hi = vertices_mm.min(0), vertices_mm.max(0)
    info = {"diameter": float(d)}
    for i, ax in enumerate("xyz"):
        info[f"min_{ax}"] = float(lo[i])
        info[f"size_{ax}"] = float(hi[i] - lo[i])
    return info


def models_info(models: list[ObjectModel], symmetries: dict[int, dict] | None = None) -> dict:
    """BOP models_info.json content {str(obj_id): entry}: model_info (mm) plus the symmetry
    fields of ``symmetries`` (obj_id -> symmetries_discrete/_continuous, see simdata.symmetry;
    None = detect them from the meshes, cached; an object missing from it gets none)."""
    if symmetries is None:
        from ..symmetry import symmetries_for_models

        symmetries = symmetries_for_models(models)
    return {str(m.obj_id): {**model_info(np.asarray(m.mesh.vertices) * M_TO_MM),
                            **symmetries.get(m.obj_id, {})}
            for m in sorted(models, key=lambda m: m.obj_id)}


def write_models(root: Path, models: list[ObjectModel],
                 symmetries: dict[int, dict] | None = None, physics=None) -> None:
    """models/obj_NNNNNN.ply (mm) + models_info.json (see :func:`models_info`), and
    objects.json with names; with ``physics`` (the scene physics' PhysicsConfig) each object
    also records the rigid body that physics simulated (simdata.physics.mass_properties) and
    the collision geometry it settled (models/collision/obj_NNNNNN.obj, convex parts, with its
    scale to metres), so that grasp trials on the dataset lift the same bodies: a trial's
    objects that are not the shapes the scene came to rest with move before the gripper does
    (a lying can whose trial hull was 2 mm wider rolled 7 mm under the descending fingers)."""
    from ..physics import collision_source, mass_properties

    mdir = root / "models"
    mdir.mkdir(parents=True, exist_ok=True)
    names = {}
    for m in models:
        mesh = m.mesh
        cached = m.vertex_colors  # the look at the vertices of the mesh as loaded
        colors = (cached if cached is not None and len(cached) == len(mesh.vertices)
                  else vertex_colors_of(mesh_with_texture(mesh, m.texture)))
        write_bytes_atomic(mdir / f"obj_{m.obj_id:06d}.ply",
                           ply_bytes(np.asarray(mesh.vertices) * M_TO_MM,
                                     np.asarray(mesh.vertex_normals), colors, np.asarray(mesh.faces)))
        names[str(m.obj_id)] = {"name": m.name, "source": str(m.source), "unit": m.unit,
                                "textured": m.textured, "warnings": m.warnings}
        if physics is not None:
            mass, com, inertia = mass_properties(m, physics.density)
            path, scale = collision_source(m, physics)
            rel = f"models/collision/obj_{m.obj_id:06d}.obj"
            write_bytes_atomic(root / rel, path.read_bytes() if path is not None else
                               m.mesh.convex_hull.export(file_type="obj").encode())
            names[str(m.obj_id)]["physics"] = {"mass_kg": mass, "com_m": _flat(com),
                                               "inertia_diag": _flat(inertia),
                                               "collision": {"file": rel, "scale": scale}}
    write_json_atomic(mdir / "models_info.json", models_info(models, symmetries))
    write_json_atomic(root / "objects.json", names)


def write_dataset_header(root: Path, intrinsics: Intrinsics, depth_scale: float) -> None:
    write_json_atomic(root / "camera.json", {
        "cx": intrinsics.cx, "cy": intrinsics.cy, "depth_scale": depth_scale,
        "fx": intrinsics.fx, "fy": intrinsics.fy, "height": intrinsics.height,
        "width": intrinsics.width})


def encode_normals(normals: np.ndarray) -> np.ndarray:
    """The normals PNG's pixels (H,W,3) uint8: round((n + 1) * 127.5) of camera-frame unit
    normals (H,W,3) float32 (OpenCV axes), 0 where nothing was hit (n = 0)."""
    enc = normals + np.float32(1.0)
    enc *= np.float32(127.5)
    np.round(enc, out=enc)
    enc = enc.astype(np.uint8)
    enc[(normals[..., 0] == 0) & (normals[..., 1] == 0) & (normals[..., 2] == 0)] = 0
    return enc


def _flat(a) -> list[float]:
    return [float(x) for x in np.asarray(a).ravel()]


class BopWriter:
    """The BOP format of dataset ``out`` (see the module docstring); a DatasetWriter."""

    name = "bop"
    needs: tuple[str, ...] = ()  # formats that must be written beside it

    def __init__(self, out: Path, cfg: "RenderConfig"):
        self.out, self.cfg = Path(out), cfg
        self.split_dir = self.out / SPLIT

    def prepare(self, models: list[ObjectModel], symmetries: dict[int, dict]) -> None:
        """The split folder, camera.json, models/ and objects.json; removes scene temporaries
        of killed runs."""
        self.split_dir.mkdir(parents=True, exist_ok=True)
        write_dataset_header(self.out, self.cfg.scene.intrinsics, self.cfg.depth_scale)
        write_models(self.out, models, symmetries, physics=self.cfg.scene.physics)
        for stale in self.split_dir.glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)

    def has_scene(self, scene_index: int) -> bool:
        return (self.split_dir / f"{scene_index:06d}").is_dir()

    def scene(self, scene_index: int) -> "BopSceneWriter":
        cfg = self.cfg
        return BopSceneWriter(self.split_dir, scene_index, cfg.scene.intrinsics, cfg.depth_scale,
                              cfg.rgb_format, cfg.extras, keep_clean_rgb=not cfg.sensor_model.is_clean)

    def finish(self) -> None:
        pass  # every BOP file is per scene or written by prepare


class BopSceneWriter:
    """Writes one scene into a hidden temporary folder; :meth:`commit` renames it into place.

    A scene folder under its final name is therefore always complete.
    """

    def __init__(self, split_dir: Path, scene_id: int, intrinsics: Intrinsics,
                 depth_scale: float = 0.1, rgb_ext: str = "jpg", extras=("normals", "depth_m"),
                 keep_clean_rgb: bool = False):
        self.final = Path(split_dir) / f"{scene_id:06d}"
        self.tmp = temp_name(self.final)
        self.K, self.intrinsics = intrinsics.K, intrinsics
        self.depth_scale, self.rgb_ext, self.extras = depth_scale, rgb_ext, tuple(extras)
        self.scene_camera, self.scene_gt, self.scene_gt_info = {}, {}, {}
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.keep_clean_rgb = keep_clean_rgb
        dirs = ["rgb", "depth", "mask", "mask_visib", *self.extras] + \
            (["rgb_clean"] if keep_clean_rgb else [])
        try:
            for d in dirs:
                (self.tmp / d).mkdir(parents=True)
        except OSError as e:
            raise disk_error(self.tmp, e) from None
        # images are encoded and written by two threads (cv2's encoders and file I/O release
        # the GIL) while the next view renders; commit waits for them and re-raises a failure
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bop-writer")
        self._pending: list = []

    def _write(self, path: Path, image: np.ndarray) -> None:
        self._pending.append(self._pool.submit(write_image, path, image))

    def _finish_writes(self, cancel: bool = False) -> None:
        pending, self._pending = self._pending, []
        self._pool.shutdown(wait=True, cancel_futures=cancel)
        if not cancel:
            for future in pending:
                future.result()

    def add_frame(self, im_id: int, frame: Frame, placed: list[PlacedObject],
                  models: list[ObjectModel]) -> None:
        t, name = self.tmp, f"{im_id:06d}"
        T_cam_world = invert_transform(frame.T_world_cam)
        self._write(t / "rgb" / f"{name}.{self.rgb_ext}", frame.rgb.copy())
        depth_mm = frame.depth_m.astype(np.float64) * M_TO_MM
        depth_u16 = np.round(depth_mm / self.depth_scale)
        depth_u16[(depth_u16 > 65535) | (depth_u16 < 0)] = 0  # out of range: no reading
        self._write(t / "depth" / f"{name}.png", depth_u16.astype(np.uint16))
        if "normals" in self.extras and frame.normals is not None:
            self._write(t / "normals" / f"{name}.png", encode_normals(frame.normals))
        if self.keep_clean_rgb:
            self._write(t / "rgb_clean" / f"{name}.png", frame.rgb_clean.copy())
        if frame.clutter is not None:
            (t / "mask_clutter").mkdir(exist_ok=True)
            self._write(t / "mask_clutter" / f"{name}.png", frame.clutter.astype(np.uint8) * 255)
        if "depth_m" in self.extras:  # privileged: always the clean render
            clean = frame.depth_clean_m if frame.depth_clean_m is not None else frame.depth_m
            buf = io.BytesIO()
            np.save(buf, clean.astype(np.float32))
            write_bytes_atomic(t / "depth_m" / f"{name}.npy", buf.getvalue())
        self.scene_camera[str(im_id)] = {
            "cam_K": _flat(self.K), "depth_scale": self.depth_scale,
            "cam_R_w2c": _flat(T_cam_world[:3, :3]),
            "cam_t_w2c": _flat(T_cam_world[:3, 3] * M_TO_MM)}
        gts, infos = [], []
        valid = frame.depth_m > 0
        for gt_id, p in enumerate(placed):
            model = models[p.model_index]
            T_cam_obj = T_cam_world @ p.T_world_obj
            gts.append({"cam_R_m2c": _flat(T_cam_obj[:3, :3]),
                        "cam_t_m2c": _flat(T_cam_obj[:3, 3] * M_TO_MM), "obj_id": model.obj_id})
            full, visib = frame.masks[gt_id], frame.masks_visib[gt_id]
            self._write(t / "mask" / f"{name}_{gt_id:06d}.png", full.astype(np.uint8) * 255)
            self._write(t / "mask_visib" / f"{name}_{gt_id:06d}.png", visib.astype(np.uint8) * 255)
            infos.append(self._gt_info(model, T_cam_obj, full, visib, valid))
        self.scene_gt[str(im_id)] = gts
        self.scene_gt_info[str(im_id)] = infos

    def _gt_info(self, model, T_cam_obj, full, visib, valid) -> dict:
        vertices = np.asarray(model.mesh.vertices)
        pts = transform_points(T_cam_obj, vertices)
        pts = pts[pts[:, 2] > 1e-6]
        rows = cols = slice(None)  # where the masks are counted: everywhere, or ...
        if len(pts):
            uv = project_points(pts, self.K)
            lo, hi = np.floor(uv.min(0)), np.floor(uv.max(0))
            bbox_obj = [int(lo[0]), int(lo[1]), int(hi[0] - lo[0] + 1), int(hi[1] - lo[1] + 1)]
            if len(pts) == len(vertices):
                # ... with every vertex in front of the camera, inside the box of their
                # projections (a pixel of margin for the rasteriser's rounding), which holds
                # the whole silhouette: the counts are the same, at a fraction of the cost
                h, w = full.shape
                rows = slice(int(np.clip(lo[1] - 1, 0, h)), int(np.clip(hi[1] + 2, 0, h)))
                cols = slice(int(np.clip(lo[0] - 1, 0, w)), int(np.clip(hi[0] + 2, 0, w)))
        else:
            bbox_obj = [-1, -1, -1, -1]
        full, visib, valid = full[rows, cols], visib[rows, cols], valid[rows, cols]
        n_all, n_visib = int(np.count_nonzero(full)), int(np.count_nonzero(visib))
        bbox_visib = mask_bbox(visib)
        if bbox_visib[0] >= 0:
            bbox_visib[0] += cols.start or 0
            bbox_visib[1] += rows.start or 0
        return {"bbox_obj": bbox_obj, "bbox_visib": bbox_visib, "px_count_all": n_all,
                "px_count_valid": int(np.count_nonzero(full & valid)), "px_count_visib": n_visib,
                "visib_fract": float(n_visib / n_all) if n_all else 0.0}

    def commit(self, scene_info: dict) -> Path:
        """Write the scene's JSON files and move the folder to its final name."""
        self._finish_writes()
        write_json_atomic(self.tmp / "scene_camera.json", self.scene_camera)
        write_json_atomic(self.tmp / "scene_gt.json", self.scene_gt)
        write_json_atomic(self.tmp / "scene_gt_info.json", self.scene_gt_info)
        write_json_atomic(self.tmp / "scene_simdata.json", scene_info)
        try:
            os.rename(self.tmp, self.final)
        except OSError as e:
            raise disk_error(self.final, e) from None
        return self.final

    def abort(self) -> None:
        self._finish_writes(cancel=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
