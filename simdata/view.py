"""Datasets and frames in 3D with Rerun, the open viewer robotics teams use (rerun-sdk, the
``viewer`` extra): `simdata view DATASET`, and the logging that `adapt view` shares.

Entities, one time step per image on the ``image`` timeline (lengths in metres)::

    world                           view coordinates: z up (a dataset's world) or the camera's
    world/camera                    Transform3D world <- camera (BOP cam_R_w2c/cam_t_w2c inverted;
                                    the identity where a dataset has no world frame)
    world/camera/image              Pinhole: K (3,3) pixels, resolution, OpenCV axes (RDF)
    world/camera/image/rgb          Image (H,W,3) uint8
    world/camera/image/depth        DepthImage (H,W) float32 metres (shown as points in 3D)
    world/camera/image/masks        SegmentationImage: visible mask of GT instance k as k + 1
    world/camera/points             Points3D: the depth back-projected, coloured, every N-th pixel
    world/objects/KK_NAME           Mesh3D of GT instance KK's model + Transform3D world <- model,
                                    logged when a scene starts (under world/camera, camera <-
                                    model, per image where a dataset has no world frame)
    world/grasps                    LineStrips3D: gripper glyphs of the scene's grasp trials
                                    (`simdata grasps`; held green, dropped red)
    world/camera/grasps             LineStrips3D: predicted grasps (adapt view)

Recordings go to ``--save FILE.rrd`` (written under a temporary name, renamed when complete;
open it with ``rerun FILE.rrd``) or to a viewer (``--spawn``).
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import SimdataError
from .fileio import discard_temp, disk_error
from .transforms import M_TO_MM, backproject_depth, invert_transform, make_transform

EXTRA = "pip install 'simdata-adapt[viewer]' (rerun-sdk, the Rerun viewer's logging library)"
CAMERA = "world/camera"
IMAGE = f"{CAMERA}/image"


@dataclass
class ViewConfig:
    """Where a recording goes and how much of it to log."""

    save: str = field(default="", metadata={
        "help": "write the recording to this .rrd file (for a headless machine; open it with "
                "`rerun FILE.rrd`)"})
    spawn: bool = field(default=False, metadata={"help": "open the Rerun viewer and stream to it"})
    images: int = field(default=0, metadata={"help": "log at most this many images, spread evenly (0: all)"})
    points_stride: int = field(default=2, metadata={
        "help": "also log the depth as a coloured point cloud of every N-th pixel (0: only the "
                "depth image, which the viewer shows as points too)"})
    max_faces: int = field(default=5000, metadata={
        "help": "object meshes with more triangles are decimated to this many"})


def rerun_sdk():
    try:
        import rerun
    except ImportError:
        raise SimdataError(f"the 3D viewer needs rerun-sdk: {EXTRA}") from None
    return rerun


@contextmanager
def recording(app: str, cfg: ViewConfig):
    """A Rerun recording stream logging to ``cfg.save`` (atomically) and/or a spawned viewer."""
    rr = rerun_sdk()
    if not cfg.save and not cfg.spawn:
        raise SimdataError("pass --save FILE.rrd (a headless machine) or --spawn (opens the viewer)")
    if cfg.images < 0 or cfg.points_stride < 0 or cfg.max_faces < 4:
        raise SimdataError("--images and --points-stride must be 0 or more, --max-faces at least 4")
    out = Path(cfg.save) if cfg.save else None
    if out is not None and out.suffix != ".rrd":
        raise SimdataError(f"--save {out}: name the recording FILE.rrd")
    rec = rr.RecordingStream(app)
    sinks, tmp = [], None
    if cfg.spawn:
        rec.spawn(connect=False)
        sinks.append(rr.GrpcSink())
    if out is not None:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # an unwritable --save: one line before anything is logged
            raise disk_error(out, e) from None
        tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
        sinks.append(rr.FileSink(str(tmp)))
    rec.set_sinks(*sinks)
    try:
        yield rec
        rec.flush()
    except BaseException:
        rec.disconnect()
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    rec.disconnect()
    if tmp is not None:
        try:
            os.replace(tmp, out)
        except OSError as e:
            discard_temp(tmp)
            raise disk_error(out, e) from None


def spread(n: int, limit: int) -> list[int]:
    """Indices of ``limit`` items spread evenly over ``n`` (all when ``limit`` is 0)."""
    if not limit or limit >= n:
        return list(range(n))
    return np.linspace(0, n - 1, limit).round().astype(int).tolist()


# -- frames -----------------------------------------------------------------------------------------
def log_frame(rec, rgb: np.ndarray | None, depth_m: np.ndarray | None, K: np.ndarray | None,
              T_world_cam: np.ndarray | None = None, points_stride: int = 2) -> None:
    """A camera frame: pose, pinhole (when K is known), (H,W,3) uint8 RGB, (H,W) metres depth
    and, every ``points_stride``-th pixel, the coloured point cloud. What a frame lacks is
    cleared, so nothing of an earlier frame stays on screen."""
    rr = rerun_sdk()
    for path, have in ((f"{IMAGE}/rgb", rgb is not None), (f"{IMAGE}/depth", depth_m is not None),
                       (f"{CAMERA}/points", depth_m is not None and points_stride > 0)):
        if not have:
            rec.log(path, rr.Clear(recursive=False))
    T = np.eye(4) if T_world_cam is None else T_world_cam
    rec.log(CAMERA, rr.Transform3D(translation=T[:3, 3], mat3x3=T[:3, :3]))
    img = rgb if rgb is not None else depth_m
    known = K is not None and np.isfinite(K).all()
    if known:
        rec.log(IMAGE, rr.Pinhole(image_from_camera=K, width=img.shape[1], height=img.shape[0],
                                  camera_xyz=rr.ViewCoordinates.RDF, image_plane_distance=0.1))
    if rgb is not None:
        rec.log(f"{IMAGE}/rgb", rr.Image(rgb))
    if depth_m is not None:
        rec.log(f"{IMAGE}/depth", rr.DepthImage(depth_m.astype(np.float32), meter=1.0))
        if known and points_stride:
            sub = np.zeros(depth_m.shape, bool)
            sub[::points_stride, ::points_stride] = True
            mask = sub & (depth_m > 0)
            colours = rgb[mask] if rgb is not None else None
            rec.log(f"{CAMERA}/points", rr.Points3D(backproject_depth(depth_m, K, mask), colors=colours,
                                                    radii=rr.Radius.ui_points(1.5)))


def log_labels(rec, path: str, labels: np.ndarray, names: dict[int, str]) -> None:
    """(H,W) integer labels as a SegmentationImage, ``names`` id -> label (0 stays unlabelled)."""
    rr = rerun_sdk()
    rec.log(path, rr.AnnotationContext([(i, n) for i, n in names.items()]))
    rec.log(path, rr.SegmentationImage(labels.astype(np.uint16)))


# -- meshes and grasps ------------------------------------------------------------------------------
def load_model(path: Path, max_faces: int) -> dict:
    """A BOP model (.ply, millimetres) as Mesh3D arguments in metres, decimated to at most
    ``max_faces`` triangles (open3d's quadric decimation)."""
    import open3d as o3d

    mesh = o3d.io.read_triangle_mesh(str(path))
    if not len(mesh.triangles):
        raise SimdataError(f"cannot read the model {path}; regenerate the dataset's models/")
    if len(mesh.triangles) > max_faces:
        mesh = mesh.simplify_quadric_decimation(max_faces)
    mesh.compute_vertex_normals()
    out = {"vertex_positions": np.asarray(mesh.vertices) / M_TO_MM,
           "triangle_indices": np.asarray(mesh.triangles), "vertex_normals": np.asarray(mesh.vertex_normals)}
    if mesh.has_vertex_colors():
        out["vertex_colors"] = (np.asarray(mesh.vertex_colors) * 255).round().astype(np.uint8)
    return out


def log_object(rec, path: str, mesh: dict, T_cam_obj: np.ndarray) -> None:
    """A model (:func:`load_model`) posed in the camera frame by ``T_cam_obj`` (4x4, metres)."""
    rr = rerun_sdk()
    rec.log(path, rr.Transform3D(translation=T_cam_obj[:3, 3], mat3x3=T_cam_obj[:3, :3]))
    rec.log(path, rr.Mesh3D(**mesh))


def gripper_glyph(T: np.ndarray, opening_m: float, finger_length_m: float = 0.05) -> list[np.ndarray]:
    """Line strips (each (N,3)) drawing a parallel-jaw gripper at ``T`` (4x4; x the closing
    axis, z the approach, origin between the finger tips) opened ``opening_m``."""
    w, f = opening_m / 2, finger_length_m
    local = [np.array([[-w, 0, 0], [-w, 0, -f], [w, 0, -f], [w, 0, 0]]),  # fingers and palm
             np.array([[0, 0, -f], [0, 0, -2 * f]])]  # the wrist
    return [p @ T[:3, :3].T + T[:3, 3] for p in local]


def log_grasps(rec, path: str, poses: list[np.ndarray], openings_m: list[float], colours,
               labels: list[str] | None = None) -> None:
    """Gripper glyphs at ``poses`` (4x4 in the parent's frame), one colour (RGB) each."""
    rr = rerun_sdk()
    strips, cols = [], []
    for T, w, c in zip(poses, openings_m, colours):
        glyph = gripper_glyph(T, w)
        strips += glyph
        cols += [c] * len(glyph)
    if not strips:
        rec.log(path, rr.Clear(recursive=False))
        return
    rec.log(path, rr.LineStrips3D(strips, colors=cols, radii=rr.Radius.ui_points(2.0), labels=labels))


# -- datasets ---------------------------------------------------------------------------------------
def view_dataset(root, cfg: ViewConfig, scene: int = -1, split: str = "train_pbr") -> int:
    """Log a BOP dataset (every image, or those of ``scene``) to Rerun; returns the images logged."""
    from .datasets import BopDataset

    root = Path(root)
    ds = BopDataset(root, split, load_full_masks=False, load_normals=False)
    items = [i for i, (sc, _) in enumerate(ds.items) if scene < 0 or int(sc.name) == scene]
    if not items:
        raise SimdataError(f"{root}/{split} has no scene {scene}; see `simdata info {root}`")
    objects = json.loads((root / "objects.json").read_text()) if (root / "objects.json").is_file() else {}
    meshes: dict[int, dict] = {}
    shown = None  # the scene whose objects and grasps are logged in the world
    rr = rerun_sdk()
    with recording("simdata", cfg) as rec:
        chosen = [items[i] for i in spread(len(items), cfg.images)]
        for step, index in enumerate(chosen):
            s = ds[index]
            T_world_cam = None
            if "R_w2c" in s:
                T_world_cam = invert_transform(make_transform(s["R_w2c"].double().numpy(),
                                                              s["t_w2c"].double().numpy()))
            if step == 0:  # the world: z up above the table, else the first camera's frame
                rec.log("world", rr.ViewCoordinates.RIGHT_HAND_Z_UP if T_world_cam is not None
                        else rr.ViewCoordinates.RDF, static=True)
            rec.set_time("image", sequence=step)
            rgb = (s["rgb"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            K = s["K"].double().numpy()
            log_frame(rec, rgb, s["depth"][0].numpy(), K, T_world_cam, cfg.points_stride)
            ids = s["obj_ids"].tolist()
            obj_names = [objects.get(str(o), {}).get("name", f"obj_{o:06d}") for o in ids]
            names = {k + 1: f"{k}: {n}" for k, n in enumerate(obj_names)}
            labels = np.zeros(s["depth"].shape[1:], np.uint16)
            for k, m in enumerate(s["masks_visib"].numpy()):
                labels[m] = k + 1
            log_labels(rec, f"{IMAGE}/masks", labels, names)
            scene_dir = ds.items[index][0]
            if T_world_cam is None or scene_dir != shown:  # objects stand still in a scene's world
                parent, T_parent_cam = ("world", T_world_cam) if T_world_cam is not None else (CAMERA, np.eye(4))
                rec.log(f"{parent}/objects", rr.Clear(recursive=True))
                for k, o in enumerate(ids):
                    if o not in meshes:
                        meshes[o] = load_model(root / "models" / f"obj_{o:06d}.ply", cfg.max_faces)
                    T_cam_obj = make_transform(s["R"][k].double().numpy(), s["t"][k].double().numpy())
                    log_object(rec, f"{parent}/objects/{k:02d}_{obj_names[k]}", meshes[o],
                               T_parent_cam @ T_cam_obj)
                if T_world_cam is not None:
                    _log_scene_grasps(rec, scene_dir)
                shown = scene_dir
    return len(chosen)


def _log_scene_grasps(rec, scene: Path) -> None:
    """The grasp trials of a scene labelled by `simdata grasps`, in its world (held green,
    dropped red; the ones that collided left out)."""
    from .grasping.labels import SCENE_FILE, record_pose

    path = scene / SCENE_FILE
    records = json.loads(path.read_text())["grasps"] if path.is_file() else []
    records = [r for r in records if r["collision_free"]]
    log_grasps(rec, "world/grasps", [record_pose(r) for r in records],
               [r["opening_mm"] / M_TO_MM for r in records],
               [(40, 220, 40) if r["success"] else (230, 60, 40) for r in records])
