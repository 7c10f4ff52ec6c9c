"""ROS 1 and ROS 2 bags as RGB-D frames, through rosbags (pure Python, no ROS install; the
``ros`` extra: ``pip install 'simdata-adapt[ros]'``).

A bag is a ROS 1 ``.bag`` file, a ROS 2 folder (``metadata.yaml`` beside ``.db3`` or ``.mcap``
files), or one ``.db3`` / ``.mcap`` file (read with ROS 2 message definitions when it carries
none; a file inside a ROS 2 folder reads the whole folder).

What is read:

- colour: ``sensor_msgs/Image`` in rgb8, bgr8, rgba8, bgra8 or mono8, or a
  ``sensor_msgs/CompressedImage`` (JPEG, PNG) -> (H,W,3) uint8 RGB;
- depth: ``sensor_msgs/Image`` in 16UC1 / mono16 (**millimetres**) or 32FC1 (**metres**), or a
  ``CompressedImage`` of compressed_depth_image_transport ('16UC1; compressedDepth png',
  '32FC1; compressedDepth png') or a 16-bit PNG ('16UC1; png compressed', mm) -> (H,W)
  float32 **metres**, 0 = no reading (NaN, inf and zeros of the sensor);
- intrinsics: ``K`` of ``sensor_msgs/CameraInfo`` -> (3,3) float64, the one in force at the
  image's header stamp (the latest CameraInfo stamped at or before it; the first one for
  earlier images); None when the bag has none or its K is zero (an uncalibrated driver).

Topics left as None in :class:`BagTopics` are found from the first message of every image
topic: the colour stream (3-channel encodings before mono, names with color/colour/rgb, raw
before compressed), the depth of the same size (same frame_id, 'aligned'/'registered' names
first), the CameraInfo of that size in the colour topic's namespace. Colour and depth pair by
header stamp (the receive time where a driver leaves the stamp 0): each colour image takes the
nearest depth within ``tolerance_s``; colour images without one are skipped (a warning counts
them); a bag where none pairs is refused. Everything streams: a message waits at most
``HORIZON_NS`` of bag time for its partner.
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field, fields, replace
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from .errors import SimdataError
from .transforms import M_TO_MM

log = logging.getLogger(__name__)

IMAGE, COMPRESSED, INFO = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage",
                           "sensor_msgs/msg/CameraInfo")
# encoding -> (channels, OpenCV conversion to RGB or None)
COLOUR_ENCODINGS = {"rgb8": (3, None), "bgr8": (3, cv2.COLOR_BGR2RGB), "rgba8": (4, cv2.COLOR_RGBA2RGB),
                    "bgra8": (4, cv2.COLOR_BGRA2RGB), "mono8": (1, cv2.COLOR_GRAY2RGB)}
DEPTH_ENCODINGS = {"16UC1": ("u2", 1 / M_TO_MM), "mono16": ("u2", 1 / M_TO_MM), "32FC1": ("f4", 1.0)}
BAG_SUFFIXES = (".bag", ".db3", ".mcap")
HORIZON_NS = 2_000_000_000  # bag time a colour or depth message waits for its partner
EXTRA = "pip install 'simdata-adapt[ros]' (rosbags, the pure-Python ROS bag library)"
NO_TOPIC = ("", "none")  # BagTopics values that switch a stream off


@dataclass(frozen=True)
class BagTopics:
    """Which topics of a bag to read; None = found from the bag's message types, "" or "none"
    = do not read that stream (e.g. ``depth="none"`` for colour only)."""

    colour: str | None = field(default=None, metadata={
        "help": "colour topic (sensor_msgs/Image or CompressedImage) [found from the message types]"})
    depth: str | None = field(default=None, metadata={
        "help": "depth topic (Image 16UC1 mm / 32FC1 m, or compressedDepth), registered to the "
                "colour image; 'none' reads colour only [found: the depth of the colour's size]"})
    camera_info: str | None = field(default=None, metadata={
        "help": "sensor_msgs/CameraInfo topic giving K [found: the one of the colour's size and "
                "namespace]"})
    tolerance_s: float = field(default=0.02, metadata={
        "help": "colour and depth pair when their header stamps differ by at most this, s (keep "
                "it under half the frame period)"})


@dataclass
class BagFrame:
    """One frame of a bag: colour, the depth paired with it, and the camera's intrinsics."""

    stamp_ns: int               # header stamp of the colour image (or depth when no colour), ns
    frame_id: str               # header.frame_id of that image
    rgb: np.ndarray | None      # (H,W,3) uint8 RGB
    depth_m: np.ndarray | None  # (H,W) float32 metres, 0 = no reading
    K: np.ndarray | None        # (3,3) float64 from CameraInfo (None if the bag has none)


def is_bag(path) -> bool:
    """A ``.bag`` file, a ``.db3`` / ``.mcap`` file, or a ROS 2 bag folder (``metadata.yaml``)."""
    p = Path(path)
    if p.is_dir():
        return (p / "metadata.yaml").is_file()
    return p.is_file() and p.suffix.lower() in BAG_SUFFIXES


# -- opening ----------------------------------------------------------------------------------------
class _Bag:
    """An open bag: ``topics`` (topic -> message type, ROS 2 style names) and ``messages``."""

    def __init__(self, path):
        self.path = Path(path)
        if not is_bag(self.path):
            raise SimdataError(f"{self.path} is no ROS bag (a .bag, .db3 or .mcap file, or a ROS 2 "
                               f"folder with metadata.yaml); check the path")
        try:
            from rosbags.highlevel import AnyReader
            from rosbags.typesys import Stores, get_typestore
        except ImportError:
            raise SimdataError(f"reading the ROS bag {self.path} needs rosbags: {EXTRA}") from None
        p = self.path
        if p.is_file() and p.suffix.lower() != ".bag" and (p.parent / "metadata.yaml").is_file():
            p = p.parent  # one file of a ROS 2 folder: the folder says how to read it
        self._reader = self._storage = None
        try:
            if p.is_dir() or p.suffix.lower() == ".bag":
                self._reader = AnyReader([p], default_typestore=get_typestore(Stores.LATEST))
                self._reader.open()
                self.connections = list(self._reader.connections)
            else:  # a bare .db3 / .mcap: its storage plugin, ROS 2 message definitions
                from rosbags.rosbag2.storage_mcap import McapReader
                from rosbags.rosbag2.storage_sqlite3 import Sqlite3Reader

                self._storage = (McapReader if p.suffix.lower() == ".mcap" else Sqlite3Reader)(p)
                self._storage.open()
                self._types = get_typestore(Stores.LATEST)
                self.connections = list(self._storage.connections)
        except SimdataError:
            raise
        except Exception as e:  # rosbags' reader errors, apsw, OSError: the bag is unreadable
            self.close()
            raise SimdataError(f"cannot read the bag {self.path} ({type(e).__name__}: {e}); it is "
                               f"damaged or incomplete: reindex it (rosbag reindex) or record it "
                               f"again") from None
        self.topics = {c.topic: c.msgtype for c in sorted(self.connections, key=lambda c: c.topic)}

    def close(self):
        for r in (self._reader, self._storage):
            if r is not None:
                try:
                    r.close()
                except Exception:  # already closed or never opened
                    pass
        self._reader = self._storage = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def messages(self, topics: Iterable[str], start: int | None = None,
                 stop: int | None = None) -> Iterator[tuple[str, int, object]]:
        """(topic, bag time ns, deserialised message) of ``topics`` in bag order."""
        topics = set(topics)
        conns = [c for c in self.connections if c.topic in topics]
        if not conns:
            return
        src = (self._reader or self._storage).messages(conns, start=start, stop=stop)
        while True:
            try:
                conn, t, raw = next(src)
                msg = (self._reader.deserialize(raw, conn.msgtype) if self._reader
                       else self._types.deserialize_cdr(raw, conn.msgtype))
            except StopIteration:
                return
            except Exception as e:
                raise SimdataError(f"cannot read a message of the bag {self.path} ({type(e).__name__}: "
                                   f"{e}); the bag is damaged: reindex it or record it again") from None
            yield conn.topic, t, msg


def bag_topics(path) -> dict[str, str]:
    """Topic -> message type (ROS 2 style, e.g. ``sensor_msgs/msg/Image``) of a bag."""
    with _Bag(path) as bag:
        return dict(bag.topics)


# -- decoding ---------------------------------------------------------------------------------------
def _stamp_ns(msg, bag_time: int) -> int:
    s = msg.header.stamp
    ns = int(s.sec) * 1_000_000_000 + int(s.nanosec)
    return ns if ns > 0 else bag_time


def _encoding(msg, msgtype: str) -> str:
    """An Image's encoding; for a CompressedImage the raw encoding its format names ('bgr8;
    jpeg compressed bgr8' -> 'bgr8', '16UC1; compressedDepth png' -> '16UC1'), or 'jpeg'/'png'."""
    if msgtype == IMAGE:
        return msg.encoding
    fmt = msg.format.strip()
    return fmt.split(";")[0].strip() if ";" in fmt else fmt.lower()


def _kind(msg, msgtype: str) -> str:
    enc = _encoding(msg, msgtype)
    if enc in DEPTH_ENCODINGS:
        return "depth"
    if enc in COLOUR_ENCODINGS or (msgtype == COMPRESSED and "compressedDepth" not in msg.format):
        return "colour"
    return "unknown"


def _raw_pixels(msg, dtype: str, channels: int, where: str) -> np.ndarray:
    """An Image's pixels as (H,W) or (H,W,C) of ``dtype`` (byte order and row padding handled)."""
    dt = np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.asarray(msg.data, dtype=np.uint8)
    row = w * channels * dt.itemsize
    if h == 0 or w == 0 or step < row or data.size < h * step:
        raise SimdataError(f"{where}: a {w}x{h} {msg.encoding} image with step {step} holds "
                           f"{data.size} bytes; the message is truncated, record the topic again")
    px = data[:h * step].reshape(h, step)[:, :row].copy().view(dt).astype(dt.newbyteorder("="))
    return px.reshape(h, w, channels) if channels > 1 else px.reshape(h, w)


def _unknown(where: str, enc: str, kind: str) -> SimdataError:
    known = ", ".join(COLOUR_ENCODINGS if kind == "colour" else DEPTH_ENCODINGS)
    return SimdataError(f"{where} has encoding {enc!r}, which simdata cannot read as {kind} (it "
                        f"reads {known}); republish it in one of those (e.g. image_proc for Bayer "
                        f"or YUV) or choose another topic with --{kind}-topic")


def _imdecode(msg, where: str) -> np.ndarray:
    """A CompressedImage's pixels as OpenCV decodes them (gray or BGR[A], 8 or 16 bit), after
    the 12-byte header of compressedDepth."""
    skip = 12 if "compressedDepth" in msg.format else 0
    img = cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8)[skip:], cv2.IMREAD_UNCHANGED)
    if img is None:
        raise SimdataError(f"{where}: cannot decode the CompressedImage ({msg.format!r}); the "
                           f"message is damaged")
    return img


def decode_colour(msg, msgtype: str, where: str) -> np.ndarray:
    """An Image or CompressedImage -> (H,W,3) uint8 RGB. ``where`` names it in errors."""
    if msgtype == COMPRESSED:
        img = _imdecode(msg, where)
        if img.dtype != np.uint8:
            raise SimdataError(f"{where}: the CompressedImage ({msg.format!r}) is not 8-bit colour; "
                               f"if it holds depth, pass it as --depth-topic")
        channels = 1 if img.ndim == 2 else img.shape[2]
        conv = {1: cv2.COLOR_GRAY2RGB, 3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGB}[channels]
        return cv2.cvtColor(img, conv)
    if msg.encoding not in COLOUR_ENCODINGS:
        raise _unknown(where, msg.encoding, "colour")
    channels, conv = COLOUR_ENCODINGS[msg.encoding]
    px = _raw_pixels(msg, "u1", channels, where)
    return np.ascontiguousarray(px if conv is None else cv2.cvtColor(px, conv))


def decode_depth(msg, msgtype: str, where: str) -> np.ndarray:
    """An Image (16UC1/mono16 mm, 32FC1 m) or compressedDepth CompressedImage -> (H,W) float32
    metres, 0 = no reading."""
    enc = _encoding(msg, msgtype)
    if enc not in DEPTH_ENCODINGS:
        raise _unknown(where, enc if msgtype == IMAGE else msg.format, "depth")
    if msgtype == COMPRESSED:
        if "rvl" in msg.format.lower():
            raise SimdataError(f"{where}: depth format {msg.format!r} (RVL) cannot be read; record "
                               f"raw depth or compressed_depth_image_transport's png")
        px = _imdecode(msg, where)
        if px.dtype != np.uint16 or px.ndim != 2:
            raise SimdataError(f"{where}: the depth PNG ({msg.format!r}) is not 16-bit; the message "
                               f"is damaged")
        if enc == "32FC1":  # compressedDepth's inverse-depth quantisation: z = A / (q - B), q = 0: none
            if "compressedDepth" not in msg.format:
                raise SimdataError(f"{where}: 32FC1 depth as {msg.format!r} cannot be read; record "
                                   f"raw depth or compressedDepth png")
            quant_a, quant_b = np.frombuffer(bytes(msg.data[4:12]), "<f4")  # ConfigHeader: format, depthParam[2]
            q = px.astype(np.float32)
            return np.where(px > 0, quant_a / np.where(px > 0, q - quant_b, 1), 0).astype(np.float32)
        return px.astype(np.float32) / M_TO_MM
    dtype, unit = DEPTH_ENCODINGS[enc]
    d = _raw_pixels(msg, dtype, 1, where).astype(np.float32) * np.float32(unit)
    d[~np.isfinite(d) | (d < 0)] = 0.0
    return d


def camera_matrix(msg) -> np.ndarray | None:
    """K (3,3) float64 of a CameraInfo (``k`` in ROS 2, ``K`` in ROS 1); None when it is zero."""
    K = np.asarray(msg.k if hasattr(msg, "k") else msg.K, dtype=np.float64).reshape(3, 3)
    return K if K[0, 0] > 0 and K[1, 1] > 0 else None


# -- which topics -----------------------------------------------------------------------------------
@dataclass
class _Stream:
    """An image topic as its first message shows it."""

    topic: str
    msgtype: str
    kind: str       # colour, depth or unknown
    encoding: str
    size: tuple[int, int]  # (width, height)
    frame_id: str


@dataclass
class _Plan:
    """Resolved topics of a bag and the first K (for frames published before any CameraInfo)."""

    colour: _Stream | None
    depth: _Stream | None
    info: str | None
    first_K: np.ndarray | None
    tolerance_ns: int


def _size(msg, msgtype: str, where: str) -> tuple[int, int]:
    if msgtype == IMAGE:
        return int(msg.width), int(msg.height)
    img = _imdecode(msg, where)
    return img.shape[1], img.shape[0]


def _namespace_match(a: str, b: str) -> int:
    """Number of leading path components two topics share."""
    n = 0
    for x, y in zip(a.strip("/").split("/"), b.strip("/").split("/")):
        if x != y:
            break
        n += 1
    return n


def _plan(bag: _Bag, topics: BagTopics) -> _Plan:
    images = [t for t, m in bag.topics.items() if m in (IMAGE, COMPRESSED)]
    infos = [t for t, m in bag.topics.items() if m == INFO]
    listing = ", ".join(f"{t} ({m.rsplit('/', 1)[-1]})" for t, m in bag.topics.items()) or "none"
    if not images:
        raise SimdataError(f"{bag.path} has no sensor_msgs/Image or CompressedImage topic (topics: "
                           f"{listing}); record the camera's image topics")
    if topics.tolerance_s < 0:
        raise SimdataError(f"--tolerance-s {topics.tolerance_s} must be 0 or more")
    for name, value, allowed in (("colour", topics.colour, images), ("depth", topics.depth, images),
                                 ("camera-info", topics.camera_info, infos)):
        if value not in (None, *NO_TOPIC) and value not in allowed:
            what = "CameraInfo" if name == "camera-info" else "image"
            raise SimdataError(f"--{name}-topic {value}: {bag.path} has no {what} topic of that name "
                               f"(topics: {listing})")
    # the first message of each topic that has one: a topic listed but never published (count
    # 0) would otherwise keep this loop reading, and deserialising, the whole bag
    counts = Counter()
    for c in bag.connections:
        counts[c.topic] += c.msgcount
    wanted = [t for t in images + infos if counts[t] > 0]
    first: dict[str, object] = {}
    for topic, _, msg in bag.messages(wanted):
        first.setdefault(topic, msg)
        if len(first) == len(wanted):
            break
    streams = {}
    for t in images:
        if t in first:
            msg, mt = first[t], bag.topics[t]
            streams[t] = _Stream(t, mt, _kind(msg, mt), _encoding(msg, mt),
                                 _size(msg, mt, f"topic {t} of {bag.path}"), msg.header.frame_id)
    colour = _choose(bag, topics.colour, "colour", streams, key=lambda s: (
        COLOUR_ENCODINGS.get(s.encoding, (3,))[0] >= 3,
        any(w in s.topic.lower() for w in ("color", "colour", "rgb")), s.msgtype == IMAGE))
    ref = colour
    depth = _choose(bag, topics.depth, "depth", streams, key=lambda s: (
        ref is None or s.size == ref.size, ref is not None and s.frame_id == ref.frame_id,
        any(w in s.topic for w in ("aligned", "registered")), s.msgtype == IMAGE))
    if colour is None and depth is None:
        raise SimdataError(f"{bag.path}: no colour or depth stream to read (image topics: "
                           f"{', '.join(images)}); name one with --colour-topic or --depth-topic")
    if colour is not None and depth is not None and depth.size != colour.size:
        raise SimdataError(f"depth on {depth.topic} is {depth.size[0]}x{depth.size[1]} but colour on "
                           f"{colour.topic} is {colour.size[0]}x{colour.size[1]} in {bag.path}; pass the "
                           f"depth registered to colour (e.g. aligned_depth_to_color) with --depth-topic, "
                           f"or --depth-topic none")
    image = colour or depth
    info = topics.camera_info
    if info in NO_TOPIC:
        info = None
    elif info is None and infos:
        def score(t):
            m = first.get(t)
            return (m is not None and (int(m.width), int(m.height)) in (image.size, (0, 0)),
                    m is not None and m.header.frame_id == image.frame_id, _namespace_match(t, image.topic))
        info = max(infos, key=score)  # infos are sorted: the first by name of equals
    first_K = None
    if info is not None:
        m = first.get(info)
        if m is None:
            raise SimdataError(f"--camera-info-topic {info} has no message in {bag.path}; choose "
                               f"another or --camera-info-topic none")
        if (int(m.width), int(m.height)) not in (image.size, (0, 0)):
            raise SimdataError(f"CameraInfo on {info} is for {m.width}x{m.height} images but {image.topic} "
                               f"is {image.size[0]}x{image.size[1]} in {bag.path}; pass the camera "
                               f"info of that image with --camera-info-topic")
        first_K = camera_matrix(m)
    return _Plan(colour, depth, info, first_K, int(round(topics.tolerance_s * 1e9)))


def _choose(bag: _Bag, wanted: str | None, kind: str, streams: dict[str, _Stream], key) -> _Stream | None:
    """The topic asked for (checked), or the best-scoring one of ``kind`` (ties: by name)."""
    if wanted in NO_TOPIC:
        return None
    if wanted is not None:
        s = streams.get(wanted)
        if s is None:
            raise SimdataError(f"--{kind}-topic {wanted} has no message in {bag.path}; choose another")
        if s.kind != kind:
            raise _unknown(f"topic {wanted} of {bag.path}", s.encoding, kind)
        return s
    cands = sorted((s for s in streams.values() if s.kind == kind), key=lambda s: s.topic)
    if not cands and kind == "colour" and not any(s.kind == "depth" for s in streams.values()):
        s = next(iter(streams.values()), None)  # nothing readable: say why for the first topic
        if s is not None:
            raise _unknown(f"topic {s.topic} of {bag.path}", s.encoding, "colour")
    return max(cands, key=key) if cands else None  # max keeps the first (by name) of equals


# -- pairing ----------------------------------------------------------------------------------------
@dataclass
class _Msg:
    topic: str
    bag_time: int
    ordinal: int        # among messages of the topic with the same bag time
    stamp: int          # header stamp, ns
    frame_id: str
    msg: object         # the deserialised message (None in BagFrames' index)
    K: np.ndarray | None = None  # the intrinsics at its stamp


class _Intrinsics:
    """K over time: each CameraInfo's K from its stamp on (the first one before that)."""

    def __init__(self, first_K: np.ndarray | None):
        self.first, self.changes = first_K, []  # (stamp, K) where K changed
        self.latest: int | None = None  # newest CameraInfo stamp read

    def add(self, msg, bag_time: int):
        K, stamp = camera_matrix(msg), _stamp_ns(msg, bag_time)
        self.latest = stamp if self.latest is None else max(self.latest, stamp)
        if K is not None and (not self.changes or not np.array_equal(self.changes[-1][1], K)):
            self.changes.append((stamp, K))

    def at(self, stamp: int) -> np.ndarray | None:
        return next((K for s, K in reversed(self.changes) if s <= stamp), self.first)


def _pairs(bag: _Bag, plan: _Plan) -> Iterator[tuple[_Msg | None, _Msg | None]]:
    """(colour, depth) messages of the plan's topics, paired by header stamp (see the module),
    each frame's head message carrying K."""
    c_topic = plan.colour.topic if plan.colour else None
    d_topic = plan.depth.topic if plan.depth else None
    tol = plan.tolerance_ns
    intrinsics = _Intrinsics(plan.first_K)
    seen: dict[str, tuple[int, int]] = {}  # topic -> (bag time, ordinal) of its last message
    stats = Counter()
    one = c_topic is None or d_topic is None
    held: list[_Msg] = []  # one stream: images waiting for the CameraInfo of their stamp

    def release(t: int):
        # a driver records the CameraInfo of a stamp after its image: an image takes its K once
        # the CameraInfo topic has reached its stamp (or it waited HORIZON_NS, or the bag ended)
        while held and (plan.info is None or t is None or t - held[0].bag_time > HORIZON_NS
                        or (intrinsics.latest is not None and intrinsics.latest >= held[0].stamp)):
            m = held.pop(0)
            m.K = intrinsics.at(m.stamp)
            yield (m, None) if m.topic == c_topic else (None, m)
    pend_c: list[_Msg] = []
    pend_d: list[_Msg] = []
    last_d = last_c = None  # newest depth stamp seen, stamp of the last colour settled

    def settle(c: _Msg):
        nonlocal last_c
        last_c = c.stamp
        best = min(pend_d, key=lambda d: abs(d.stamp - c.stamp), default=None)
        if best is None or abs(best.stamp - c.stamp) > tol:
            stats["unpaired"] += 1
            return None
        stats["paired"] += 1
        c.K = intrinsics.at(c.stamp)
        return c, best

    for topic, t, msg in bag.messages([x for x in (c_topic, d_topic, plan.info) if x]):
        if topic == plan.info:
            intrinsics.add(msg, t)
            if one:
                yield from release(t)
            continue
        # messages come in bag-time order: a topic's ordinal restarts with each new bag time
        last_t, ordinal = seen.get(topic, (None, -1))
        ordinal = ordinal + 1 if last_t == t else 0
        seen[topic] = (t, ordinal)
        m = _Msg(topic, t, ordinal, _stamp_ns(msg, t), msg.header.frame_id, msg)
        if one:  # one stream: nothing to pair
            held.append(m)
            yield from release(t)
            continue
        if topic == c_topic:
            stats["colour"] += 1
            pend_c.append(m)
        else:
            pend_d.append(m)
            last_d = m.stamp if last_d is None else max(last_d, m.stamp)
        # a colour image is settled once depth has passed its stamp, or it waited HORIZON_NS
        while pend_c and ((last_d is not None and last_d > pend_c[0].stamp + tol)
                          or t - pend_c[0].bag_time > HORIZON_NS):
            pair = settle(pend_c.pop(0))
            if pair:
                yield pair
        floor = pend_c[0].stamp - tol if pend_c else (last_c - tol if last_c is not None else None)
        pend_d = [d for d in pend_d if (floor is None or d.stamp >= floor) and
                  (pend_c or t - d.bag_time <= HORIZON_NS)]
    yield from release(None)
    for c in pend_c:
        pair = settle(c)
        if pair:
            yield pair
    if c_topic and d_topic and stats["colour"] and not stats["paired"]:
        raise SimdataError(f"no depth on {d_topic} within {tol / 1e9:g} s of any colour image on "
                           f"{c_topic} in {bag.path}; raise --tolerance-s, pick the depth registered "
                           f"to that camera with --depth-topic, or read colour only with --depth-topic none")
    if stats["unpaired"]:
        log.warning("%s: %d of %d colour images on %s have no depth on %s within %g s; skipped",
                    bag.path, stats["unpaired"], stats["colour"], c_topic, d_topic, tol / 1e9)


def _frame(bag: _Bag, plan: _Plan, c: _Msg | None, d: _Msg | None) -> BagFrame:
    head = c or d
    rgb = depth = None
    if c is not None:
        rgb = decode_colour(c.msg, plan.colour.msgtype, f"topic {c.topic} of {bag.path}")
    if d is not None:
        depth = decode_depth(d.msg, plan.depth.msgtype, f"topic {d.topic} of {bag.path}")
        if rgb is not None and depth.shape != rgb.shape[:2]:
            raise SimdataError(f"depth on {d.topic} is {depth.shape[1]}x{depth.shape[0]} but colour on "
                               f"{c.topic} is {rgb.shape[1]}x{rgb.shape[0]} at {c.stamp} ns in {bag.path}; "
                               f"pass depth registered to colour with --depth-topic")
    return BagFrame(head.stamp, head.frame_id, rgb, depth, None if head.K is None else head.K.copy())


def _check_every(every: int):
    if every < 1:
        raise SimdataError(f"--every {every} must be 1 or more")


def iter_bag_frames(path, topics: BagTopics = BagTopics(), every: int = 1) -> Iterator[BagFrame]:
    """Stream the frames of a bag in bag order, every ``every``-th one (one pass, bounded memory)."""
    _check_every(every)
    with _Bag(path) as bag:
        plan = _plan(bag, topics)
        for c, d in islice(_pairs(bag, plan), 0, None, every):
            yield _frame(bag, plan, c, d)


class BagFrames:
    """Random access to a bag's frames (what :class:`simdata.ImageFolder` reads a bag with).

    One pass pairs and indexes the frames (the bag times of their messages, stamps and K); a
    frame is then read back by bag time. ``frames[i]`` is a :class:`BagFrame`."""

    def __init__(self, path, topics: BagTopics = BagTopics(), every: int = 1):
        _check_every(every)
        self.path = Path(path)
        self._bag: _Bag | None = None
        self._pid = None
        with _Bag(self.path) as bag:
            self.plan = _plan(bag, topics)
            pairs = islice(_pairs(bag, self.plan), 0, None, every)
            # locators: the messages themselves are dropped and read back by bag time
            self._index = [tuple(None if m is None else replace(m, msg=None) for m in pair) for pair in pairs]
        self.has_colour, self.has_depth = self.plan.colour is not None, self.plan.depth is not None

    def __len__(self) -> int:
        return len(self._index)

    @property
    def stamps_ns(self) -> list[int]:
        """Header stamp of every frame, ns."""
        return [(c or d).stamp for c, d in self._index]

    def K(self, index: int) -> np.ndarray | None:
        """(3,3) intrinsics of frame ``index`` without reading its images."""
        c, d = self._index[index]
        return (c or d).K

    def _open(self) -> _Bag:
        if self._bag is None or self._pid != os.getpid():  # a forked worker opens its own
            self._bag, self._pid = _Bag(self.path), os.getpid()
        return self._bag

    def _read(self, ref: _Msg | None) -> _Msg | None:
        if ref is None:
            return None
        t = ref.bag_time
        msgs = [m for _, _, m in self._open().messages([ref.topic], start=t, stop=t + 1)]
        if len(msgs) <= ref.ordinal:
            raise SimdataError(f"{self.path} changed since it was indexed (no message on {ref.topic} "
                               f"at {t} ns); open it again")
        return replace(ref, msg=msgs[ref.ordinal])

    def __getitem__(self, index: int) -> BagFrame:
        c, d = self._index[index]
        return _frame(self._open(), self.plan, self._read(c), self._read(d))

    def close(self):
        if self._bag is not None:
            self._bag.close()
            self._bag = None

    def __getstate__(self):  # picklable for DataLoader workers: they reopen the bag
        return {**self.__dict__, "_bag": None, "_pid": None}


# -- command-line options ---------------------------------------------------------------------------
def add_topic_options(parser) -> None:
    """--colour-topic, --depth-topic, --camera-info-topic, --tolerance-s from BagTopics."""
    for f in fields(BagTopics):
        flag = "--" + f.name.replace("_", "-") + ("" if f.name == "tolerance_s" else "-topic")
        seconds = f.name == "tolerance_s"
        parser.add_argument(flag, dest=f"bag_{f.name}", default=f.default, help=f.metadata["help"],
                            type=float if seconds else str, metavar="S" if seconds else "TOPIC")


def topics_from_args(args) -> BagTopics:
    return BagTopics(**{f.name: getattr(args, f"bag_{f.name}") for f in fields(BagTopics)})


def parse_topics(text: str) -> BagTopics:
    """'colour=/cam/image,depth=none,camera_info=/cam/info,tolerance_s=0.05' (any subset, empty =
    all found from the bag) -> BagTopics."""
    names = {f.name for f in fields(BagTopics)}
    values: dict = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in names:
            raise SimdataError(f"bag topics {text!r}: write KEY=VALUE pairs separated by commas, "
                               f"keys {', '.join(sorted(names))}")
        try:
            values[key] = float(value) if key == "tolerance_s" else value.strip()
        except ValueError:
            raise SimdataError(f"bag topics {text!r}: tolerance_s must be a number of seconds") from None
    return BagTopics(**values)
