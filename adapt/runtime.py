"""Run an exported net with numpy, OpenCV and onnxruntime only (no torch): ``pip install
'simdata-adapt[runtime]'`` needs nothing else (see the README for a machine without torch).

An ONNX file written by ``adapt export --format onnx`` carries what a caller would otherwise
have to know (adapt.export writes it into the file's metadata_props): the task, the input size,
channels and normalisation, how depth is scaled, the class names, the objects' sizes and
symmetries, the output layout, the gripper and the project's version. The three task runtimes
read it and do the pre- and post-processing of ``adapt predict`` (adapt.inputs,
adapt.grasp_decode, adapt.translation are shared with the torch path, so their results match):

    PoseEstimator("pose.onnx")(rgb, depth, K, boxes)  -> [Pose]: class, score, 4x4 model -> camera
    Segmenter("seg.onnx")(rgb, depth)                  -> Segmentation: label map, instance masks
    GraspPlanner("grasp.onnx")(depth, K)               -> [Grasp]: position, approach, angle,
                                                          width, quality in the camera frame

Inputs: rgb (H,W,3) uint8 RGB (not BGR); depth (H,W) float32 metres along the optical axis,
0 = no reading; K (3,3) pixels, OpenCV convention (x right, y down, z forward; pixel centres at
integer coordinates). Every pose is in metres in that camera's frame (a ROS ``*_optical_frame``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from simdata.crops import crop_intrinsics, cut_object, square_of_box
from simdata.errors import SimdataError

from .grasp_decode import (MIN_QUALITY, TOP_K, best_grasps, centre_on_object, executable_grasps,
                           gripper_config, maps_at_image_size, table_floor, tilted_grasp)
from .inputs import (CHANNELS, as_unit_rgb, fill_holes, fit_plane_inverse_depth, image_input,
                     labels_at_image_size, net_input)
from .translation import decode_translation

METADATA_KEY = "simdata_adapt"  # the ONNX metadata_props key of the JSON description
METADATA_VERSION = 2  # bumped when the description changes in a way the runtime must know
# (2: a pose net's crop.pad is null when it was trained on uniform-pose crops)
MIN_AREA_PX = 50  # Segmenter: smaller connected components are no instance

Engine = Callable[[np.ndarray], list]  # (B,C,H,W) float32 net input -> the net's outputs, in order


def parse_metadata(props: dict[str, str], where: str) -> dict:
    """The description an export wrote into ``props`` (an ONNX file's metadata_props as a dict),
    checked: a task net of a METADATA_VERSION this runtime reads."""
    if METADATA_KEY not in props:
        raise SimdataError(f"{where} carries no {METADATA_KEY!r} metadata; export the run with "
                           f"`adapt export RUN --format onnx` of this version")
    meta = json.loads(props[METADATA_KEY])
    if meta.get("metadata_version", 0) > METADATA_VERSION:
        raise SimdataError(f"{where} was exported by a newer adapt ({meta.get('version')}); "
                           f"update adapt to run it")
    if meta.get("net") != "task":
        raise SimdataError(f"{where} is a {meta.get('net')} net; the runtime runs task nets "
                           f"(`adapt export RUN --net task`)")
    return meta


def read_metadata(path: str | Path) -> dict:
    """The description inside an exported ONNX file (see the module docstring)."""
    return _load(path)[1]


def _load(path: str | Path, providers: list[str] | None = None) -> tuple[Engine, dict]:
    path = Path(path)
    if not path.is_file():
        raise SimdataError(f"{path} does not exist; pass an .onnx file written by `adapt export "
                           f"RUN --format onnx`")
    try:
        import onnxruntime as ort
    except ImportError:  # the runtime extra is all a robot installs; say which package is missing
        raise SimdataError("onnxruntime is not installed; install the runtime extra: pip install "
                           "onnxruntime (or 'simdata-adapt[runtime]')") from None

    try:
        sess = ort.InferenceSession(str(path), providers=providers or ["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise SimdataError(f"{path} is no ONNX model onnxruntime can load ({e}); pass a file "
                           f"written by `adapt export RUN --format onnx`") from None
    meta = parse_metadata(sess.get_modelmeta().custom_metadata_map, str(path))
    name = sess.get_inputs()[0].name
    return (lambda x: sess.run(None, {name: x})), meta


def _check_image(array, name: str, ndim: int, where: str) -> np.ndarray:
    if array is None:
        raise SimdataError(f"{where} needs {name}")
    array = np.asarray(array)
    if array.ndim != ndim or (ndim == 3 and array.shape[2] != 3):
        raise SimdataError(f"{name} has shape {array.shape}; {where} takes "
                           f"{'(H,W,3) uint8 RGB' if ndim == 3 else '(H,W) float metres'}")
    if ndim == 3 and array.dtype != np.uint8:  # a float image would be cut to black crops as uint8
        raise SimdataError(f"rgb is {array.dtype}; pass (H,W,3) uint8 RGB (a float image in [0,1]: "
                           f"(rgb * 255).round().astype(np.uint8))")
    if ndim == 2 and not np.issubdtype(array.dtype, np.floating):
        raise SimdataError(f"depth is {array.dtype}; pass float metres (a uint16 image in "
                           f"millimetres: depth / 1000.0)")
    return array


def _check_K(K, who: str) -> np.ndarray:
    K = None if K is None else np.asarray(K, np.float64)
    if K is None or K.shape != (3, 3) or not K[0, 0] > 0 or not K[1, 1] > 0:
        raise SimdataError(f"K is {None if K is None else K.tolist()}; {who} needs the camera's "
                           f"intrinsics (3,3) in pixels (a CameraInfo's k)")
    return K


class _Runtime:
    """One exported task net: ``Cls(path)`` loads an ONNX file, ``Cls.from_engine(engine,
    metadata)`` wraps any callable with the same inputs and outputs (adapt predict runs a run
    folder's torch net this way)."""

    task = ""

    def __init__(self, model: str | Path, providers: list[str] | None = None):
        engine, meta = _load(model, providers)
        self._setup(engine, meta, str(model))

    @classmethod
    def from_engine(cls, engine: Engine, metadata: dict, name: str = "the net"):
        obj = cls.__new__(cls)
        obj._setup(engine, metadata, name)
        return obj

    def _setup(self, engine: Engine, meta: dict, name: str) -> None:
        if meta.get("task") != self.task:
            raise SimdataError(f"{name} is a {meta.get('task')} net; run it with "
                               f"adapt.runtime.{RUNTIMES[meta.get('task')].__name__}"
                               if meta.get("task") in RUNTIMES else f"{name} holds no known task net")
        self.engine, self.metadata, self.name = engine, meta, name
        self.channels: str = meta["input"]["channels"]
        self.classes: list[str] = list(meta.get("classes") or [])

    @property
    def needs_rgb(self) -> bool:
        return self.channels in ("rgb", "rgbd", "rgbh")

    @property
    def needs_depth(self) -> bool:
        return self.channels != "rgb"

    def _images(self, rgb, depth):
        """rgb as float [0,1] (None when not needed) and depth (None when not needed), checked."""
        where = f"this {self.channels} net"
        r = as_unit_rgb(_check_image(rgb, "rgb", 3, where)) if self.needs_rgb else None
        d = _check_image(depth, "depth", 2, where).astype(np.float32) if self.needs_depth else None
        if r is not None and d is not None and r.shape[:2] != d.shape:
            raise SimdataError(f"rgb is {r.shape[1]}x{r.shape[0]} but depth {d.shape[1]}x{d.shape[0]}; "
                               f"register depth to the colour camera first")
        return r, d


def _softmax(logits: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(logits - logits.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


# -- pose ----------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Pose:
    """One object's pose: ``T_cam_obj`` (4,4) model -> camera, metres, OpenCV camera axes (for
    a symmetric object any of its equivalent poses); the class with its softmax ``score``; the
    box (x, y, w, h, pixels) it was cut around."""

    class_name: str
    class_index: int
    obj_id: int | None
    score: float
    T_cam_obj: np.ndarray
    box_xywh: tuple

    @property
    def R(self) -> np.ndarray:
        return self.T_cam_obj[:3, :3]

    @property
    def t_m(self) -> np.ndarray:
        return self.T_cam_obj[:3, 3]


class PoseEstimator(_Runtime):
    """``PoseEstimator("pose.onnx")(rgb, depth, K, boxes, masks=None)`` -> one :class:`Pose` per
    box (x, y, w, h: the object's pixels x .. x + w - 1, y .. y + h - 1, as BOP's bbox).

    Each box is cut as training crops were (simdata.crops: a square of ``crop.pad`` x its
    longer side, centred on it, colour resized by area, depth nearest, and its own K; the pad is
    the training crops', 1.2 unless `simdata crops --pad` said otherwise); with
    ``masks`` ((H,W) bool per box, e.g. a Segmenter's instances) and a net trained on crops with
    a black background, colour and depth outside the mask are zeroed as they were in training."""

    task = "pose"

    def _setup(self, engine: Engine, meta: dict, name: str) -> None:
        super()._setup(engine, meta, name)
        if (meta.get("crop") or {}).get("pad") is None:  # see simdata.crops.crop_pad_of
            raise SimdataError(f"{name} was trained on uniform-pose crops (render --mode crops --poses "
                               f"uniform), framed by the object's bounding sphere, which no box "
                               f"reproduces; train on crops cut from frames (simdata crops) or "
                               f"rendered with --poses viewpoints")

    def inputs(self, rgb, depth, K, boxes, masks=None) -> tuple[np.ndarray, np.ndarray]:
        """The net's input (B,C,S,S) float32, one crop per box, and the crops' K (B,3,3)."""
        meta = self.metadata
        size, pad = int(meta["input"]["size"]), float(meta["crop"]["pad"])
        black = meta["crop"].get("background") == "black" and masks is not None
        r, d = self._images(rgb, depth)
        rgb8 = None if r is None else np.asarray(rgb)
        if masks is not None and len(masks) != len(boxes):
            raise SimdataError(f"{len(masks)} masks for {len(boxes)} boxes; give one mask per box or none")
        xs, Ks = [], []
        for i, box in enumerate(boxes):
            sq = square_of_box(box, pad)
            c_rgb, c_depth, _ = cut_object(rgb8, d, sq, size, None if masks is None else masks[i], black)
            xs.append(net_input(None if c_rgb is None else as_unit_rgb(c_rgb), c_depth, self.channels))
            Ks.append(crop_intrinsics(_check_K(K, "a pose net"), sq, size))
        if not xs:
            return np.zeros((0, CHANNELS[self.channels], size, size), np.float32), np.zeros((0, 3, 3))
        return np.stack(xs).astype(np.float32), np.stack(Ks)

    def __call__(self, rgb, depth, K, boxes, masks=None) -> list[Pose]:
        x, K_crops = self.inputs(rgb, depth, K, boxes, masks)
        if not len(x):
            return []
        logits, R, code = (np.asarray(o) for o in self.engine(x)[:3])
        prob = _softmax(logits.astype(np.float64), 1)
        t = decode_translation(code.astype(np.float64), K_crops, int(self.metadata["input"]["size"]))
        obj_ids = self.metadata.get("obj_ids") or [None] * len(self.classes)
        out = []
        for j, box in enumerate(boxes):
            k = int(prob[j].argmax())
            T = np.eye(4)
            T[:3, :3], T[:3, 3] = R[j], t[j]
            out.append(Pose(self.classes[k], k, obj_ids[k], float(prob[j, k]), T, tuple(int(v) for v in box)))
        return out

    def model_box(self, class_index: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The model's bounding box of class ``class_index``: (centre (3,), size (3,)) in metres
        in the model frame, from the BOP models_info the net was trained with; None if unknown."""
        obj_ids, info = self.metadata.get("obj_ids"), self.metadata.get("models_info") or {}
        box = model_box_m(info, obj_ids[class_index]) if obj_ids else None
        return None if box is None else (box[0] + box[1] / 2, box[1])


def model_box_m(models_info: dict, obj_id) -> tuple[np.ndarray, np.ndarray] | None:
    """(mins (3,), sizes (3,)) in metres of a model's bounding box in its frame, from BOP
    models_info (millimetres, keyed by str(obj_id)); None when it has no box for the model."""
    entry = models_info.get(str(obj_id))
    if not entry or "size_x" not in entry:
        return None
    return (np.array([entry["min_x"], entry["min_y"], entry["min_z"]], float) / 1000.0,
            np.array([entry["size_x"], entry["size_y"], entry["size_z"]], float) / 1000.0)


# -- segmentation --------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Instance:
    """A connected region of one object class: ``mask`` (H,W) bool, ``box_xywh`` (pixels), the
    mean softmax probability of its class over it (``score``) and its area in pixels."""

    class_index: int
    class_name: str
    mask: np.ndarray
    box_xywh: tuple
    score: float
    area_px: int


@dataclass(frozen=True, eq=False)
class Segmentation:
    """``labels`` (H,W) uint8 class indices into ``classes``; ``instances`` of the object
    classes, by class then in raster order of their first pixel."""

    labels: np.ndarray
    classes: list
    instances: list

    def instance_image(self) -> np.ndarray:
        """(H,W) uint16: 0 where no instance, i + 1 on instance i."""
        out = np.zeros(self.labels.shape, np.uint16)
        for i, inst in enumerate(self.instances):
            out[inst.mask] = i + 1
        return out


class Segmenter(_Runtime):
    """``Segmenter("seg.onnx")(rgb, depth=None)`` -> :class:`Segmentation`: the whole image
    resized to the height the net was trained at, its label map brought back to the image's
    size (as adapt predict), and each object class's connected components (8-connected) of at
    least ``min_area_px`` pixels as instances (the object classes are named in the metadata:
    "object" of object / not object, else every class after background and table)."""

    task = "segmentation"

    def inputs(self, rgb, depth=None) -> tuple[np.ndarray, int]:
        """The net's input (1,C,H',W') float32 (adapt.inputs.image_input) and the resized width."""
        r, d = self._images(rgb, depth)
        return image_input(r, d, self.channels, int(self.metadata["input"]["resize_height"]))

    def __call__(self, rgb, depth=None, min_area_px: int = MIN_AREA_PX) -> Segmentation:
        x, nw = self.inputs(rgb, depth)
        hw = np.shape(rgb if self.needs_rgb else depth)[:2]
        height = int(self.metadata["input"]["resize_height"])
        logits = np.asarray(self.engine(x)[0])[0]
        labels = labels_at_image_size(logits, height, nw, hw)
        conf = _softmax(logits[:, :height, :nw].astype(np.float64), 0).max(0).astype(np.float32)
        conf = cv2.resize(conf, (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST)
        instances = []
        for c in self.metadata.get("object_classes", []):
            n, comp, stats, _ = cv2.connectedComponentsWithStats((labels == c).astype(np.uint8), connectivity=8)
            for k in range(1, n):
                area = int(stats[k, cv2.CC_STAT_AREA])
                if area < min_area_px:
                    continue
                mask = comp == k
                box = tuple(int(v) for v in stats[k, :4])  # x, y, w, h
                instances.append(Instance(c, self.classes[c], mask, box, float(conf[mask].mean()), area))
        return Segmentation(labels, self.classes, instances)


# -- grasping ------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Grasp:
    """A parallel-jaw grasp in the camera frame (metres, OpenCV axes): the centre between the
    pads ``position_m`` (3,), the ``approach`` (3,) unit vector (palm to fingertips; the optical
    axis for these planar grasps), the ``closing_axis`` (3,), ``angle_rad`` of the closing axis
    about the approach (in the image, from +u towards +v), the object's ``width_m`` between the
    pads and how wide to open (``opening_m``), the net's ``quality``; ``T_cam_grasp`` (4,4)
    the gripper frame (+z approach, +x closing), and the grasp's pixel (u, v) and width_px."""

    position_m: np.ndarray
    approach: np.ndarray
    closing_axis: np.ndarray
    angle_rad: float
    width_m: float
    opening_m: float
    quality: float
    T_cam_grasp: np.ndarray
    u: float
    v: float
    width_px: float


class GraspPlanner(_Runtime):
    """``GraspPlanner("grasp.onnx")(depth, K, rgb=None, n=5)`` -> up to ``n`` :class:`Grasp`,
    best first: the net's maps of the whole image (resized as in training), GG-CNN's smoothing
    and peaks (the best TOP_K of quality above ``min_quality``), each centred on what it closes
    on (``recentre``), turned and moved a little to where the depth image lets the fingers
    deepest (refine_grasp) and kept when the depth-image check with the run's gripper accepts
    it and its fingertips reach the object's outline (adapt.grasp_decode, as ``adapt eval``;
    pads_reach_silhouette); when fewer than ``n`` pass along the optical
    axis, the refused ones follow with the approach tilted (adapt.grasp_decode.TILTS). ``rgb``
    only for nets that take colour."""

    task = "grasp"

    def maps(self, depth, rgb=None) -> np.ndarray:
        """Smoothed grasp maps (4,H,W) of the image: quality, cos 2a, sin 2a, width (px)."""
        r, d = self._images(rgb, depth)
        height = int(self.metadata["input"]["resize_height"])
        x, nw = image_input(r, d, self.channels, height)
        return maps_at_image_size(np.asarray(self.engine(x)[0])[0], height, nw, d.shape)

    def attempts(self, depth, K, rgb=None, n: int = 5, recentre: bool = True,
                 min_quality: float = MIN_QUALITY) -> tuple[np.ndarray, list[tuple]]:
        """What a call decides, for drawing it (adapt predict, adapt view): the maps (4,H,W)
        and the candidates tried, best first, until ``n`` pass the depth-image check: pairs
        (candidate PlanarGrasp, adapt.grasp_decode.executable_grasps' tuple for it or None).
        Candidates are checked along the optical axis first; while fewer than ``n`` pass, the
        refused ones are then tried with tilted approaches (adapt.grasp_decode.TILTS)."""
        from simdata.grasping.depth_check import DepthCheckConfig

        K = _check_K(K, "a grasp net")
        maps = self.maps(depth, rgb)
        depth = np.asarray(depth, np.float32)
        gripper = gripper_config(self.metadata.get("gripper"))
        check = DepthCheckConfig(**(self.metadata.get("depth_check") or {}))
        plane, filled = fit_plane_inverse_depth(depth), fill_holes(depth)
        tried, accepted = [], 0
        for g in best_grasps(maps, depth, K, gripper, n=max(TOP_K, n), min_quality=min_quality):
            if accepted >= n:
                break
            # one candidate at a time, so the refused ones are known too; along the optical
            # axis first, as executable_grasps orders them
            found = executable_grasps([g], depth, K, gripper, check, filled, plane, recentre, tilts=())
            tried.append((g, found[0] if found else None))
            accepted += bool(found)
        floor = table_floor(plane, depth.shape) if accepted < n else None
        for i, (g, found) in enumerate(tried):  # then the refused ones with tilted approaches
            if accepted >= n:
                break
            if found is None:
                centred = centre_on_object(g, depth, K, gripper, plane) if recentre else g
                found = tilted_grasp(centred, depth, K, gripper, check, filled, floor)
                tried[i] = (g, found)
                accepted += found is not None
        return maps, tried

    def __call__(self, depth, K, rgb=None, n: int = 5, recentre: bool = True,
                 min_quality: float = MIN_QUALITY) -> list[Grasp]:
        _, tried = self.attempts(depth, K, rgb, n, recentre, min_quality)
        # along the optical axis first, then tilted (executable_grasps' order), each best first
        tried = sorted(tried, key=lambda gf: gf[1] is not None and gf[1][1][2, 2] < 1 - 1e-9)
        return [Grasp(T[:3, 3].copy(), T[:3, 2].copy(), T[:3, 0].copy(), float(g.angle), float(w),
                      float(opening), float(g.quality), T, float(g.u), float(g.v), float(g.width))
                for g, T, w, opening in (found for _, found in tried if found)]


RUNTIMES: dict[str, type[_Runtime]] = {"pose": PoseEstimator, "segmentation": Segmenter,
                                       "grasp": GraspPlanner}


def load(model: str | Path, providers: list[str] | None = None) -> _Runtime:
    """The runtime of an exported net's task (PoseEstimator, Segmenter or GraspPlanner)."""
    engine, meta = _load(model, providers)
    if meta.get("task") not in RUNTIMES:
        raise SimdataError(f"{model} holds a {meta.get('task')} net, which has no runtime")
    return RUNTIMES[meta["task"]].from_engine(engine, meta, str(model))
