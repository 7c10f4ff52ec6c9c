"""``adapt predict NET --input BAG --out OUT.mcap``: run a net on every frame of a ROS bag and write
its predictions as ROS 2 messages (adapt.ros), stamped with each frame's header.

NET is an exported ONNX file (run with adapt.runtime: numpy, OpenCV and onnxruntime, no torch)
or a run folder (its torch net, with the same pre- and post-processing). Frames come from
simdata.bags.iter_bag_frames (colour, registered depth and K paired by header stamp).

A pose net needs boxes and has no detector of its own: ``--boxes SEG`` names a segmentation
net (an .onnx file or a run folder) whose instances (connected regions of its object classes)
are the boxes, and their masks black out the background where the pose net was trained on
black-background crops. Its label images are written too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from simdata.bags import BagTopics, is_bag, iter_bag_frames
from simdata.errors import SimdataError

from .grasp_decode import MIN_QUALITY
from .runtime import MIN_AREA_PX, PoseEstimator, Segmenter, load


@dataclass
class BagPredictConfig:
    boxes: str = field(default="", metadata={"help": "pose nets: a segmentation net (.onnx or run folder) whose object instances are the boxes to estimate poses in"})
    every: int = field(default=1, metadata={"help": "predict on every N-th frame of the bag"})
    grasps: int = field(default=5, metadata={"help": "grasp nets: executable grasps written per frame, best first"})
    min_quality: float = field(default=MIN_QUALITY, metadata={"help": "grasp nets: smallest quality of a grasp (peak of the smoothed quality map)"})
    min_area_px: int = field(default=MIN_AREA_PX, metadata={"help": "segmentation: smallest instance, pixels of the input image"})
    prefix: str = field(default="/adapt", metadata={"help": "namespace of the output topics"})


def load_net(path: str | Path, device: str = "auto"):
    """The runtime of ``path``: an .onnx file (onnxruntime) or a run folder (its torch net)."""
    path = Path(path)
    if path.suffix == ".onnx":
        return load(path)
    if not path.is_dir():
        raise SimdataError(f"{path} is neither an .onnx file nor a run folder; pass what "
                           f"`adapt export` wrote or `adapt train` made")
    from .export import run_runtime  # torch: only for run folders

    return run_runtime(path, device)


def predict_bag(net: str | Path, bag: str | Path, out: str | Path, cfg: BagPredictConfig | None = None,
                topics: BagTopics = BagTopics(), device: str = "auto") -> dict[str, int]:
    """Predictions of ``net`` on every ``cfg.every``-th frame of ``bag`` into the new .mcap file
    ``out`` (see the module docstring); returns the number of messages per topic."""
    from .ros import PredictionWriter

    cfg = cfg or BagPredictConfig()
    if not is_bag(bag):
        raise SimdataError(f"--input {bag} is no ROS bag (.bag, .db3, .mcap or a ROS 2 folder); "
                           f"--out X.mcap needs one")
    model = load_net(net, device)
    boxes = None
    if isinstance(model, PoseEstimator):
        if not cfg.boxes:
            raise SimdataError("a pose net needs boxes: pass --boxes SEG (a segmentation net, "
                               ".onnx or run folder, whose object instances are the boxes)")
        boxes = load_net(cfg.boxes, device)
        if not isinstance(boxes, Segmenter):
            raise SimdataError(f"--boxes {cfg.boxes} is a {boxes.task} net; pass a segmentation net")
    elif cfg.boxes:
        raise SimdataError(f"--boxes is for pose nets; {net} is a {model.task} net")
    with PredictionWriter(out, cfg.prefix) as w:
        for f in iter_bag_frames(bag, topics, cfg.every):
            if model.task != "segmentation" and f.K is None:
                raise SimdataError(f"{bag} has no CameraInfo for the frame at {f.stamp_ns} ns; a "
                                   f"{model.task} net needs K (pass --camera-info-topic)")
            if boxes is not None:
                seg = boxes(f.rgb, f.depth_m, cfg.min_area_px)
                w.segmentation(f.stamp_ns, f.frame_id, seg)
                poses = model(f.rgb, f.depth_m, f.K, [i.box_xywh for i in seg.instances],
                              [i.mask for i in seg.instances])
                w.poses(f.stamp_ns, f.frame_id, poses, model.model_box)
            elif model.task == "segmentation":
                w.segmentation(f.stamp_ns, f.frame_id, model(f.rgb, f.depth_m, cfg.min_area_px))
            else:
                w.grasps(f.stamp_ns, f.frame_id, model(f.depth_m, f.K, f.rgb, n=cfg.grasps,
                                                       min_quality=cfg.min_quality))
    return dict(w.counts)
