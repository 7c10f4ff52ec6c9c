"""Predict with a trained run and draw what it predicts: coloured masks over images for
segmentation runs, pose axes and model points over crops for pose runs."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch

from simdata import ImageFolder
from simdata.errors import SimdataError
from simdata.fileio import write_bytes_atomic, write_image
from simdata.preview import overlay_masks
from simdata.transforms import project_points

from .inputs import image_input, labels_at_image_size
from .trainer import load_run


def predict(run: str | Path, folder: str | Path, out: str | Path, device: str = "auto") -> int:
    """Run ``run``'s task net on ``folder`` and write its pictures to ``out`` (the task says how)."""
    method, conf = load_run(run, device)
    Path(out).mkdir(parents=True, exist_ok=True)
    return method.task.predict(method, conf, folder, out)


# -- segmentation ---------------------------------------------------------------------------------
@torch.no_grad()
def segment(task_net, rgb: torch.Tensor, depth: torch.Tensor | None, channels: str, height: int,
            device) -> np.ndarray:
    """(3,H,W) rgb in [0,1] and (1,H,W) depth in metres (or None for rgb nets) -> (H,W) uint8
    labels: through adapt.inputs.image_input (resized to ``height``, padded to a multiple of 8),
    the net and adapt.inputs.labels_at_image_size (argmax, resized back, nearest): what
    adapt.runtime.Segmenter does."""
    x, nw = image_input(rgb.permute(1, 2, 0).numpy(), None if depth is None else depth[0].numpy(),
                        channels, height)
    logits = task_net(torch.from_numpy(x).to(device))[0].float().cpu().numpy()
    return labels_at_image_size(logits, height, nw, tuple(rgb.shape[-2:]))


def predict_segmentation_folder(method, conf: dict, folder, out) -> int:
    """NAME_labels.png (raw class ids) and NAME_color.png (coloured masks of every class but
    the first two, or but the first with object / not object labels, over the image)."""
    images = ImageFolder(folder)
    out = Path(out)
    height, channels = conf["train"]["height"], conf["data"]["channels"]
    classes = method.data.classes
    first_object = first_object_class(classes)
    for i in range(len(images)):
        s = images[i]
        if channels != "rgb" and not s["has_depth"]:
            raise SimdataError(f"{s['path']} has no depth file; this net takes {channels}")
        labels = segment(method.task_net, s["rgb"], s["depth"] if channels != "rgb" else None,
                         channels, height, method.device)
        stem = Path(s["path"]).stem
        write_image(out / f"{stem}_labels.png", labels)
        rgb = (s["rgb"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        masks = [labels == c for c in range(first_object, len(classes))]
        write_image(out / f"{stem}_color.png", legend(overlay_masks(rgb, masks, alpha=0.5),
                                                      classes[first_object:]))
    return len(images)


def first_object_class(classes: list[str]) -> int:
    """Index of the first class drawn as a mask: "object" of object / not object, else the
    first after background and table."""
    return classes.index("object") if "object" in classes and len(classes) == 2 else 2


def segmentation_figure(net, domain, device, per_image_iou: list[float], out) -> int:
    """One picture per labelled image of ``domain`` in ``out``: input | truth | prediction
    (classes from the first object class coloured, legend below), its mIoU in the corner; for
    depth inputs the depth channel as a fourth tile. Returns the number of pictures."""
    from .evaluate import segment_domain
    from .scenes import IGNORE

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = domain.names
    first = first_object_class(names)
    for i, x, y, pred in segment_domain(net, domain, device):
        rgb = ((x[:3] + 1) * 127.5 if x.shape[0] >= 3 else (x[:1].expand(3, -1, -1) + 1) * 127.5)
        rgb = np.ascontiguousarray(rgb.clamp(0, 255).byte().permute(1, 2, 0).numpy())
        tiles = [rgb]
        for lab in (y, pred):
            masks = [(lab == c).numpy() for c in range(first, len(names))]
            tile = overlay_masks(rgb, masks, alpha=0.6)
            tile[(lab == IGNORE).numpy()] = 255
            tiles.append(tile)
        if x.shape[0] in (1, 4):
            d = ((x[-1] + 1) * 127.5).clamp(0, 255).byte().numpy()
            tiles.append(cv2.applyColorMap(d, cv2.COLORMAP_TURBO)[..., ::-1])
        img = np.concatenate(tiles, 1)
        img = cv2.resize(img, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        item = domain.ds.items[i]  # ImageFolder: {"rgb": path, ...}; BopDataset: (scene, im_id)
        name = Path(item["rgb"]).stem if isinstance(item, dict) else f"{item[0].name}_{item[1]:06d}"
        text = f"{name}: mIoU {per_image_iou[i]:.3f} | truth | prediction"
        cv2.putText(img, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        write_image(out / f"{name}.png", legend(img, names[first:]))
    return len(domain)


def legend(img: np.ndarray, names: list[str]) -> np.ndarray:
    """A strip under ``img`` naming the overlay colours (simdata.preview.PALETTE order)."""
    from simdata.preview import PALETTE

    strip = np.zeros((18 * len(names) + 4, img.shape[1], 3), np.uint8)
    for k, name in enumerate(names):
        y = 4 + 18 * k
        strip[y:y + 12, 4:16] = PALETTE[k % len(PALETTE)]
        cv2.putText(strip, name, (22, y + 11), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return np.vstack([img, strip])


# -- pose -------------------------------------------------------------------------------------------
AXIS_COLORS = ((255, 60, 60), (60, 255, 60), (80, 140, 255))  # x red, y green, z blue


def draw_pose(img: np.ndarray, R: np.ndarray, t_m: np.ndarray, K: np.ndarray, axis_m: float,
              points_m: np.ndarray | None = None, scale: int = 1, thickness: int = 2,
              point_color=(255, 255, 0)) -> np.ndarray:
    """Draw a pose on an RGB image in place: model points (N,3, metres) as dots and the
    model's axes (``axis_m`` long) projected with K (3,3). ``scale`` = image px per K pixel."""
    def project(p):
        uv = project_points((R @ p.T).T + t_m, K)
        return np.round((uv + 0.5) * scale - 0.5).astype(int)

    if points_m is not None:
        for u, v in project(points_m):
            if 0 <= u < img.shape[1] and 0 <= v < img.shape[0]:
                img[v, u] = point_color
    ends = project(np.vstack([np.zeros(3), np.eye(3) * axis_m]))
    for k in range(3):
        cv2.line(img, tuple(map(int, ends[0])), tuple(map(int, ends[k + 1])), AXIS_COLORS[k],
                 thickness, cv2.LINE_AA)
    return img


def pose_crops(method, conf: dict, folder):
    """The crops folder ``folder`` as a Domain of the run's size and channels (refused when it
    is no crops folder or names other classes)."""
    from .data import Domain

    if not (Path(folder) / "labels.jsonl").is_file():
        raise SimdataError(f"{folder} is no crops folder; pose runs predict on crops "
                           f"(simdata crops, or render --mode crops)")
    domain = Domain(folder, method.data.size, conf["data"]["channels"], stream=99, seed=0)
    if domain.names != method.data.classes:
        raise SimdataError(f"{folder} names other classes than the run; use crops of the same meshes")
    return domain


@torch.no_grad()
def predict_poses(method, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A pose run's predictions for a batch of crops (Domain.items): class probabilities (B,C),
    rotations model -> camera (B,3,3) and translations (B,3) in metres."""
    from .translation import decode_translation

    logits, R, code = (t.cpu() for t in method.task_net.eval()(batch["x"].to(method.device)))
    return logits.softmax(1), R, decode_translation(code, batch["K"], method.data.size)


@torch.no_grad()
def predict_pose_crops(method, conf: dict, folder, out, scale: int = 4, grid: int = 48) -> int:
    """Poses of every crop of a crops folder: predictions.jsonl (class, score, rotation,
    translation in metres, and the errors where the crops are labelled) and poses.png, a grid
    of the first ``grid`` crops with the predicted pose drawn (axes and model points; the true
    pose as thin axes where known)."""
    from .rotations import quat_wxyz_to_matrix

    data = method.data
    domain = pose_crops(method, conf, folder)
    info = domain.models_info or data.extras.get("models_info", {})
    points = domain.points_table(data.extras["obj_ids"], n=200)
    lines, tiles = [], []
    for start in range(0, len(domain), 256):
        b = domain.items(range(start, min(start + 256, len(domain))))
        prob, R, t = predict_poses(method, b)
        for j in range(len(prob)):
            k = int(prob[j].argmax())
            rec = {"crop": start + j, "class": data.classes[k], "score": round(float(prob[j, k]), 4),
                   "R": np.round(R[j].numpy(), 6).tolist(), "t_m": np.round(t[j].numpy(), 6).tolist()}
            lines.append(json.dumps(rec))
            if len(tiles) < grid:
                rgb, _ = domain.ds.raw(start + j)
                img = cv2.resize(rgb["rgb"], None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
                K = b["K"][j].numpy()
                diam = info.get(str(data.extras["obj_ids"][k]), {}).get("diameter", 100.0) / 1000.0
                if domain.labelled:
                    draw_pose(img, quat_wxyz_to_matrix(b["quat"][j:j + 1])[0].numpy(), b["t"][j].numpy(),
                              K, 0.4 * diam, scale=scale, thickness=1)
                draw_pose(img, R[j].numpy(), t[j].numpy(), K, 0.5 * diam,
                          None if points is None else points[k].numpy(), scale=scale)
                cv2.putText(img, data.classes[k][:14], (2, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                            (255, 255, 255), 1, cv2.LINE_AA)
                tiles.append(img)
    out = Path(out)
    write_bytes_atomic(out / "predictions.jsonl", ("\n".join(lines) + "\n").encode())
    cols = 8
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[r:r + cols]) for r in range(0, len(tiles), cols)]
    write_image(out / "poses.png", np.vstack(rows))
    return len(domain)


# -- grasp ------------------------------------------------------------------------------------------
def grasp_planner(method, conf: dict):
    """adapt.runtime.GraspPlanner running the run's torch net: adapt predict and adapt view plan
    a folder's grasps as the runtime plans a bag's or a robot's (one implementation)."""
    from .export import method_runtime

    return method_runtime(method, conf)


def plan_grasps(planner, s: dict, top: int = 5, min_quality: float | None = None
                ) -> tuple[np.ndarray, list, list[bool], list[dict]]:
    """``planner``'s (:func:`grasp_planner`) grasps of one image (an ImageFolder item; it needs
    depth): the candidates it tries, best first, until ``top`` pass the depth-image check, as
    (the net's maps (4,H,W), the grasps (PlanarGrasp; centred on their object where accepted),
    whether the check accepts each, and their grasps.jsonl records, see
    :func:`predict_grasp_folder`). The accepted ones are what ``planner(depth, K, n=top)`` returns."""
    from .grasp_decode import MIN_QUALITY

    if not s["has_depth"]:
        raise SimdataError(f"{s['path']} has no depth file; a grasp net takes depth (pair "
                           f"X-color.png with X-depth.png, or X.png with depth_X.npy)")
    depth = s["depth"][0].numpy()
    K = s["K"].numpy().astype(float)
    known = not np.isnan(K).any()
    if not known:  # pad widths need a focal length: a typical camera's (about 60 deg across)
        h, w = depth.shape
        K = np.array([[0.9 * w, 0, (w - 1) / 2], [0, 0.9 * w, (h - 1) / 2], [0, 0, 1]])
    rgb = (s["rgb"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # as a camera gives it
    maps, tried = planner.attempts(depth, K, rgb if planner.needs_rgb else None, n=top,
                                   min_quality=MIN_QUALITY if min_quality is None else min_quality)
    grasps, ok, recs = [], [], []
    for candidate, found in tried:
        g = candidate if found is None else found[0]
        rec = {"u": round(g.u, 2), "v": round(g.v, 2), "angle_deg": round(float(np.degrees(g.angle)), 2),
               "width_px": round(g.width, 2), "quality": round(g.quality, 4), "executable": found is not None}
        if known and found is not None:
            _, T, w, opening = found
            rec.update(T_cam_grasp=np.round(T, 6).tolist(), width_m=round(w, 4), opening_m=round(opening, 4))
        grasps.append(g)
        ok.append(found is not None)
        recs.append(rec)
    return maps, grasps, ok, recs


def predict_grasp_folder(method, conf: dict, folder, out, top: int = 5,
                         min_quality: float | None = None) -> int:
    """The best ``top`` executable grasps of every image with depth in ``folder`` (an image
    folder or a BOP dataset), as adapt.runtime.GraspPlanner plans them (:func:`plan_grasps`),
    with the candidates refused on the way: NAME_grasps.png (the image and the depth with the
    grasps drawn: the best one the depth-image check accepts in green, the other accepted ones
    yellow, the refused ones grey; and the quality map) and grasps.jsonl (per image, best
    first: pixel centre,
    angle in degrees, opening in px, quality, whether the depth-image check accepts it
    (simdata.grasping.depth_check) and, where it does and the intrinsics are known, the gripper
    pose in the camera frame, approaching along the optical axis: T_cam_grasp (4x4, metres), the
    grasp's width and how wide to open the fingers, in metres)."""
    from simdata.preview import colorize_depth, draw_grasps

    images = ImageFolder(folder)
    out = Path(out)
    planner = grasp_planner(method, conf)
    lines = []
    for i in range(len(images)):
        s = images[i]
        maps, grasps, ok, recs = plan_grasps(planner, s, top, min_quality)
        depth = s["depth"][0].numpy()
        lines.append(json.dumps({"image": s["path"], "grasps": recs}))
        rgb = (s["rgb"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        usable = [g for g, k in zip(grasps, ok) if k]
        rejected = [g for g, k in zip(grasps, ok) if not k]
        tiles = []
        for base in (rgb, colorize_depth(depth)):  # rejected grey, then the others, the best on top
            img = draw_grasps(base, rejected, color=(150, 150, 150), thickness=1)
            img = draw_grasps(img, usable[1:][::-1], color=(255, 200, 0), thickness=1)
            tiles.append(draw_grasps(img, usable[:1], color=(40, 240, 40), thickness=2))
        q = (np.clip(maps[0], 0, 1) * 255).astype(np.uint8)
        tiles.append(cv2.applyColorMap(q, cv2.COLORMAP_VIRIDIS)[..., ::-1])
        img = np.concatenate(tiles, 1)
        text = (f"{Path(s['path']).name}: green best executable (q {usable[0].quality:.2f}), yellow "
                f"next, grey refused by the depth check | on depth | quality" if usable else
                f"{Path(s['path']).name}: no executable grasp among the best {len(grasps)}")
        cv2.putText(img, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(img, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        write_image(out / f"{Path(s['path']).stem}_grasps.png", img)
    write_bytes_atomic(out / "grasps.jsonl", ("\n".join(lines) + "\n").encode())
    return len(images)


def grasp_figures(domain, result: dict, out) -> int:
    """One picture per image of a grasp evaluation in ``out``: the image and its depth with the
    labelled grasps (thin green) and the net's best grasp (thick orange; from ``result``'s
    per-image rows, so the net is not run again), and a title with the rectangle metric's
    verdict and, where simulated, each policy's outcome. Returns the number of pictures."""
    from simdata.grasping.depth_check import surface_depth
    from simdata.grasping.labels import read_view_grasps
    from simdata.grasping.planar import PlanarGrasp
    from simdata.preview import colorize_depth, draw_grasps

    from .grasping import gripper_of

    pad_m = gripper_of(domain.path).finger_width
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for i, row in enumerate(result["per_image"]):
        s = domain.ds[i]
        scene, im_id = domain.ds.items[i]
        _, rects = read_view_grasps(scene, im_id)
        truths = [PlanarGrasp(*r[:5]) for r in rects]
        best = []
        if row["grasp"]:
            u, v, angle_deg, width, quality = row["grasp"]
            z = surface_depth(s["depth"][0].numpy(), u, v) or 1.0
            best = [PlanarGrasp(u, v, float(np.radians(angle_deg)), width, pad_m * float(s["K"][0, 0]) / z,
                                quality)]
        rgb = (s["rgb"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        tiles = [draw_grasps(draw_grasps(base, truths, color=(40, 220, 40)), best, color=(255, 140, 0),
                             thickness=2) for base in (rgb, colorize_depth(s["depth"][0].numpy()))]
        img = np.concatenate(tiles, 1)
        img = cv2.resize(img, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST) if img.shape[0] < 300 else img
        sims = ", ".join(f"{k[4:]} {row.get('outcome_' + k[4:], 'ok' if v else 'fail')}"
                         for k, v in row.items() if k.startswith("sim_"))
        text = (f"{row['image']}: best grasp {'matches' if row['rectangle_correct'] else 'misses'} "
                f"{len(truths)} labelled" + (f"; simulated: {sims}" if sims else ""))
        cv2.putText(img, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(img, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        write_image(out / f"{row['image'].replace('/', '_')}.png", img)
    return len(result["per_image"])
