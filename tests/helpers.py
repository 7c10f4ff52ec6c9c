"""Helpers shared by the tests: small render configs and geometry checks of written GT."""
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import trimesh

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / "assets" / "ycb"


def small_config(out, **kw):
    from simdata.pipeline import RenderConfig
    from simdata.sampling import SceneConfig
    from simdata.types import PRIMESENSE

    scene_kw = {k: kw.pop(k) for k in list(kw) if k in ("views", "objects", "intrinsics")}
    scene_kw.setdefault("intrinsics", PRIMESENSE.resized(320, 240))
    scene_kw.setdefault("views", 2)
    scene_kw.setdefault("objects", (3, 5))
    kw.setdefault("meshes", str(ASSETS))
    kw.setdefault("scenes", 2)
    kw.setdefault("seed", 7)
    return RenderConfig(out=str(out), scene=SceneConfig(**scene_kw), **kw)


TINY = dict(scenes=4, views=1, objects=(2, 3), seed=11)
TINY_ARGS = ["--scenes", "4", "--views", "1", "--objects", "2:3", "--seed", "11",
             "--width", "160", "--height", "120", "--no-progress"]


def tiny(out, **kw):
    """4 scenes x 1 view at 160x120: the same dataset as the CLI with TINY_ARGS."""
    from simdata.types import PRIMESENSE

    return small_config(out, intrinsics=PRIMESENSE.resized(160, 120), **{**TINY, **kw})


def file_hashes(root: Path) -> dict:
    """Hash of every file, except the settings file that records the --out path."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "simdata_settings.json"}


def run_cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "simdata.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=600, **kw)


def run_cli_without(module: str, *args):
    """Run the CLI as if the optional package ``module`` were not installed."""
    code = (f"import sys; sys.modules[{module!r}] = None; from simdata.cli import main; "
            f"sys.exit(main(sys.argv[1:]))")
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                          text=True, timeout=600)


def synthetic_and_real_scenes(tmp, syn_scenes: int = 1, real_views: int = 2):
    """Two tiny scene datasets at 160x120 for the image-translation methods: ``syn`` (clean
    renders, 2 views per scene) and ``real`` (one scene with random lights, backgrounds and
    materials and the PrimeSense depth model: a stand-in target domain)."""
    from simdata.pipeline import render_dataset
    from simdata.randomize import RandomizationConfig
    from simdata.types import PRIMESENSE

    intr = PRIMESENSE.resized(160, 120)
    render_dataset(small_config(tmp / "syn", intrinsics=intr, scenes=syn_scenes, views=2), progress=False)
    real = RandomizationConfig(lights=True, backgrounds=True, materials=True, material_prob=0.5)
    render_dataset(small_config(tmp / "real", intrinsics=intr, scenes=1, views=real_views, seed=9,
                                randomize=real, sensor="primesense"), progress=False)
    return tmp / "syn", tmp / "real"


def count_mesh_parses(monkeypatch) -> list:
    """The list of mesh files simdata.assets parses from now on (a load from the disk cache
    parses none)."""
    import simdata.assets as assets

    parses = []
    parse = assets._load_trimesh
    monkeypatch.setattr(assets, "_load_trimesh", lambda p: (parses.append(p), parse(p))[1])
    return parses


def load_image_gt(root: Path, scene: str, im_id: int):
    d = Path(root) / "train_pbr" / scene
    cam = json.loads((d / "scene_camera.json").read_text())[str(im_id)]
    gts = json.loads((d / "scene_gt.json").read_text())[str(im_id)]
    infos = json.loads((d / "scene_gt_info.json").read_text())[str(im_id)]
    depth_mm = cv2.imread(str(d / "depth" / f"{im_id:06d}.png"), cv2.IMREAD_UNCHANGED) * cam["depth_scale"]
    return d, cam, gts, infos, depth_mm


def load_model_mm(root: Path, obj_id: int) -> trimesh.Trimesh:
    return trimesh.load(Path(root) / "models" / f"obj_{obj_id:06d}.ply", process=False)


def mask_agreement(model, K, R, t_mm, mask, n=4000, dilate=1) -> float:
    """Fraction of surface points (projected with K, R, t) that land on the (dilated) mask,
    among those inside the image."""
    pts = model.sample(n, seed=0) if len(model.faces) else model.vertices
    pc = pts @ R.T + t_mm
    uv = pc[:, :2] / pc[:, 2:] * [K[0, 0], K[1, 1]] + K[:2, 2]
    ui = np.round(uv).astype(int)
    h, w = mask.shape
    ok = (ui[:, 0] >= 0) & (ui[:, 0] < w) & (ui[:, 1] >= 0) & (ui[:, 1] < h)
    m = cv2.dilate(mask.astype(np.uint8), np.ones((2 * dilate + 1,) * 2, np.uint8)) > 0
    return float(m[ui[ok, 1], ui[ok, 0]].mean()) if ok.any() else 1.0


def depth_surface_distance(model, K, R, t_mm, depth_mm, mask):
    """Distances (mm) from back-projected depth pixels of ``mask`` (eroded by one pixel, to
    skip anti-aliased edges) to the posed model surface."""
    import open3d as o3d

    from simdata.transforms import backproject_depth

    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    P = backproject_depth(depth_mm, K, inner)
    P_model = (P - t_mm) @ R  # camera -> model frame
    scene = o3d.t.geometry.RaycastingScene()
    legacy = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(model.vertices),
                                       o3d.utility.Vector3iVector(model.faces))
    scene.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(legacy))
    return scene.compute_distance(o3d.core.Tensor(P_model.astype(np.float32))).numpy()


def check_dataset_geometry(root: Path, min_px=60):
    """Assert projection/mask agreement and depth/surface agreement for every visible instance.
    Returns the number of instances checked."""
    checked = 0
    for scene in sorted(p.name for p in (Path(root) / "train_pbr").glob("[0-9]*")):
        cams = json.loads((Path(root) / "train_pbr" / scene / "scene_camera.json").read_text())
        for im_id in map(int, cams):
            d, cam, gts, infos, depth_mm = load_image_gt(root, scene, im_id)
            K = np.array(cam["cam_K"]).reshape(3, 3)
            for k, (gt, info) in enumerate(zip(gts, infos)):
                if info["px_count_visib"] < min_px:
                    continue
                model = load_model_mm(root, gt["obj_id"])
                R, t = np.array(gt["cam_R_m2c"]).reshape(3, 3), np.array(gt["cam_t_m2c"])
                full = cv2.imread(str(d / "mask" / f"{im_id:06d}_{k:06d}.png"), 0) > 0
                visib = cv2.imread(str(d / "mask_visib" / f"{im_id:06d}_{k:06d}.png"), 0) > 0
                agree = mask_agreement(model, K, R, t, full)
                assert agree > 0.99, f"{scene}/{im_id} gt {k}: only {agree:.3f} of points on mask"
                dist = depth_surface_distance(model, K, R, t, depth_mm, visib)
                if len(dist) > 20:
                    assert np.median(dist) < 0.2, f"{scene}/{im_id} gt {k}: median {np.median(dist):.2f} mm"
                    assert np.percentile(dist, 95) < 0.5, f"{scene}/{im_id} gt {k}: p95 {np.percentile(dist, 95):.2f} mm"
                checked += 1
    return checked


def rgbd_frames(n: int = 4, size=(64, 48), start_ns: int = 1_700_000_000_000_000_000,
                period_ns: int = 33_333_333, seed: int = 0, frame_id: str = "camera_color_optical_frame"):
    """``n`` synthetic RGB-D frames (simdata.bags.BagFrame) of a ``size`` = (W, H) camera at
    30 Hz: colour ramps (red along x, green along y, blue per frame) with noise, depth of a tilted plane 0.5-1.5 m with a hole (0 = no reading) in the
    top-left corner, and K (fx = fy = W)."""
    from simdata.bags import BagFrame

    w, h = size
    rng = np.random.default_rng(seed)
    K = np.array([[w, 0.0, (w - 1) / 2], [0.0, w, (h - 1) / 2], [0.0, 0.0, 1.0]])
    hole = np.zeros((h, w), bool)
    hole[: h // 4, : w // 4] = True
    frames = []
    for i in range(n):
        depth = np.linspace(0.5, 1.5, w, dtype=np.float32)[None].repeat(h, 0) + np.float32(0.01 * i)
        depth[hole] = 0.0
        rgb = rng.integers(0, 16, (h, w, 3), dtype=np.uint8)  # noise over red, green, blue ramps
        rgb[..., 0] += np.linspace(0, 230, w).astype(np.uint8)[None]
        rgb[..., 1] += np.linspace(0, 230, h).astype(np.uint8)[:, None]
        rgb[..., 2] += np.uint8(40 * i % 230)
        frames.append(BagFrame(start_ns + i * period_ns, frame_id, rgb, depth, K.copy()))
    return frames


def write_test_bag(path, frames, version: int = 2, storage: str = "mcap", colour_encoding: str = "rgb8",
                   depth_encoding: str = "16UC1", compressed=False, **kw):
    """Write ``frames`` as a RealSense driver records them (simdata.bag_writer.write_bag):
    /camera/color/image_raw, /camera/aligned_depth_to_color/image_raw, /camera/color/camera_info.
    ``version`` 1: a ROS 1 .bag (name the path X.bag); 2: a ROS 2 folder with one ``storage``
    ('mcap' or 'sqlite3') file. ``compressed``: False, True (lossless png), 'png' or 'jpeg':
    CompressedImage on TOPIC/compressed and compressedDepth on TOPIC/compressedDepth. Other
    keywords (``depth_delay_ns``, ``topics``) go to write_bag. Returns the path."""
    from simdata.bag_writer import write_bag

    compressed = "png" if compressed is True else (compressed or "")
    return write_bag(path, frames, version=version, storage=storage, colour_encoding=colour_encoding,
                     depth_encoding=depth_encoding, compressed=compressed, **kw)


def child_pids(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def descendants(pid: int) -> list[int]:
    """Process ids of the children of ``pid``, theirs, and so on."""
    kids = child_pids(pid)
    return kids + [pid for kid in kids for pid in descendants(kid)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def pool_workers(pid: int) -> list[int]:
    """Process ids of the pool workers of process ``pid``: the children of its fork server
    (simdata.pools), or its spawned children where workers are spawned."""
    kids = child_pids(pid)
    servers = [kid for kid in kids if b"multiprocessing.forkserver" in _cmdline(kid)]
    return ([w for server in servers for w in child_pids(server)]
            + [kid for kid in kids if b"spawn_main" in _cmdline(kid)])


@contextlib.contextmanager
def running_cli(*args):
    """`simdata ARGS` started in a session of its own (stderr piped, text), killed with its
    whole process group if it still runs when the block ends."""
    proc = subprocess.Popen([sys.executable, "-m", "simdata.cli", *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_until(ready, timeout: float = 300.0, poll: float = 0.02) -> None:
    """Poll ``ready()`` until it is true or ``timeout`` seconds have passed."""
    deadline = time.time() + timeout
    while not ready() and time.time() < deadline:
        time.sleep(poll)


def error_lines(stderr: str) -> list[str]:
    """The lines of a run's stderr, pybullet's build banner (printed on import) left out."""
    return [line for line in stderr.splitlines() if not line.startswith("pybullet build time")]
