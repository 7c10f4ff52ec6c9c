"""Datasets and frames in 3D with Rerun, the open viewer robotics teams use (rerun-sdk, the
``viewer`` extra): `simdata view DATASET`, and the logging that `adapt view` shares.

Entities, one time step per image on the ``image`` timeline (lengths in metres)::

    world                           view coordinates: z up (a dataset's world) or the camera's
    world/camera                    Transform3D world <- camera (BOP cam_R_w2c/cam_t_w2c inverted;
                                    the identity where a dataset has no world frame)
    world/camera/image              Pinhole: K (3,3) pixels, resolution, OpenCV axes (RDF)
    world/camera/image/rgb          Image (H,W,3) uint8
    world/camera/image/depth        DepthImage (H,W) float32 metres (shown as points in 3D)
    world/camera/image/masks        SegmentationImage: the visible masks, each instance's pixels
                                    its object id (names from objects.json)
    world/camera/points             Points3D: the depth back-projected, coloured, every N-th pixel
    world/objects/KK_NAME           Mesh3D of GT instance KK's model + Transform3D world <- model,
                                    logged when a scene starts (under world/camera, camera <-
                                    model, per image where a dataset has no world frame)
    world/grasps                    LineStrips3D: gripper glyphs of the scene's grasp trials
                                    (`simdata grasps`; held green, dropped red)
    world/camera/grasps             LineStrips3D: predicted grasps (adapt view)

Recordings go to ``--save FILE.rrd`` (written under a temporary name, renamed when complete;
open it with ``rerun FILE.rrd``) or to a viewer (``--spawn``). Each carries a blueprint: a 3D view
of ``world`` whose eye starts behind and beside the (first) camera, and the camera's image.
``--screenshot FILE.png`` (or .jpg) has the Rerun viewer itself draw the recording and save the
picture (on a headless machine under Xvfb, with Mesa's software Vulkan driver).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from .errors import SimdataError
from .fileio import discard_temp, disk_error, write_image
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
    screenshot: str = field(default="", metadata={
        "help": "also save a picture (FILE.png or FILE.jpg) of the Rerun viewer showing the "
                "recording at its last image; without a display the viewer runs under Xvfb "
                "(apt-get install xvfb xauth mesa-vulkan-drivers)"})
    screenshot_size: str = field(default="1600x900", metadata={"help": "the screenshot's size, WxH pixels"})


@dataclass
class Layout:
    """Where the 3D view's eye starts, in the ``world`` entity's frame (metres), and which
    image entities get a 2D view beside it."""

    eye: tuple[float, float, float]
    target: tuple[float, float, float]
    up: tuple[float, float, float]
    images: tuple[str, ...] = (IMAGE,)
    hidden_3d: tuple[str, ...] = ()  # entities the 3D view leaves out
    hidden_2d: tuple[str, ...] = ()  # and the image views

    @staticmethod
    def above_table(T_world_cam: np.ndarray) -> "Layout":
        """A z-up world with the table top at z = 0: the eye 1.6x as far from the table centre
        as the camera, swung 40 degrees about z so the camera's frustum shows."""
        c = T_world_cam[:3, 3]
        a = np.deg2rad(40.0)
        Rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
        return Layout(tuple((1.6 * Rz @ c).tolist()), (0.0, 0.0, 0.0), (0.0, 0.0, 1.0))

    @staticmethod
    def behind_camera(depth_m: np.ndarray | None, images: tuple[str, ...] = (IMAGE,)) -> "Layout":
        """The camera's own frame as the world (x right, y down, z forward): the eye above,
        beside and behind the camera, looking at the median depth (0.6 m without depth)."""
        valid = depth_m[depth_m > 0] if depth_m is not None else np.zeros(0)
        d = float(np.median(valid)) if valid.size else 0.6
        return Layout((0.45 * d, -0.5 * d, -0.45 * d), (0.0, 0.0, d), (0.0, -1.0, 0.0), images)


def blueprint(layout: Layout, collapse_panels: bool = False):
    """The recording's default viewer layout: the 3D view (3/5 of the width) beside the images."""
    import rerun.blueprint as rrb

    view3d = rrb.Spatial3DView(origin="world", name="3D", eye_controls=rrb.EyeControls3D(
        position=layout.eye, look_target=layout.target, eye_up=layout.up),
        contents=["+ $origin/**"] + [f"- /{e}" for e in layout.hidden_3d])
    hide_2d = [f"- /{e}" for e in layout.hidden_2d]
    images = [rrb.Spatial2DView(origin=o, name=o.rsplit("/", 1)[-1], contents=["+ $origin/**"] + hide_2d)
              for o in layout.images]
    side = images[0] if len(images) == 1 else rrb.Vertical(*images)
    return rrb.Blueprint(rrb.Horizontal(view3d, side, column_shares=[3, 2]), collapse_panels=collapse_panels)


class Recording:
    """A Rerun recording stream (``stream``) and the layout it is shown with (:meth:`show`)."""

    def __init__(self, stream):
        self.stream, self.layout = stream, None

    def show(self, layout: Layout, points: bool = False) -> None:
        """Make ``layout`` the recording's blueprint (only the first call counts). ``points``:
        the depth is also logged as a point cloud, which the 3D view shows instead of the depth
        image's own (colour-mapped) points. The image view shows the RGB under the masks
        without the depth's colour map over it."""
        if self.layout is None:
            depth = f"{IMAGE}/depth"
            layout = replace(layout, hidden_3d=layout.hidden_3d + ((depth,) if points else ()),
                             hidden_2d=layout.hidden_2d + (depth,))
            self.layout = layout
            self.stream.send_blueprint(blueprint(layout))


def parse_size(text: str) -> tuple[int, int]:
    """'WxH' -> (W, H) pixels, each 64 to 8192."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SimdataError(f"--screenshot-size {text}: give WxH in pixels, e.g. 1600x900") from None
    if not (64 <= w <= 8192 and 64 <= h <= 8192):
        raise SimdataError(f"--screenshot-size {text}: width and height must be 64 to 8192 pixels")
    return w, h


def rerun_sdk():
    try:
        import rerun
    except ImportError:
        raise SimdataError(f"the 3D viewer needs rerun-sdk: {EXTRA}") from None
    return rerun


@contextmanager
def recording(app: str, cfg: ViewConfig):
    """A :class:`Recording` logging to ``cfg.save`` (atomically) and/or a spawned viewer; with
    ``cfg.screenshot``, the viewer's picture of it is saved when the block ends."""
    rr = rerun_sdk()
    if not cfg.save and not cfg.spawn and not cfg.screenshot:
        raise SimdataError("pass --save FILE.rrd (a headless machine), --screenshot FILE.png or --spawn "
                           "(opens the viewer)")
    if cfg.images < 0 or cfg.points_stride < 0 or cfg.max_faces < 4:
        raise SimdataError("--images and --points-stride must be 0 or more, --max-faces at least 4")
    out = Path(cfg.save) if cfg.save else None
    if out is not None and out.suffix != ".rrd":
        raise SimdataError(f"--save {out}: name the recording FILE.rrd")
    shot = Path(cfg.screenshot) if cfg.screenshot else None
    if shot is not None:
        if shot.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            raise SimdataError(f"--screenshot {shot}: name the picture FILE.png or FILE.jpg")
        size = parse_size(cfg.screenshot_size)
        run_viewer = viewer_command(size)  # no display and no Xvfb: refused before any work
    stream = rr.RecordingStream(app)
    sinks, tmp, scratch = [], None, None
    if cfg.spawn:
        stream.spawn(connect=False)
        sinks.append(rr.GrpcSink())
    if out is None and shot is not None:  # the screenshot alone: the recording is scratch
        scratch = tempfile.TemporaryDirectory(prefix="simdata-view-")
        out = Path(scratch.name) / "recording.rrd"
    if out is not None:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # an unwritable --save: one line before anything is logged
            raise disk_error(out, e) from None
        tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
        sinks.append(rr.FileSink(str(tmp)))
    stream.set_sinks(*sinks)
    rec = Recording(stream)
    try:
        try:
            yield rec
            stream.flush()
        except BaseException:
            stream.disconnect()
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            raise
        stream.disconnect()
        if tmp is not None:
            try:
                os.replace(tmp, out)
            except OSError as e:
                discard_temp(tmp)
                raise disk_error(out, e) from None
        if shot is not None:
            take_screenshot(out, shot, size, app, rec.layout, run_viewer)
    finally:
        if scratch is not None:
            scratch.cleanup()


# -- screenshots ------------------------------------------------------------------------------------
def viewer_command(size: tuple[int, int]) -> list[str]:
    """The command prefix that starts the Rerun viewer with a screen: as is where there is a
    display, else under Xvfb (its window in the virtual screen's top-left quarter)."""
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return [sys.executable, "-m", "rerun"]
    xvfb = shutil.which("xvfb-run")
    if xvfb is None:
        raise SimdataError("--screenshot needs a display or Xvfb; on a headless machine run "
                           "`apt-get install xvfb xauth mesa-vulkan-drivers`")
    w, h = size  # the pointer starts at the screen's centre: outside the window, no hover labels
    return [xvfb, "-a", "-s", f"-screen 0 {2 * w + 64}x{2 * h + 64}x24", sys.executable, "-m", "rerun"]


def take_screenshot(rrd: Path, png: Path, size: tuple[int, int], app: str, layout: Layout | None,
                    command: list[str], timeout_s: float = 300.0) -> None:
    """Have the Rerun viewer open ``rrd`` (with ``layout``, side panels folded) and save what it
    draws as ``png`` (PNG or JPEG by extension; resized to ``size``, written atomically)."""
    w, h = size
    with tempfile.TemporaryDirectory(prefix="simdata-shot-") as tmp:
        cmd = command + [str(rrd)]
        if layout is not None:
            rbl = Path(tmp) / "layout.rbl"
            blueprint(layout, collapse_panels=True).save(app, str(rbl))
            cmd.append(str(rbl))
        raw = Path(tmp) / "screenshot.png"
        # the window in logical points; a free port, so a viewer already running is left alone
        cmd += ["--port", "0", "--window-size", f"{w}x{h}", "--screenshot-to", str(raw)]
        # RUST_LOG=error: no warning toasts (software rasterizer, container) over the views
        env = dict(os.environ, RUST_LOG="error")
        env.setdefault("XDG_RUNTIME_DIR", tmp)
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise SimdataError(f"the Rerun viewer took over {timeout_s:.0f} s to draw {rrd}; try a "
                               "smaller --screenshot-size or fewer --images") from None
        image = cv2.imread(str(raw), cv2.IMREAD_COLOR) if raw.is_file() else None
        if done.returncode or image is None:
            lines = [ln for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
            why = lines[-1].strip() if lines else f"exit status {done.returncode}"
            raise SimdataError(f"the Rerun viewer could not draw {rrd} for --screenshot {png}: {why}")
    if image.shape[:2] != (h, w):  # the viewer draws at the screen's scale (2x headless)
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    write_image(png, cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


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


def log_classes(rec, path: str, names: dict[int, str]) -> None:
    """Names and colours of the classes of the SegmentationImages at ``path`` (``names``: id ->
    label; 0 is unlabelled, drawn transparent). Logged static: Rerun applies only a static
    AnnotationContext to images (it ignores one logged per frame and paints class 0 over the
    whole image); a later call replaces the classes for every frame."""
    rr = rerun_sdk()
    rec.log(path, rr.AnnotationContext([rr.AnnotationInfo(id=0, label="none", color=(0, 0, 0, 0))]
                                       + [(i, n) for i, n in sorted(names.items()) if i != 0]), static=True)


def log_labels(rec, path: str, labels: np.ndarray) -> None:
    """(H,W) integer class ids as a SegmentationImage (classes from :func:`log_classes`)."""
    rec.log(path, rerun_sdk().SegmentationImage(labels.astype(np.uint16)))


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
    classes: dict[int, str] = {}  # object id -> label of the masks
    shown = None  # the scene whose objects and grasps are logged in the world
    rr = rerun_sdk()
    with recording("simdata", cfg) as r:
        rec = r.stream
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
            depth = s["depth"][0].numpy()
            if step == 0:
                r.show(Layout.above_table(T_world_cam) if T_world_cam is not None else Layout.behind_camera(depth),
                       points=cfg.points_stride > 0)
            log_frame(rec, rgb, depth, K, T_world_cam, cfg.points_stride)
            ids = s["obj_ids"].tolist()
            obj_names = [objects.get(str(o), {}).get("name", f"obj_{o:06d}") for o in ids]
            if not set(ids) <= set(classes):  # every object id seen so far, named
                classes.update({o: f"{o}: {n}" for o, n in zip(ids, obj_names)})
                log_classes(rec, f"{IMAGE}/masks", classes)
            labels = np.zeros(s["depth"].shape[1:], np.uint16)
            for o, m in zip(ids, s["masks_visib"].numpy()):
                labels[m] = o
            log_labels(rec, f"{IMAGE}/masks", labels)
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
    dropped red, not simulated grey (--trials mapped); the ones that collided left out)."""
    from .grasping.labels import SCENE_FILE, record_pose

    path = scene / SCENE_FILE
    records = json.loads(path.read_text())["grasps"] if path.is_file() else []
    records = [r for r in records if r["collision_free"]]
    log_grasps(rec, "world/grasps", [record_pose(r) for r in records],
               [r["opening_mm"] / M_TO_MM for r in records],
               [(150, 150, 150) if r["success"] is None else (40, 220, 40) if r["success"] else (230, 60, 40)
                for r in records])
