"""`adapt view`: a run's predictions in 3D with Rerun (rerun-sdk, the ``viewer`` extra).

Each input frame is logged as `simdata view` logs one (simdata.view: camera, pinhole, RGB,
depth and its points, one step per frame on the ``image`` timeline, camera frame as the world),
with what the run's task net predicts:

    segmentation  world/camera/image/prediction   SegmentationImage of the predicted classes
                                                  (object classes; background and table left out)
    grasp         world/camera/image/grasps       LineStrips2D: the best grasps' rectangles (green
                                                  the best executable, yellow executable, grey
                                                  refused by the depth-image check)
                  world/camera/grasps             LineStrips3D: executable grasps as gripper glyphs
                  quality                         Image: the grasp quality map
    pose          world/camera/prediction         Boxes3D (the model's box, metres) and Points3D
                                                  (model points) at the predicted pose, labelled
                                                  with class and score
                  world/camera/truth              the true pose's box, where the crops are labelled

Segmentation and grasp runs read an image folder, a BOP dataset or a ROS bag (``topics``); pose
runs read a crops folder, each crop its own camera (the crop's K).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from simdata.errors import SimdataError
from simdata.view import (CAMERA, IMAGE, Layout, Recording, ViewConfig, log_classes, log_frame, log_grasps,
                          log_labels, recording, rerun_sdk, spread)

from .trainer import load_run

BEST, USABLE, REFUSED = (40, 240, 40), (255, 200, 0), (150, 150, 150)


def _as_uint8(rgb: torch.Tensor) -> np.ndarray:
    """(3,H,W) float in [0,1] -> (H,W,3) uint8."""
    return (rgb.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def _frames(r: Recording, path, topics, cfg: ViewConfig, images_2d=(IMAGE,)):
    """(step, frame) of the input's frames chosen by ``cfg.images``; the first sets the layout."""
    from simdata import ImageFolder

    images = ImageFolder(path, topics=topics)
    for step, i in enumerate(spread(len(images), cfg.images)):
        s = images[i]
        if step == 0:
            r.show(Layout.behind_camera(s["depth"][0].numpy() if s["has_depth"] else None, images_2d),
                   points=cfg.points_stride > 0)
        yield step, s


def view_segmentation(r: Recording, method, conf: dict, path, cfg: ViewConfig, topics) -> int:
    from .predict import first_object_class, segment

    rec = r.stream
    channels, classes = conf["data"]["channels"], method.data.classes
    first = first_object_class(classes)
    n = 0
    for step, s in _frames(r, path, topics, cfg):
        if channels != "rgb" and not s["has_depth"]:
            raise SimdataError(f"{s['path']} has no depth; this net takes {channels}")
        rec.set_time("image", sequence=step)
        log_frame(rec, _as_uint8(s["rgb"]), s["depth"][0].numpy() if s["has_depth"] else None,
                  s["K"].double().numpy(), points_stride=cfg.points_stride)
        labels = segment(method.task_net, s["rgb"], s["depth"] if channels != "rgb" else None, channels,
                         conf["train"]["height"], method.device).astype(np.uint16)
        labels[labels < first] = 0  # background and table: not drawn
        if step == 0:
            log_classes(rec, f"{IMAGE}/prediction", {c: classes[c] for c in range(first, len(classes))})
        log_labels(rec, f"{IMAGE}/prediction", labels)
        n += 1
    return n


def view_grasp(r: Recording, method, conf: dict, path, cfg: ViewConfig, topics) -> int:
    from .predict import grasp_planner, plan_grasps

    rr, rec = rerun_sdk(), r.stream
    planner = grasp_planner(method, conf)
    n = 0
    for step, s in _frames(r, path, topics, cfg, (IMAGE, "quality")):
        maps, grasps, ok, recs = plan_grasps(planner, s)
        rec.set_time("image", sequence=step)
        log_frame(rec, _as_uint8(s["rgb"]), s["depth"][0].numpy(), s["K"].double().numpy(),
                  points_stride=cfg.points_stride)
        first = next((i for i, k in enumerate(ok) if k), None)
        colours = [REFUSED if not k else BEST if i == first else USABLE for i, k in enumerate(ok)]
        rec.log(f"{IMAGE}/grasps", rr.LineStrips2D([np.vstack([c, c[:1]]) for c in (g.corners() for g in grasps)],
                                                   colors=colours, labels=[f"{g.quality:.2f}" for g in grasps]))
        posed = [(r, c) for r, c in zip(recs, colours) if "T_cam_grasp" in r]
        log_grasps(rec, f"{CAMERA}/grasps", [np.array(r["T_cam_grasp"]) for r, _ in posed],
                   [r["opening_m"] for r, _ in posed], [c for _, c in posed])
        q = (np.clip(maps[0], 0, 1) * 255).astype(np.uint8)
        rec.log("quality", rr.Image(cv2.applyColorMap(q, cv2.COLORMAP_VIRIDIS)[..., ::-1]))
        n += 1
    return n


def view_pose(r: Recording, method, conf: dict, path, cfg: ViewConfig, topics) -> int:
    from .predict import pose_crops, predict_poses
    from .rotations import quat_wxyz_to_matrix

    rec = r.stream
    data = method.data
    domain = pose_crops(method, conf, path)
    info = domain.models_info or data.extras.get("models_info", {})
    points = domain.points_table(data.extras["obj_ids"], n=200)
    chosen = spread(len(domain), cfg.images)
    for step, i in enumerate(chosen):
        b = domain.items([i])
        prob, R, t = predict_poses(method, b)
        k = int(prob[0].argmax())
        raw, _ = domain.ds.raw(i)
        rec.set_time("image", sequence=step)
        if step == 0:
            r.show(Layout.behind_camera(raw["depth"].astype(np.float32)), points=cfg.points_stride > 0)
        log_frame(rec, raw["rgb"], raw["depth"].astype(np.float32), b["K"][0].double().numpy(),
                  points_stride=cfg.points_stride)
        box = _model_box(info, data.extras["obj_ids"][k])
        label = f"{data.classes[k]} {float(prob[0, k]):.2f}"
        _log_posed_box(rec, f"{CAMERA}/prediction", R[0].numpy(), t[0].numpy(), box, (255, 200, 0), label,
                       None if points is None else points[k].numpy())
        if domain.labelled:
            truth = int(b["label"][0])
            _log_posed_box(rec, f"{CAMERA}/truth", quat_wxyz_to_matrix(b["quat"])[0].numpy(), b["t"][0].numpy(),
                           _model_box(info, data.extras["obj_ids"][truth]), (200, 200, 200), data.classes[truth])
    return len(chosen)


def _model_box(info: dict, obj_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(mins, sizes) in metres of a model's box from its BOP models_info (mm); a 10 cm cube
    about the origin when unknown."""
    from .runtime import model_box_m

    return model_box_m(info, obj_id) or (np.full(3, -0.05), np.full(3, 0.1))


def _log_posed_box(rec, path: str, R: np.ndarray, t_m: np.ndarray, box, colour, label: str,
                   points_m: np.ndarray | None = None) -> None:
    rr = rerun_sdk()
    rec.log(path, rr.Transform3D(translation=t_m, mat3x3=R))
    rec.log(path, rr.Boxes3D(mins=[box[0]], sizes=[box[1]], colors=[colour], labels=[label]))
    if points_m is not None:
        rec.log(f"{path}/points", rr.Points3D(points_m, colors=[colour], radii=rr.Radius.ui_points(2.0)))


VIEWS = {"segmentation": view_segmentation, "grasp": view_grasp, "pose": view_pose}


def view_run(run, path, cfg: ViewConfig, device: str = "auto", topics=None) -> int:
    """Log ``run``'s predictions on ``path`` to Rerun (see the module); returns the frames logged."""
    method, conf = load_run(run, device)
    if method.task.name not in VIEWS:
        raise SimdataError(f"adapt view knows no {method.task.name} runs (it shows {', '.join(VIEWS)})")
    if not Path(path).exists():
        raise SimdataError(f"--input {path} does not exist")
    rr = rerun_sdk()
    with recording("adapt", cfg) as r:
        r.stream.log("world", rr.ViewCoordinates.RDF, static=True)  # the camera's frame is the world
        return VIEWS[method.task.name](r, method, conf, path, cfg, topics)
