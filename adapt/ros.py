"""Predictions as standard ROS 2 messages in one MCAP file (through rosbags, the ``ros`` extra;
no ROS install), each stamped with the header (stamp and frame_id) of the camera image it was
computed from, so Foxglove or RViz draws them over the recording.

Topics (under ``prefix``, default ``/adapt``), one message per input frame, empty ones too:

- pose: ``poses`` geometry_msgs/PoseArray (model -> camera, metres, one per detection, in the
  order of the runtime's list) and ``objects`` visualization_msgs/MarkerArray (the model's
  bounding box as a CUBE at its pose, and its class name and score as TEXT_VIEW_FACING);
- segmentation: ``labels`` sensor_msgs/Image mono8 (class indices, names in the net's metadata)
  and ``instances`` mono16 (0 = none, i + 1 = instance i);
- grasp: ``grasps`` PoseArray (gripper frames: +z approach, +x closing) and ``grasp_markers``
  MarkerArray (the open gripper as a LINE_LIST and its approach as an ARROW, the best green).

Every MarkerArray starts with a DELETEALL marker, so a viewer shows the current frame's markers
only. Poses are in the image's frame_id, which for a camera driver's optical frame has OpenCV
axes (x right, y down, z forward), as the runtime's poses.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from simdata.bag_writer import BagWriter
from simdata.errors import SimdataError
from simdata.fileio import disk_error
from simdata.preview import PALETTE
from simdata.transforms import matrix_to_quat_xyzw

POSE_ARRAY, MARKER_ARRAY, MARKER, IMAGE = ("geometry_msgs/msg/PoseArray", "visualization_msgs/msg/MarkerArray",
                                           "visualization_msgs/msg/Marker", "sensor_msgs/msg/Image")
ARROW, CUBE, LINE_LIST, TEXT, DELETEALL = 0, 1, 5, 9, 3  # Marker types and action
NUMERIC = {"bool": np.bool_, "int8": np.int8, "uint8": np.uint8, "byte": np.uint8, "char": np.uint8,
           "int16": np.int16, "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32,
           "int64": np.int64, "uint64": np.uint64, "float32": np.float32, "float64": np.float64}


class PredictionWriter(BagWriter):
    """Writes predictions to a new ``out`` .mcap file (ROS 2 messages, the latest ROS 2
    definitions of rosbags), atomically: a hidden folder beside it while writing, the .mcap
    moved to ``out`` on a clean exit, nothing left on an error. Use as a context manager."""

    def __init__(self, out, prefix: str = "/adapt"):
        out = Path(out)
        if out.suffix != ".mcap":
            raise SimdataError(f"--out {out}: predictions are written to an .mcap file (name it X.mcap)")
        if out.exists():
            raise SimdataError(f"--out {out} exists; choose a new file or remove it")
        super().__init__(out.with_name(f".{out.stem}.bag{os.getpid()}"), version=2, storage="mcap")
        self.out, self.prefix = out, prefix.rstrip("/")
        self.target = out  # errors name --out, not the hidden folder
        self.counts: dict[str, int] = {}

    def __exit__(self, exc_type, *exc):
        super().__exit__(exc_type, *exc)
        if exc_type is None:  # the folder's one .mcap file becomes ``out``
            try:
                os.replace(self.path / f"{self.path.name}.mcap", self.out)
            except OSError as e:
                raise disk_error(self.out, e) from None
            finally:
                shutil.rmtree(self.path, ignore_errors=True)

    # -- messages ------------------------------------------------------------------------------------
    def message(self, msgtype: str, **values):
        """A message of this bag's typestore; fields not given get ROS defaults (0, '', empty)."""
        defs = self._types.fielddefs[msgtype][1]
        unknown = set(values) - {name for name, _ in defs}
        if unknown:
            raise ValueError(f"{msgtype} has no field {sorted(unknown)[0]!r}")
        return self._types.types[msgtype](**{name: values[name] if name in values else self._default(*kind)
                                             for name, kind in defs})

    def _default(self, kind, spec):
        kind = getattr(kind, "name", kind)
        if kind == "NAME":
            return self.message(spec)
        if kind == "BASE":
            name = spec[0]
            return "" if name == "string" else (False if name == "bool" else NUMERIC[name](0).item())
        (inner_kind, inner), length = spec
        if getattr(inner_kind, "name", inner_kind) == "BASE" and inner[0] in NUMERIC:
            return np.zeros(length if kind == "ARRAY" else 0, NUMERIC[inner[0]])
        return [self._default(inner_kind, inner) for _ in range(length if kind == "ARRAY" else 0)]

    def _pose(self, T: np.ndarray):
        x, y, z, w = matrix_to_quat_xyzw(T[:3, :3])
        return self.message("geometry_msgs/msg/Pose",
                            position=self.message("geometry_msgs/msg/Point", x=float(T[0, 3]),
                                                  y=float(T[1, 3]), z=float(T[2, 3])),
                            orientation=self.message("geometry_msgs/msg/Quaternion", x=float(x),
                                                     y=float(y), z=float(z), w=float(w)))

    def _point(self, p):
        return self.message("geometry_msgs/msg/Point", x=float(p[0]), y=float(p[1]), z=float(p[2]))

    def _colour(self, rgb, alpha: float = 1.0):
        r, g, b = (float(c) / 255.0 for c in rgb)
        return self.message("std_msgs/msg/ColorRGBA", r=r, g=g, b=b, a=float(alpha))

    def _marker(self, header, ns: str, i: int, kind: int, T: np.ndarray, scale, rgb, alpha=1.0, **kw):
        return self.message(MARKER, header=header, ns=ns, id=i, type=kind, action=0, pose=self._pose(T),
                            scale=self.message("geometry_msgs/msg/Vector3", x=float(scale[0]),
                                               y=float(scale[1]), z=float(scale[2])),
                            color=self._colour(rgb, alpha), **kw)

    def _send(self, name: str, msgtype: str, msg, stamp_ns: int) -> None:
        topic = f"{self.prefix}/{name}"
        self._write(topic, msgtype, msg, stamp_ns)
        self.counts[topic] = self.counts.get(topic, 0) + 1

    def _markers(self, name: str, header, markers: list, stamp_ns: int) -> None:
        clear = self.message(MARKER, header=header, action=DELETEALL)
        self._send(name, MARKER_ARRAY, self.message(MARKER_ARRAY, markers=[clear, *markers]), stamp_ns)

    # -- predictions ---------------------------------------------------------------------------------
    def poses(self, stamp_ns: int, frame_id: str, poses: list, model_box=None) -> None:
        """adapt.runtime.Pose list of one frame -> ``poses`` and ``objects``; ``model_box``
        (class index -> (centre (3,), size (3,)) metres, or None) sizes the cubes (5 cm unknown)."""
        header = self._header(f"{self.prefix}/poses", stamp_ns, frame_id)
        self._send("poses", POSE_ARRAY, self.message(POSE_ARRAY, header=header,
                                                     poses=[self._pose(p.T_cam_obj) for p in poses]), stamp_ns)
        markers = []
        for i, p in enumerate(poses):
            box = model_box(p.class_index) if model_box else None
            centre, size = box if box is not None else (np.zeros(3), np.full(3, 0.05))
            T = p.T_cam_obj.copy()
            T[:3, 3] = p.T_cam_obj[:3, :3] @ centre + p.T_cam_obj[:3, 3]
            rgb = PALETTE[p.class_index % len(PALETTE)]
            markers.append(self._marker(header, "objects", i, CUBE, T, size, rgb, 0.5))
            T_text = np.eye(4)
            T_text[:3, 3] = T[:3, 3] - [0.0, 0.6 * float(size.max()), 0.0]  # above it (y is down)
            markers.append(self._marker(header, "labels", i, TEXT, T_text, (0, 0, 0.03), rgb,
                                        text=f"{p.class_name} {p.score:.2f}"))
        self._markers("objects", header, markers, stamp_ns)

    def segmentation(self, stamp_ns: int, frame_id: str, seg) -> None:
        """adapt.runtime.Segmentation of one frame -> ``labels`` (mono8) and ``instances`` (mono16)."""
        for name, ids, encoding in (("labels", seg.labels.astype(np.uint8), "mono8"),
                                    ("instances", seg.instance_image().astype("<u2"), "mono16")):
            header = self._header(f"{self.prefix}/{name}", stamp_ns, frame_id)
            h, w = ids.shape  # the ids as they are (simdata.bags reads mono16 as depth in mm)
            self._send(name, IMAGE, self.message(IMAGE, header=header, height=h, width=w, encoding=encoding,
                                                 is_bigendian=0, step=ids.itemsize * w,
                                                 data=np.frombuffer(ids.tobytes(), np.uint8)), stamp_ns)

    def grasps(self, stamp_ns: int, frame_id: str, grasps: list, finger_length_m: float = 0.05) -> None:
        """adapt.runtime.Grasp list of one frame (best first) -> ``grasps`` and ``grasp_markers``:
        each gripper drawn open (fingers ``finger_length_m`` long, ending at the grasp centre's
        depth) and its approach as a 10 cm arrow; the best green, the others yellow."""
        header = self._header(f"{self.prefix}/grasps", stamp_ns, frame_id)
        self._send("grasps", POSE_ARRAY, self.message(POSE_ARRAY, header=header,
                                                      poses=[self._pose(g.T_cam_grasp) for g in grasps]), stamp_ns)
        markers = []
        for i, g in enumerate(grasps):
            rgb = (40, 240, 40) if i == 0 else (255, 200, 0)
            x, z, c = g.closing_axis, g.approach, g.position_m
            half = g.opening_m / 2
            tips = [c + x * half, c - x * half]
            bases = [t - z * finger_length_m for t in tips]
            pts = [tips[0], bases[0], tips[1], bases[1], bases[0], bases[1]]  # fingers, then palm
            markers.append(self._marker(header, "grippers", i, LINE_LIST, np.eye(4), (0.004, 0, 0), rgb,
                                        points=[self._point(p) for p in pts]))
            markers.append(self._marker(header, "approach", i, ARROW, np.eye(4), (0.005, 0.01, 0.015), rgb,
                                        points=[self._point(c - z * (finger_length_m + 0.1)),
                                                self._point(c - z * finger_length_m)]))
        self._markers("grasp_markers", header, markers, stamp_ns)
