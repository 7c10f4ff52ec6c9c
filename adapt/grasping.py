"""Grasping on depth images: data with GG-CNN grasp maps, the maps' loss, decoding a net's maps
into grasps, and the evaluations (rectangle metric; closed-loop grasps in pybullet beside a
random and a centroid baseline).

Units: pixels for planar grasps (simdata.grasping.planar), metres for depth and 6-DoF poses.
A grasp net outputs (B, 4, H, W): quality, cos 2a, sin 2a, width / WIDTH_SCALE_PX (px), the
maps of `simdata grasps` at the net's input resolution.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from simdata import BopDataset
from simdata.errors import SimdataError
from simdata.grasping import GripperConfig
from simdata.grasping.depth_check import DepthCheckConfig, inpaint_holes
from simdata.grasping.planar import PlanarGrasp, rectangle_match, wrap_angle

from .data import to_input
from .grasp_decode import (MIN_QUALITY, TILTS, TOP_K, WIDTH_SCALE_PX, best_grasps, centre_on_object,  # noqa: F401
                           gripper_config, maps_at_image_size, plan_grasp)
from .inputs import fit_plane_inverse_depth, image_input
from .scenes import SceneDomain, _resize

GRASP_CLASSES = ["grasp"]
POLICIES = ("net", "random", "centroid")


def _grasps_config(root: Path) -> dict:
    """The settings a dataset's grasp labels were made with (grasps_config.json), or {}."""
    path = Path(root) / "grasps_config.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def gripper_of(root: Path) -> GripperConfig:
    """The gripper a dataset was labelled with, else the default one."""
    return gripper_config(_grasps_config(root).get("gripper"))


def trial_physics_of(root: Path) -> dict:
    """The physics a dataset's grasp trials were made with, as try_grasp keywords (shake,
    solver_iterations): the defaults without labels, LEGACY_PHYSICS for labels written before
    it was recorded (simdata.grasping.labels.GraspLabelConfig)."""
    from simdata.grasping.labels import LEGACY_PHYSICS, GraspLabelConfig

    config = _grasps_config(root)
    base = LEGACY_PHYSICS if config else {k: getattr(GraspLabelConfig, k) for k in LEGACY_PHYSICS}
    return {k: config.get(k, v) for k, v in base.items()}


def depth_check_of(root: Path) -> DepthCheckConfig:
    """The depth-image check a dataset's labels were painted with, else the default one."""
    return DepthCheckConfig(**_grasps_config(root).get("depth_check", {}))


# -- data ------------------------------------------------------------------------------------------
def mirrored_angle(maps: torch.Tensor) -> torch.Tensor:
    """Grasp maps (..., 4, H, W) of an image mirrored about one axis, the angle made true: a
    mirror maps the closing axis' angle a to -a, so sin 2a changes sign (quality, cos 2a and
    width stay). The pixels themselves are the caller's to flip."""
    return maps * maps.new_tensor([1, 1, -1, 1])[:, None, None]


def augment_maps(x: torch.Tensor, maps: torch.Tensor | None, flip: bool, quarter_turns: int):
    """Flip (left-right) then turn by ``quarter_turns`` x 90 deg an image (C,S,S) and its grasp
    maps (4,S,S), keeping the angle maps true: a flip maps a -> -a (sin 2a changes sign), a
    quarter turn maps a -> a +- 90 deg (cos 2a and sin 2a both change sign)."""
    x = _turn(x.flip(-1) if flip else x, quarter_turns)
    if maps is not None:
        maps = _turn(mirrored_angle(maps.flip(-1)) if flip else maps, quarter_turns)
        if quarter_turns % 2:
            maps = maps * maps.new_tensor([1, -1, -1, 1])[:, None, None]
    return x, maps


def _turn(t: torch.Tensor, quarter_turns: int) -> torch.Tensor:
    return torch.rot90(t, quarter_turns, dims=(-2, -1)) if quarter_turns % 4 else t


class GraspDomain(SceneDomain):
    """Depth images (through the net's input normalisation) resized to ``height`` and cut into
    random ``crop`` squares, flipped and turned at random; from a simdata BOP dataset labelled
    by `simdata grasps` (key ``grasp``: the (4, crop, crop) maps, width in px at this size; and
    ``depth``: the simulator's clean depth, privileged information for SPIGAN) or an image
    folder with depth (unlabelled)."""

    def __init__(self, path, height: int, crop: int, stream: int, seed: int, channels: str, topics=None):
        super().__init__(path, height, crop, stream, seed, channels=channels, topics=topics)
        if channels == "rgb":
            raise SimdataError("--channels rgb: a grasp net takes depth (depth, height, rgbd or rgbh)")
        if isinstance(self.ds, BopDataset):
            unlabelled = [s for s in {sc for sc, _ in self.ds.items} if not (s / "scene_grasps.json").is_file()]
            if unlabelled:
                raise SimdataError(f"{sorted(unlabelled)[0]} has no grasp labels; run `simdata grasps "
                                   f"{self.path}` first")
            self.names = list(GRASP_CLASSES)
        else:
            self.names, self.labelled = [], False

    def _whole(self, index: int) -> dict:
        from simdata.grasping.labels import read_view_grasps

        s = self.ds[index]
        if not s.get("has_depth", True):
            raise SimdataError(f"{s.get('path', self.path)} has no depth file; a grasp net takes depth")
        h, w = s["rgb"].shape[-2:]
        hw = (self.height, max(self.crop, int(round(w * self.height / h))))
        depth = _resize(s["depth"], hw, "nearest")[None]
        out = {"x": to_input(_resize(s["rgb"], hw, "bilinear")[None], depth, self.channels)[0]}
        if isinstance(self.ds, BopDataset):
            scene, im_id = self.ds.items[index]
            maps = torch.from_numpy(read_view_grasps(scene, im_id)[0])
            maps = _resize(maps, hw, "nearest")
            maps[3] = maps[3] * (hw[0] / h) / WIDTH_SCALE_PX
            out["grasp"] = maps
            out["depth"] = _resize(s.get("depth_clean", s["depth"]), hw, "nearest")
        return out

    def augment(self, item: dict, rng: np.random.Generator) -> dict:
        """A random flip and quarter turn of a crop: its input, grasp maps and depth."""
        flip, turns = bool(rng.integers(2)), int(rng.integers(4))
        x, maps = augment_maps(item["x"], item.get("grasp"), flip, turns)
        out = {"x": x, **({"grasp": maps} if maps is not None else {})}
        if "depth" in item:
            out["depth"] = _turn(item["depth"].flip(-1) if flip else item["depth"], turns)
        return out


def grasp_loss(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """GG-CNN2's loss: the sum over the four maps of the smooth-L1 error, every pixel.
    pred, target (B, 4, H, W). Returns the loss and its parts (detached)."""
    parts = [F.smooth_l1_loss(pred[:, i], target[:, i]) for i in range(4)]
    return sum(parts), {k: p.detach() for k, p in zip(("quality", "cos", "sin", "width"), parts)}


# -- decoding --------------------------------------------------------------------------------------
@torch.no_grad()
def net_maps(task_net, rgb: torch.Tensor, depth: torch.Tensor, channels: str, height: int,
             device) -> np.ndarray:
    """Smoothed grasp maps (4, H, W) (width in px) of one whole image at its own resolution:
    rgb (3,H,W) [0,1] and depth (1,H,W) metres through adapt.inputs.image_input (resized to
    ``height``, padded to a multiple of 8), the net, and adapt.grasp_decode.maps_at_image_size
    (the maps resized back, width rescaled): what adapt.runtime.GraspPlanner does."""
    x, nw = image_input(rgb.permute(1, 2, 0).numpy(), depth[0].numpy(), channels, height)
    was = task_net.training
    task_net.eval()
    try:
        out = task_net(torch.from_numpy(x).to(device))[0].float().cpu().numpy()
    finally:
        task_net.train(was)
    return maps_at_image_size(out, height, nw, tuple(depth.shape[-2:]))


# -- baselines -------------------------------------------------------------------------------------
def random_grasp(masks: np.ndarray, rng: np.random.Generator, width_px: float) -> PlanarGrasp | None:
    """A grasp at a uniformly drawn pixel of any object's visible mask (masks (N,H,W) bool),
    at a uniformly drawn angle."""
    vs, us = np.nonzero(masks.any(0)) if len(masks) else (np.array([]), np.array([]))
    if not len(us):
        return None
    i = int(rng.integers(len(us)))
    return PlanarGrasp(float(us[i]), float(vs[i]), float(wrap_angle(rng.uniform(-np.pi / 2, np.pi / 2))),
                       width_px, 1.0)


def centroid_grasp(masks: np.ndarray, rng: np.random.Generator, min_px: int = 50) -> PlanarGrasp | None:
    """A grasp at the centroid of one visible object's mask, drawn among those with at least
    ``min_px`` pixels, closing across the mask's narrow side (its minor principal axis), as
    wide (px) as the mask is along that side."""
    big = [m for m in masks if m.sum() >= min_px]
    if not big:
        return None
    m = big[int(rng.integers(len(big)))]
    vs, us = np.nonzero(m)
    pts = np.stack([us, vs], 1).astype(float)
    c = pts.mean(0)
    _, evecs = np.linalg.eigh(np.cov((pts - c).T))
    minor = evecs[:, 0]  # eigenvalues ascending: the narrow direction
    across = (pts - c) @ minor
    return PlanarGrasp(float(c[0]), float(c[1]), float(wrap_angle(np.arctan2(minor[1], minor[0]))),
                       float(across.max() - across.min() + 1), 1.0)


def wilson_interval(k: int, n: int, z: float = 1.96) -> list[float]:
    """95 % Wilson score interval of a success rate k / n."""
    if n == 0:
        return [0.0, 1.0]
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return [round(float(c - h), 4), round(float(c + h), 4)]


# -- evaluation ------------------------------------------------------------------------------------
def _object_under(g: PlanarGrasp, masks: np.ndarray, obj_ids: list[int], models: dict) -> str:
    """Name of the object whose visible mask (masks (N,H,W) bool; obj_ids (N,) their BOP ids,
    ``models`` id -> ObjectModel) holds the grasp's centre pixel; "" when none does."""
    u, v = int(round(g.u)), int(round(g.v))
    if not (0 <= v < masks.shape[1] and 0 <= u < masks.shape[2]):
        return ""
    hit = np.flatnonzero(masks[:, v, u])
    return models[int(obj_ids[int(hit[0])])].name if len(hit) else ""


def per_object_success(per_image: list[dict], policies) -> dict:
    """{policy: {object name: [trials, successes]}} from evaluate_grasping's per-image rows:
    which objects each policy closed on, and how often it held them ("" = no object under the
    grasp centre; views without a plan are left out)."""
    out = {}
    for p in policies:
        table: dict = {}
        for row in per_image:
            name = row.get(f"object_{p}")
            if name is None:
                continue
            t = table.setdefault(name, [0, 0])
            t[0] += 1
            t[1] += int(bool(row[f"sim_{p}"]))
        out[p] = dict(sorted(table.items()))
    return out


def evaluate_grasping(task_net, domain: GraspDomain, device, trials: int = 200, seed: int = 0,
                      cache_dir: str = "", progress: bool = False, recentre: bool = True,
                      policies: tuple[str, ...] = POLICIES, refine: bool = True,
                      tilts=TILTS, top_k: int = TOP_K, min_quality: float = MIN_QUALITY,
                      silhouette: bool = True) -> dict:
    """Rectangle accuracy of the net's best grasp per image on a labelled grasp dataset, and
    closed-loop grasps in pybullet on ``trials`` of its images (evenly spread; 0 = none) for
    the net and both baselines: each executes its grasp (approach along the optical axis,
    centre depth from the sensor's depth, see simdata.grasping.depth_check) in that image's
    scene; success = an object lifted and held after the shake (the physics of the dataset's
    labels, trial_physics_of). The net tries its ``top_k`` best grasps (peaks of its smoothed
    quality map above ``min_quality``) in order and executes the first the depth-image check
    accepts (the check of the dataset's labels); each baseline has its one grasp, executed if
    the check accepts it.
    Every policy's grasp is first centred on the object it closes on (centre_on_object; not
    with ``recentre`` False), then turned and moved a little to where the depth image lets the
    fingers deepest (refine_grasp; not with ``refine`` False). When none of a policy's grasps
    passes along the optical axis, they are tried with the approach tilted as ``tilts`` lists
    (adapt.grasp_decode.executable_grasps; () = never). A grasp whose fingertips would stop
    above its object's outline is refused (adapt.grasp_decode.pads_reach_silhouette; not
    with ``silhouette`` False). Execution knows nothing the
    image does not show: no collision pre-check, no depth search; whatever the gripper
    touches on its way, physics settles.
    ``policies``: which of POLICIES are executed (an ablation of the net needs no baselines).
    Each policy's rate is also given on the labelled views alone (``labelled_view_*``: views
    from which the simulator found a grasp that succeeds and that the depth check accepts),
    which tells the policy's choices apart from views where no grasp along the camera axis can
    be made (clutter, a tall neighbour under the palm). ``outcomes`` counts how each policy's
    trials ended: held, slipped, dropped, missed (simdata.grasping.execute.trial_outcome) or
    no plan (none of its grasps passed the check).
    Returns numbers (JSON-able)."""
    from tqdm import tqdm

    from simdata.grasping import try_grasp
    from simdata.grasping.execute import trial_outcome
    from simdata.grasping.labels import load_dataset_models, read_view_grasps, scene_objects
    from simdata.transforms import invert_transform, make_transform

    ds = domain.ds
    gripper, check, physics = gripper_of(domain.path), depth_check_of(domain.path), trial_physics_of(domain.path)
    n = len(ds)
    sim = set(np.unique(np.linspace(0, n - 1, min(trials, n)).astype(int)).tolist()) if trials > 0 else set()
    models = load_dataset_models(domain.path) if sim else {}
    scenes: dict = {}
    correct = views = 0
    per_image = []
    outcomes = {p: [] for p in policies}
    labelled = {p: [] for p in policies}  # the trials on views with a labelled grasp
    for i in tqdm(range(n), desc="eval grasps", disable=not progress, dynamic_ncols=True):
        s = ds[i]
        scene, im_id = ds.items[i]
        depth = s["depth"][0].numpy()
        K = s["K"].numpy().astype(float)
        maps = net_maps(task_net, s["rgb"], s["depth"], domain.channels, domain.height, device)
        pred = best_grasps(maps, depth, K, gripper, n=top_k, min_quality=min_quality)
        _, rects = read_view_grasps(scene, im_id)
        truths = [PlanarGrasp(*r[:5]) for r in rects]
        hit = bool(pred and truths and rectangle_match(pred[0], truths))
        if truths:
            views += 1
            correct += hit
        row = {"image": f"{scene.name}/{im_id:06d}", "truths": len(truths), "rectangle_correct": hit,
               "grasp": ([round(v, 3) for v in (pred[0].u, pred[0].v, float(np.degrees(pred[0].angle)),
                                                   pred[0].width, pred[0].quality)] if pred else None)}
        if i in sim:
            if scene not in scenes:
                scenes[scene] = scene_objects(scene, models)
            objects = scenes[scene]
            T_world_cam = invert_transform(make_transform(s["R_w2c"].double().numpy(), s["t_w2c"].double().numpy()))
            plane = fit_plane_inverse_depth(depth)
            filled = inpaint_holes(depth)
            masks = s["masks_visib"].numpy()
            rng = np.random.default_rng([seed, i])
            open_px = gripper.max_opening * K[0, 0] / max(float(np.median(depth[depth > 0])), 1e-3)
            choices = {"net": pred, "random": [random_grasp(masks, rng, open_px)],
                       "centroid": [centroid_grasp(masks, rng)]}
            for name in policies:
                gs = choices[name]
                ok = False
                plan = plan_grasp(gs, depth, K, gripper, check, filled, plane, recentre, refine, tilts,
                                  silhouette)
                if plan is not None:
                    r = try_grasp(objects, T_world_cam @ plan[1], gripper, search_depth=False,
                                  precheck=False, opening_m=plan[2], cache_dir=cache_dir, **physics)
                    ok = bool(r["success"])
                outcomes[name].append(ok)
                row[f"outcome_{name}"] = trial_outcome(r) if plan is not None else "no plan"
                if truths:
                    labelled[name].append(ok)
                row[f"sim_{name}"] = ok
                # how the grasp was executed: degrees off the optical axis (None: no plan) and
                # whether the open gripper touched anything where it was put
                row[f"approach_deg_{name}"] = (round(float(np.degrees(np.arccos(np.clip(plan[1][2, 2], -1, 1)))), 1)
                                              if plan is not None else None)
                row[f"touched_{name}"] = (not r["collision_free"]) if plan is not None else None
                # the object the grasp closed on: the one whose visible mask holds its centre
                row[f"object_{name}"] = (_object_under(plan[0], masks, s["obj_ids"].tolist(), models)
                                         if plan is not None else None)
        per_image.append(row)
    res = {"images": n, "rectangle_views": views,
           "rectangle_accuracy": round(correct / views, 4) if views else None}
    if sim:
        res["simulated"] = {p: {"trials": len(o), "successes": int(sum(o)),
                                "success_rate": round(sum(o) / len(o), 4) if o else None,
                                "ci95": wilson_interval(int(sum(o)), len(o)),
                                "labelled_view_trials": len(labelled[p]),
                                "labelled_view_success_rate":
                                    round(sum(labelled[p]) / len(labelled[p]), 4) if labelled[p] else None,
                                # how the trials ended (simdata.grasping.execute.trial_outcome)
                                "outcomes": dict(Counter(row[f"outcome_{p}"] for row in per_image
                                                         if f"outcome_{p}" in row).most_common())}
                            for p, o in outcomes.items()}
        res["trial_physics"] = physics  # the shake and solver of these trials (trial_physics_of)
        res["per_object"] = per_object_success(per_image, policies)
    res["per_image"] = per_image
    return res
