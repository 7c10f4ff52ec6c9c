"""Grasp labels of a rendered simdata BOP dataset: grasp trials in each settled scene, and
planar grasp maps for each view (``simdata grasps``).

Per scene (written last, so its presence marks the scene done; a rerun skips it)::

    train_pbr/NNNNNN/scene_grasps.json   every grasp tried in the scene, in the world frame
                                         (z up, the table top is z = 0): obj_id, inst (index in
                                         scene_gt), R_world_grasp (9, row-major), t_world_grasp_mm
                                         (the pose executed, after the depth search), width_mm
                                         (contact distance), opening_mm (how wide the fingers
                                         opened: the widest that fits, depth_check.openings),
                                         quality (antipodal, 0..1),
                                         collision_free, success, lift_mm; with --robustness K
                                         also robustness: the share of the grasp and K perturbed
                                         copies of it that held (successful grasps only); with
                                         --trials mapped, success is null for collision-free
                                         grasps not simulated because no view's maps could
                                         show them
    train_pbr/NNNNNN/grasps/NNNNNN.npz   per image: maps (4, H, W) float16 = quality (1, or
                                         the grasp's robustness when measured), cos 2a,
                                         sin 2a, width px (simdata.grasping.planar) and rects
                                         (n, 6) float32 = u, v, angle (rad), width px, height px,
                                         inst, of the successful grasps approaching within
                                         view_cone_deg of the optical axis whose centre is seen
                                         on the grasped object's visible mask and which the
                                         depth-image check accepts from this view's sensor
                                         depth (simdata.grasping.depth_check): what a robot
                                         seeing this image could execute
    grasps_config.json                   the settings the labels were made with (dataset root)

Objects come from the dataset's own models (models/obj_NNNNNN.ply, mm) at their settled poses
(scene_gt.json and scene_camera.json) as the scene physics simulated them: mass, centre of
mass, inertia and collision parts from objects.json and models/collision/ (with --collision
auto; datasets written before those were recorded: hull when convex, else a cached VHACD of
the model, mass from a density). Scenes with distractors are refused:
their geometry is not in the dataset. Deterministic: scene i uses the generator (seed, i).
"""
from __future__ import annotations

import json
import logging
from concurrent.futures import as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..bop_layout import SPLIT, scene_dirs
from ..errors import SimdataError
from ..fileio import disk_error, read_image, write_bytes_atomic, write_json_atomic
from ..transforms import M_TO_MM, invert_transform, make_transform
from ..types import ObjectModel
from ..pools import worker_executor, start_fork_server
from .antipodal import antipodal_cached
from .depth_check import DepthCheckConfig, inpaint_holes, openings, plan_grasp_depth
from .execute import try_grasp
from .gripper import GripperConfig
from .planar import approach_angle, paint_grasp_maps, project_grasp

log = logging.getLogger(__name__)

SCENE_FILE = "scene_grasps.json"
CONFIG_FILE = "grasps_config.json"
# the trials' physics of labels written before grasps_config.json recorded it (2026-11-27)
LEGACY_PHYSICS = {"shake": "sine", "solver_iterations": 20}
DOWN = np.array([0.0, 0.0, -1.0])
TRIALS = ("all", "mapped")  # GraspLabelConfig.trials


@dataclass
class GraspLabelConfig:
    """How grasps are labelled (metres, degrees)."""

    candidates: int = 48            # grasps tried per object instance and scene
    samples: int = 300              # surface points per model for antipodal sampling (cached)
    friction: float = 0.5           # friction coefficient of the antipodal test's cones
    approach_cone_deg: float = 45.0  # tried grasps approach within this of straight down
    view_cone_deg: float = 30.0     # maps: successful grasps within this of a view's optical axis
    seed: int = 0
    collision: str = "auto"         # object collision geometry: auto, vhacd or hull
    # Dex-Net's robust quality: each successful grasp is tried again this many times, moved in
    # the gripper's plane and turned about its approach by Gaussian amounts (the errors of a
    # net's grasp); the maps' quality is the share that held, so a net learns to prefer grasps
    # that survive its own errors (0: quality 1 for every successful grasp)
    robustness: int = 0
    perturb_mm: float = 4.0         # standard deviation of the shift along each in-plane axis
    perturb_deg: float = 10.0       # standard deviation of the turn about the approach
    # the trials' physics (simdata.grasping.execute.try_grasp): the shake after the lift
    # (SHAKES: "arm" = as hard as an arm's Cartesian limits allow; "sine" = 5 Hz sines; "none")
    # and pybullet's solver iterations per step; labels made before 2026-11-27 had sine and 20
    shake: str = "arm"
    solver_iterations: int = 100
    # which collision-free candidates are simulated: "all" (scene_grasps.json then has every
    # outcome, for 6-DoF uses) or "mapped": only those some view's maps could show (approach
    # within view_cone_deg of its optical axis, centre on the visible mask, accepted by the
    # depth check); the maps are the same, made with some two in five of the trials
    trials: str = "all"
    gripper: GripperConfig = field(default_factory=GripperConfig)
    depth_check: DepthCheckConfig = field(default_factory=DepthCheckConfig)

    def validate(self) -> None:
        from .execute import SHAKES

        if self.shake not in SHAKES:
            raise SimdataError(f"--shake {self.shake!r}: use {', '.join(SHAKES)}")
        if self.solver_iterations < 1:
            raise SimdataError(f"--solver-iterations {self.solver_iterations} must be at least 1")
        if self.candidates < 1 or self.samples < 1:
            raise SimdataError("--candidates and --samples must be at least 1")
        if not 0 < self.approach_cone_deg <= 90 or not 0 < self.view_cone_deg <= 90:
            raise SimdataError("--approach-cone and --view-cone are angles in (0, 90] degrees")
        if self.friction <= 0:
            raise SimdataError("--friction must be positive")
        if self.robustness < 0 or self.perturb_mm < 0 or self.perturb_deg < 0:
            raise SimdataError("--robustness, --perturb-mm and --perturb-deg must not be negative")
        defaults = (GraspLabelConfig.perturb_mm, GraspLabelConfig.perturb_deg)
        if not self.robustness and (self.perturb_mm, self.perturb_deg) != defaults:
            raise SimdataError("--perturb-mm and --perturb-deg perturb the --robustness trials; "
                               "give --robustness K (K >= 1) too")
        if self.trials not in TRIALS:
            raise SimdataError(f"--trials {self.trials!r}: use {' or '.join(TRIALS)}")
        if self.collision not in ("auto", "vhacd", "hull"):
            raise SimdataError(f"--collision {self.collision!r}: use auto, vhacd or hull")


def load_dataset_models(root: Path) -> dict[int, ObjectModel]:
    """obj_id -> ObjectModel (mesh in metres) from a BOP dataset's models/ folder (mm).

    Not simdata.crops.dataset_models: trimesh's process=True keeps the PLY's per-face vertex
    copies (they carry normals and colours: a box has 24 vertices, not 8), so a box is not
    seen convex and would get a VHACD decomposition; here vertices are merged by position.
    Mass, centre of mass and inertia are those the scene physics simulated (objects.json's
    "physics", written by simdata render): a URDF's where the model had one, else the mesh's at
    the render's density. Datasets written before it was recorded fall back to try_grasp's
    density."""
    import trimesh

    info_path = root / "models" / "models_info.json"
    if not info_path.is_file():
        raise SimdataError(f"{root} has no models/models_info.json; is it a simdata BOP dataset?")
    names = json.loads((root / "objects.json").read_text()) if (root / "objects.json").is_file() else {}
    models = {}
    for key in sorted(json.loads(info_path.read_text()), key=int):
        oid = int(key)
        path = root / "models" / f"obj_{oid:06d}.ply"
        try:
            mesh = trimesh.load(path, force="mesh", process=False)
        except Exception as e:  # noqa: BLE001 - any parse failure is the same fix
            raise SimdataError(f"cannot read model {path} ({e}); re-render the dataset") from None
        mesh.merge_vertices()  # BOP PLYs repeat vertices per face: merged, convexity is seen
        mesh.apply_scale(1.0 / M_TO_MM)
        entry = names.get(key, {})
        body = entry.get("physics") or {}  # what the scene physics simulated (absent: older data)
        collision = body.get("collision") or {}  # the shapes the scenes were settled with
        models[oid] = ObjectModel(
            obj_id=oid, name=entry.get("name", f"obj_{oid:06d}"), mesh=mesh, source=path, unit="mm",
            collision_path=root / collision["file"] if "file" in collision else None,
            scale=float(collision.get("scale", 1.0)),
            mass_kg=float(body["mass_kg"]) if "mass_kg" in body else None,
            com_m=np.asarray(body["com_m"], float) if "com_m" in body else None,
            inertia_diag=np.asarray(body["inertia_diag"], float) if "inertia_diag" in body else None)
    unknown = [m.name for m in models.values() if m.mass_kg is None]
    if unknown:
        log.warning("%s records no rigid bodies for %s (objects.json has no \"physics\": rendered "
                    "before simdata recorded them, or not by simdata); grasp trials take their "
                    "mesh volume at 500 kg/m^3 about its centroid: re-render to lift the bodies "
                    "the scenes were settled with", root, ", ".join(unknown[:3]) +
                    (f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""))
    return models


def scene_objects(scene: Path, models: dict[int, ObjectModel]) -> list[tuple[ObjectModel, np.ndarray]]:
    """(model, T_world_obj (4x4, metres)) of every object instance of a scene, in scene_gt order."""
    cams = json.loads((scene / "scene_camera.json").read_text())
    gts = json.loads((scene / "scene_gt.json").read_text())
    im = sorted(cams, key=int)[0]
    cam = cams[im]
    if "cam_R_w2c" not in cam:
        raise SimdataError(f"{scene}/scene_camera.json has no cam_R_w2c; grasp labels need the "
                           f"world frame (render the dataset with simdata)")
    T_cam_world = make_transform(np.reshape(cam["cam_R_w2c"], (3, 3)), np.array(cam["cam_t_w2c"]) / M_TO_MM)
    T_world_cam = invert_transform(T_cam_world)
    out = []
    for gt in gts[im]:
        T_cam_obj = make_transform(np.reshape(gt["cam_R_m2c"], (3, 3)), np.array(gt["cam_t_m2c"]) / M_TO_MM)
        out.append((models[int(gt["obj_id"])], T_world_cam @ T_cam_obj))
    return out


def _top_down(axis: np.ndarray) -> np.ndarray | None:
    """The approach closest to straight down that is perpendicular to ``axis`` (world frame)."""
    a = DOWN - (DOWN @ axis) * axis
    n = np.linalg.norm(a)
    return a / n if n > 1e-6 else None


def scene_candidates(objects, cfg: GraspLabelConfig, rng: np.random.Generator, cache_dir: Path):
    """Grasps to try in a scene: [(inst, T_world_grasp (4x4), width m, quality)].

    Per instance: the model's antipodal pairs (cached), each with its sampled approaches and
    the approach nearest straight down; those within ``approach_cone_deg`` of straight down,
    at most ``candidates`` of them drawn without replacement."""
    cone = np.cos(np.radians(cfg.approach_cone_deg))
    out = []
    for inst, (model, T_world_obj) in enumerate(objects):
        grasps = antipodal_cached(model.mesh, cache_dir, seed=cfg.seed, n=cfg.samples,
                                  cfg=cfg.gripper, friction_coef=cfg.friction)
        R, t = T_world_obj[:3, :3], T_world_obj[:3, 3]
        pool, seen = [], set()
        for g in grasps:
            centre, axis = R @ g.centre + t, R @ g.axis
            approaches = [R @ g.approach]
            key = (tuple(np.round(g.centre, 9)), tuple(np.round(g.axis, 9)))
            if key not in seen:  # one top-down approach per contact pair
                seen.add(key)
                td = _top_down(axis)
                if td is not None:
                    approaches.append(td)
            for a in approaches:
                if a @ DOWN >= cone:
                    T = np.eye(4)
                    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = axis, np.cross(a, axis), a, centre
                    pool.append((inst, T, g.width, g.quality))
        if pool:
            pick = rng.choice(len(pool), size=min(cfg.candidates, len(pool)), replace=False)
            out += [pool[i] for i in sorted(pick)]
    return out


def perturbed_pose(T: np.ndarray, rng: np.random.Generator, shift_m: float, turn_deg: float) -> np.ndarray:
    """``T`` (4x4 gripper pose, metres; x closing, z approach) shifted along its own x and y by
    N(0, ``shift_m``) each and turned about its approach axis by N(0, ``turn_deg``) degrees."""
    dx, dy = rng.normal(0.0, shift_m, 2)
    a = np.radians(rng.normal(0.0, turn_deg))
    c, s = np.cos(a), np.sin(a)
    out = T.copy()
    out[:3, 3] = T[:3, 3] + dx * T[:3, 0] + dy * T[:3, 1]
    out[:3, :2] = T[:3, :2] @ np.array([[c, -s], [s, c]])
    return out


def label_scene(scene: Path, models: dict[int, ObjectModel], cfg: GraspLabelConfig,
                cache_dir: Path) -> dict:
    """Try the scene's candidates, write its grasp maps and scene_grasps.json; returns counts."""
    info = json.loads((scene / "scene_simdata.json").read_text()) if (scene / "scene_simdata.json").is_file() else {}
    if info.get("style", {}).get("distractors_kept", 0):
        raise SimdataError(f"{scene} holds distractors, whose geometry grasp trials cannot see; "
                           f"render grasp data without --randomize distractors (or with --distractors 0:0)")
    if any(c.get("kind") == "bin" for c in info.get("style", {}).get("clutter", [])):
        raise SimdataError(f"{scene} stands in a bin, whose walls grasp trials cannot see; render "
                           f"grasp data without --randomize bins")
    objects = scene_objects(scene, models)
    rng = np.random.default_rng([cfg.seed, int(scene.name)])
    records = []
    # the perturbations draw from a generator of their own: labels without --robustness stay
    # the same as before it existed
    prng = np.random.default_rng([cfg.seed, int(scene.name), 1])

    views = SceneViews(scene, cfg)

    def shown(inst, width):  # the check of write_view_maps, on the pose as the record keeps it
        def check(T_exec):
            rec = T_exec.copy()  # through millimetres and back, as record_pose reads it:
            rec[:3, 3] = T_exec[:3, 3] * M_TO_MM / M_TO_MM  # the maps' check sees those bits
            return views.in_any_view(inst, rec, width)
        return check

    def holds(inst, T, width, execute_if=None) -> tuple[bool, dict]:
        r = try_grasp(objects, T, cfg.gripper, collision=cfg.collision, shake=cfg.shake,
                      solver_iterations=cfg.solver_iterations,
                      opening_m=openings(width, cfg.gripper, cfg.depth_check), cache_dir=str(cache_dir),
                      execute_if=execute_if)
        return bool(r["success"] and r["object"] == inst), r

    trials = executed = 0
    for inst, T, width, quality in scene_candidates(objects, cfg, rng, cache_dir):
        success, r = holds(inst, T, width, shown(inst, width) if cfg.trials == "mapped" else None)
        trials += 1
        executed += r["executed"]
        T_exec = T.copy()
        T_exec[:3, 3] -= r["depth_back_m"] * T[:3, 2]
        records.append({"obj_id": objects[inst][0].obj_id, "inst": inst,
                        "R_world_grasp": [float(v) for v in T_exec[:3, :3].ravel()],
                        "t_world_grasp_mm": [float(v) for v in T_exec[:3, 3] * M_TO_MM],
                        "width_mm": float(width * M_TO_MM), "opening_mm": float(r["opening_m"] * M_TO_MM),
                        "quality": float(quality),
                        "collision_free": r["collision_free"],
                        # None: collision-free but not simulated (trials "mapped": no view shows it)
                        "success": success if r["executed"] or not r["collision_free"] else None,
                        "lift_mm": float(r["lift_m"] * M_TO_MM)})
        if success and cfg.robustness:
            tries = [holds(inst, perturbed_pose(T, prng, cfg.perturb_mm / M_TO_MM, cfg.perturb_deg), width)
                     for _ in range(cfg.robustness)]
            trials += cfg.robustness
            executed += sum(r2["executed"] for _, r2 in tries)
            records[-1]["robustness"] = (1 + sum(ok for ok, _ in tries)) / (1 + cfg.robustness)
    images = write_view_maps(scene, records, cfg, views)
    write_json_atomic(scene / SCENE_FILE, {"grasps": records})
    return {"scenes": 1, "trials": trials, "collision_free": sum(r["collision_free"] for r in records),
            "executed": executed, "successes": sum(bool(r["success"]) for r in records), "images": images}


def record_pose(rec: dict) -> np.ndarray:
    """T_world_grasp (4x4, metres) of a scene_grasps.json record."""
    return make_transform(np.reshape(rec["R_world_grasp"], (3, 3)), np.array(rec["t_world_grasp_mm"]) / M_TO_MM)


class SceneViews:
    """A scene's views as its maps see them: cameras, sensor depth (and inpainted), visible
    masks, each read once, when first needed."""

    def __init__(self, scene: Path, cfg: GraspLabelConfig):
        self.scene, self.cfg = scene, cfg
        self.cams = json.loads((scene / "scene_camera.json").read_text())
        self.ids = sorted(self.cams, key=int)
        # per view: K (3x3) and T_cam_world (4x4, metres), once for all the scene's candidates
        self.frames = {im: (np.reshape(c["cam_K"], (3, 3)),
                            make_transform(np.reshape(c["cam_R_w2c"], (3, 3)), np.array(c["cam_t_w2c"]) / M_TO_MM))
                       for im, c in self.cams.items()}
        self._depth: dict = {}
        self._filled: dict = {}
        self._masks: dict = {}

    def depth(self, im: str) -> np.ndarray:
        """The view's sensor depth, metres (H, W): what the net will see."""
        if im not in self._depth:
            cam = self.cams[im]
            self._depth[im] = read_image(self.scene / "depth" / f"{int(im):06d}.png").astype(np.float32) \
                * cam["depth_scale"] / M_TO_MM
        return self._depth[im]

    def filled(self, im: str) -> np.ndarray:
        """:meth:`depth` with its holes inpainted (depth_check.inpaint_holes)."""
        if im not in self._filled:
            self._filled[im] = inpaint_holes(self.depth(im))
        return self._filled[im]

    def mask(self, im: str, inst: int) -> np.ndarray:
        if (im, inst) not in self._masks:
            self._masks[im, inst] = read_image(self.scene / "mask_visib" / f"{int(im):06d}_{inst:06d}.png") > 0
        return self._masks[im, inst]

    def grasp_in_view(self, im: str, inst: int, T_world_grasp: np.ndarray, width_m: float):
        """The planar grasp (simdata.grasping.planar.PlanarGrasp) that view ``im``'s maps show
        for this 6-DoF grasp of instance ``inst``, or None: it approaches farther than
        view_cone_deg from the optical axis, its centre is hidden or out of view, or the
        depth-image check refuses it from this view's sensor depth."""
        K, T_cam_world = self.frames[im]
        T_cam_grasp = T_cam_world @ T_world_grasp
        if approach_angle(T_cam_grasp) > np.radians(self.cfg.view_cone_deg):
            return None
        g = project_grasp(T_cam_grasp, width_m, self.cfg.gripper.finger_width, K)
        if g is None:
            return None
        m = self.mask(im, inst)
        u, v = int(round(g.u)), int(round(g.v))
        if not (0 <= v < m.shape[0] and 0 <= u < m.shape[1] and m[v, u]):
            return None  # its centre is hidden or out of view
        if plan_grasp_depth(self.depth(im), g, K, self.cfg.gripper, self.cfg.depth_check,
                            self.filled(im)) is None:
            return None  # not executable from this view's depth
        return g

    def in_any_view(self, inst: int, T_world_grasp: np.ndarray, width_m: float) -> bool:
        return any(self.grasp_in_view(im, inst, T_world_grasp, width_m) is not None for im in self.ids)


def write_view_maps(scene: Path, records: list[dict], cfg: GraspLabelConfig,
                    views: SceneViews | None = None) -> int:
    """grasps/NNNNNN.npz of every image of a scene (see the module docstring); returns the count."""
    import io

    views = views or SceneViews(scene, cfg)
    (scene / "grasps").mkdir(exist_ok=True)
    for im in views.ids:
        rects, planar = [], []
        for rec in records:
            if not rec["success"]:
                continue
            g = views.grasp_in_view(im, rec["inst"], record_pose(rec), rec["width_mm"] / M_TO_MM)
            if g is None:
                continue
            g.quality = rec.get("robustness", 1.0)
            planar.append(g)
            rects.append([g.u, g.v, g.angle, g.width, g.height, rec["inst"]])
        maps = paint_grasp_maps(planar, views.depth(im).shape)
        buf = io.BytesIO()
        np.savez_compressed(buf, maps=maps.astype(np.float16),
                            rects=np.array(rects, np.float32).reshape(-1, 6))
        write_bytes_atomic(scene / "grasps" / f"{int(im):06d}.npz", buf.getvalue())
    return len(views.ids)


def read_view_grasps(scene: Path, im_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(maps (4, H, W) float32, rects (n, 6) float32) of one image (see the module docstring)."""
    path = scene / "grasps" / f"{im_id:06d}.npz"
    if not path.is_file():
        raise SimdataError(f"{path} is missing; label the dataset with `simdata grasps {scene.parent.parent}`")
    with np.load(path) as z:
        return z["maps"].astype(np.float32), z["rects"].astype(np.float32)


# pool workers' state (set by the initializer, never in the parent)
_worker: dict = {}


def _init_worker(models, cfg, cache_dir):
    _worker.update(models=models, cfg=cfg, cache_dir=cache_dir)


def _work(scene: Path) -> dict:
    try:
        return label_scene(scene, _worker["models"], _worker["cfg"], _worker["cache_dir"])
    except SimdataError as e:
        return {"error": str(e)}


def label_dataset(root: str | Path, cfg: GraspLabelConfig, workers: int = 1, cache_dir: str = "",
                  progress: bool = True) -> dict:
    """Label every scene of a dataset that has no scene_grasps.json yet (resuming); returns
    totals: scenes, skipped, trials, collision_free, executed (trials simulated), successes,
    images."""
    from tqdm import tqdm

    from ..physics import PhysicsConfig, default_cache_dir

    cfg.validate()
    root = Path(root)
    if not (root / SPLIT).is_dir():
        raise SimdataError(f"{root} has no {SPLIT}/ folder; render a dataset first (simdata render)")
    settings = json.loads(json.dumps(asdict(cfg)))
    cfg_path = root / CONFIG_FILE
    if cfg_path.is_file():
        # a field added since (robustness, ...) reads as its default in an older file
        # (but the trials' physics: labels written before it was recorded had LEGACY_PHYSICS)
        old = {**json.loads(json.dumps(asdict(GraspLabelConfig()))), **LEGACY_PHYSICS,
               **json.loads(cfg_path.read_text())}
        if old != settings:
            diff = sorted(k for k in settings if old.get(k) != settings[k])
            raise SimdataError(f"{root} was labelled with other settings ({', '.join(diff)} differ, "
                               f"see {cfg_path}); use the same options, or delete {cfg_path} and "
                               f"every scene_grasps.json to relabel")
    else:
        try:
            write_json_atomic(cfg_path, settings)
        except OSError as e:
            raise disk_error(cfg_path, e) from None
    scenes = scene_dirs(root)
    todo = [s for s in scenes if not (s / SCENE_FILE).is_file()]
    if workers > 1 and len(todo) > 1:
        start_fork_server()  # the pool's processes: their imports overlap loading the models
    models = load_dataset_models(root)
    cache = default_cache_dir(PhysicsConfig(cache_dir=cache_dir))
    totals = {"scenes": 0, "skipped": len(scenes) - len(todo), "trials": 0, "collision_free": 0,
              "executed": 0, "successes": 0, "images": 0}
    bar = tqdm(total=len(todo), unit="scene", desc="grasps", disable=not progress or not todo,
               dynamic_ncols=True)

    def collect(stats):
        if "error" in stats:
            raise SimdataError(stats["error"])
        for k in stats:
            totals[k] += stats[k]
        bar.update(1)

    try:
        if workers <= 1 or len(todo) <= 1:
            for s in todo:
                collect(label_scene(s, models, cfg, cache))
        else:
            with worker_executor(min(workers, len(todo)), _init_worker, (models,), (cfg, cache),
                                 who="a grasp-labelling worker process",
                                 then="labelled scenes are kept: rerun the command to resume it") as pool:
                for done in as_completed([pool.submit(_work, s) for s in todo]):
                    collect(done.result())
    except OSError as e:
        raise disk_error(root, e) from None
    finally:
        bar.close()
    return totals
