"""Writing ROS 1 and ROS 2 bags of camera images (Image, CompressedImage, CameraInfo) through
rosbags, the pure-Python bag library (the ``ros`` extra): for tests, and for tools that hand
frames and predictions to robot software. :mod:`simdata.bags` reads what this writes.

Colour goes in as (H,W,3) uint8 RGB, depth as (H,W) float32 **metres** (written as 16UC1
millimetres or 32FC1 metres, or compressed_depth_image_transport's png), K as (3,3) pixels.
"""
from __future__ import annotations

import os
import shutil
from collections import Counter
from dataclasses import fields
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from .bags import (COLOUR_ENCODINGS, COMPRESSED, DEPTH_ENCODINGS, EXTRA, IMAGE, INFO, NO_TOPIC, BagFrame,
                   BagTopics)
from .errors import SimdataError
from .fileio import disk_error
from .transforms import depth_m_to_mm_u16

WRITE_TOPICS = BagTopics(colour="/camera/color/image_raw", depth="/camera/aligned_depth_to_color/image_raw",
                         camera_info="/camera/color/camera_info")


class BagWriter:
    """Writes Image, CompressedImage and CameraInfo messages to a new bag, atomically (under a
    temporary name, renamed on a clean exit; removed on an error). ``version`` 1: a ROS 1
    ``.bag`` file; 2: a ROS 2 folder holding one ``storage`` ('mcap' or 'sqlite3') file.
    Write each topic's messages in time order."""

    def __init__(self, path, version: int = 2, storage: str = "mcap"):
        self.path = Path(path)
        if version not in (1, 2) or storage not in ("mcap", "sqlite3"):
            raise SimdataError(f"bag version {version} / storage {storage!r}: use version 1, or 2 "
                               f"with mcap or sqlite3")
        if self.path.exists():
            raise SimdataError(f"{self.path} exists; choose a new bag path")
        try:
            from rosbags.typesys import Stores, get_typestore
        except ImportError:
            raise SimdataError(f"writing the ROS bag {self.path} needs rosbags: {EXTRA}") from None
        self.version = version
        self.target = self.path  # the path errors name (a subclass may write elsewhere first)
        self._tmp = self.path.with_name(f".{self.path.name}.tmp{os.getpid()}")
        if version == 1:
            from rosbags.rosbag1 import Writer

            self._writer = Writer(self._tmp)
            self._types = get_typestore(Stores.ROS1_NOETIC)
        else:
            from rosbags.rosbag2 import StoragePlugin, Writer

            plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
            self._writer = Writer(self._tmp, version=9, storage_plugin=plugin)
            self._types = get_typestore(Stores.LATEST)
        self._conns: dict[str, object] = {}
        self._seq = Counter()

    def __enter__(self):
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer.open()
        except OSError as e:
            self._discard_temp()
            raise disk_error(self.target, e) from None
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is not None:
            self._discard_temp()
            return
        try:
            self._writer.close()
            if self.version == 2:  # rosbag2 names its file after the folder: rename it too
                for f in self._tmp.iterdir():
                    if f.stem == self._tmp.name:
                        f.rename(f.with_name(self.path.name + f.suffix))
                meta = self._tmp / "metadata.yaml"
                meta.write_text(meta.read_text().replace(self._tmp.name, self.path.name))
            os.replace(self._tmp, self.path)
        except OSError as e:  # full disk, no permission: no half-written bag stays behind
            self._discard_temp()
            raise disk_error(self.target, e) from None
        except BaseException:
            self._discard_temp()
            raise

    def _discard_temp(self):
        try:
            self._writer.abort()
        except Exception:  # nothing to abort: not opened, or already closed
            pass
        if self._tmp.is_dir():
            shutil.rmtree(self._tmp, ignore_errors=True)
        else:
            try:
                self._tmp.unlink(missing_ok=True)
            except OSError:  # its folder is missing or no folder: nothing was written
                pass

    def _msg(self, msgtype: str, **values):
        """A message of this bag's typestore; field names matched case-insensitively (ROS 1's
        CameraInfo says K where ROS 2 says k)."""
        cls = self._types.types[msgtype]
        names = {f.name.lower(): f.name for f in fields(cls) if f.name != "__msgtype__"}
        return cls(**{names[k.lower()]: v for k, v in values.items() if k.lower() in names})

    def _header(self, topic: str, stamp_ns: int, frame_id: str):
        Time = self._types.types["builtin_interfaces/msg/Time"]
        self._seq[topic] += 1
        return self._msg("std_msgs/msg/Header", seq=self._seq[topic] - 1, frame_id=frame_id,
                         stamp=Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000))

    def _write(self, topic: str, msgtype: str, msg, bag_time_ns: int):
        if topic not in self._conns:
            self._conns[topic] = self._writer.add_connection(topic, msgtype, typestore=self._types)
        data = (self._types.serialize_ros1 if self.version == 1 else self._types.serialize_cdr)(msg, msgtype)
        try:
            self._writer.write(self._conns[topic], int(bag_time_ns), data)
        except OSError as e:  # a full disk while recording
            raise disk_error(self.target, e) from None

    def image(self, topic: str, stamp_ns: int, frame_id: str, pixels: np.ndarray, encoding: str,
              compressed: str = "", bag_time_ns: int | None = None):
        """One image. ``pixels``: colour (H,W,3) uint8 RGB, written in ``encoding`` (rgb8, bgr8,
        rgba8, bgra8, mono8; mono8 also takes (H,W) gray); or depth (H,W) float32 metres, written
        as 16UC1 (mm) or 32FC1 (m); other encodings write the bytes of ``pixels`` (H,W[,C]) as
        they are. ``compressed``: '' (sensor_msgs/Image), 'jpeg' or 'png' (CompressedImage;
        depth as compressedDepth png)."""
        header = self._header(topic, stamp_ns, frame_id)
        if encoding in DEPTH_ENCODINGS:
            px = self._depth_pixels(pixels, encoding)
        elif encoding in COLOUR_ENCODINGS:
            inv = {cv2.COLOR_BGR2RGB: cv2.COLOR_RGB2BGR, cv2.COLOR_RGBA2RGB: cv2.COLOR_RGB2RGBA,
                   cv2.COLOR_BGRA2RGB: cv2.COLOR_RGB2BGRA, cv2.COLOR_GRAY2RGB: cv2.COLOR_RGB2GRAY}
            conv = COLOUR_ENCODINGS[encoding][1]
            px = pixels if conv is None or pixels.ndim == 2 else cv2.cvtColor(pixels, inv[conv])
        else:  # any other encoding: the pixels' bytes as they are (yuv422, bayer_rggb8, ...)
            px = pixels
        t = stamp_ns if bag_time_ns is None else bag_time_ns
        if compressed:
            self._write(topic, COMPRESSED, self._compressed(header, px, encoding, compressed), t)
            return
        px = np.ascontiguousarray(px)
        h, w = px.shape[:2]
        self._write(topic, IMAGE, self._msg(IMAGE, header=header, height=h, width=w, encoding=encoding,
                                            is_bigendian=0, step=px.nbytes // h,
                                            data=np.frombuffer(px.tobytes(), np.uint8)), t)

    @staticmethod
    def _depth_pixels(depth_m: np.ndarray, encoding: str) -> np.ndarray:
        if DEPTH_ENCODINGS[encoding][0] == "f4":
            return np.nan_to_num(np.asarray(depth_m, np.float32), nan=0.0, posinf=0.0)
        return depth_m_to_mm_u16(depth_m)

    def _compressed(self, header, px: np.ndarray, encoding: str, kind: str):
        if kind not in ("jpeg", "png"):
            raise SimdataError(f"compressed={kind!r}: use jpeg or png")
        if encoding in DEPTH_ENCODINGS:  # compressed_depth_image_transport: ConfigHeader + PNG
            quant_a = quant_b = 0.0
            if encoding == "32FC1":  # its inverse-depth quantisation (depth_quantization 100, max 10 m)
                quant_a = 100.0 * 101.0
                quant_b = 1.0 - quant_a / 10.0
                with np.errstate(divide="ignore"):
                    q = np.where((px > 0) & (px < 10.0), quant_a / np.maximum(px, 1e-9) + quant_b, 0)
                px = np.clip(np.round(q), 0, 65535).astype(np.uint16)
            head = np.array([0], "<i4").tobytes() + np.array([quant_a, quant_b], "<f4").tobytes()
            data = head + cv2.imencode(".png", px)[1].tobytes()
            fmt = f"{encoding}; compressedDepth png"
        else:
            bgr = px if px.ndim == 2 or encoding.startswith("bgr") else cv2.cvtColor(px, cv2.COLOR_RGB2BGR)
            data = cv2.imencode(".jpg" if kind == "jpeg" else ".png", bgr)[1].tobytes()
            fmt = f"{encoding}; {kind} compressed {'mono8' if px.ndim == 2 else 'bgr8'}"
        return self._msg(COMPRESSED, header=header, format=fmt, data=np.frombuffer(data, np.uint8))

    def camera_info(self, topic: str, stamp_ns: int, frame_id: str, K: np.ndarray, size: tuple[int, int],
                    bag_time_ns: int | None = None):
        """A CameraInfo with intrinsics ``K`` (3,3) for ``size`` = (width, height), no distortion."""
        K = np.asarray(K, np.float64).reshape(3, 3)
        P = np.hstack([K, np.zeros((3, 1))])
        roi = self._msg("sensor_msgs/msg/RegionOfInterest", x_offset=0, y_offset=0, height=0, width=0,
                        do_rectify=False)
        msg = self._msg(INFO, header=self._header(topic, stamp_ns, frame_id), height=size[1], width=size[0],
                        distortion_model="plumb_bob", d=np.zeros(5), k=K.ravel(), r=np.eye(3).ravel(),
                        p=P.ravel(), binning_x=0, binning_y=0, roi=roi)
        self._write(topic, INFO, msg, stamp_ns if bag_time_ns is None else bag_time_ns)


def write_bag(path, frames: Iterable[BagFrame], version: int = 2, storage: str = "mcap",
              colour_encoding: str = "rgb8", depth_encoding: str = "16UC1", compressed: str = "",
              topics: BagTopics = WRITE_TOPICS, depth_delay_ns: int = 0) -> Path:
    """Write frames as a camera driver records them: colour, depth (stamped ``depth_delay_ns``
    after the colour) and a CameraInfo per frame, each where the frame has it, in time order.
    With ``compressed`` ('jpeg' or 'png') images go as CompressedImage on TOPIC/compressed and
    depth as compressedDepth png on TOPIC/compressedDepth. Returns the bag's path."""
    def named(topic, suffix=""):  # None: that stream is not written
        return None if topic in (None, *NO_TOPIC) else topic + (suffix if compressed else "")

    colour_topic, depth_topic = named(topics.colour, "/compressed"), named(topics.depth, "/compressedDepth")
    msgs = []  # (bag time, order within a frame, topic, frame_id, what to write)
    for f in frames:
        if f.rgb is not None and colour_topic:
            msgs.append((f.stamp_ns, 0, colour_topic, f.frame_id, (f.rgb, colour_encoding)))
        if f.depth_m is not None and depth_topic:
            msgs.append((f.stamp_ns + depth_delay_ns, 1, depth_topic, f.frame_id, (f.depth_m, depth_encoding)))
        if f.K is not None and named(topics.camera_info):
            img = f.rgb if f.rgb is not None else f.depth_m
            msgs.append((f.stamp_ns, 2, topics.camera_info, f.frame_id, (f.K, (img.shape[1], img.shape[0]))))
    with BagWriter(path, version, storage) as w:
        for stamp, order, topic, frame_id, (value, extra) in sorted(msgs, key=lambda m: m[:2]):
            if order < 2:
                w.image(topic, stamp, frame_id, value, extra, compressed)
            else:
                w.camera_info(topic, stamp, frame_id, value, extra)
    return Path(path)
