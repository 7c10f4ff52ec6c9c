"""`simdata import-bag`: the frames of a ROS bag as an image folder that ImageFolder reads.

Layout (the YCB-Video one): ``NNNNNN-color.png`` (RGB), ``NNNNNN-depth.png`` (uint16
**millimetres**, 0 = no reading; where the bag has depth), ``meta.yml`` with the 3x3
``INTRINSICS`` of the first frame's CameraInfo (where the bag has one), and ``frames.json``:
per frame its name, header stamp (ns) and frame_id, and the bag and topics it came from. The
folder is written under a temporary name and renamed when complete.
"""
from __future__ import annotations

import logging
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .bags import BagTopics, iter_bag_frames
from .errors import SimdataError
from .fileio import disk_error, write_image, write_json_atomic
from .transforms import depth_m_to_mm_u16

log = logging.getLogger(__name__)


def meta_yml(K: np.ndarray) -> str:
    """meta.yml text with the intrinsics as ImageFolder reads them (``INTRINSICS: [9 numbers]``)."""
    return "INTRINSICS: [" + ", ".join(repr(float(v)) for v in np.asarray(K).ravel()) + "]\n"


def import_bag(bag, out, topics: BagTopics = BagTopics(), every: int = 1, progress: bool = True) -> dict:
    """Write every ``every``-th frame of ``bag`` to the new folder ``out``; returns counts."""
    from tqdm import tqdm

    bag, out = Path(bag), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SimdataError(f"--out {out} exists and is not empty; choose a new folder")
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    records, first_K, other_K, depth = [], None, 0, 0
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for i, f in enumerate(tqdm(iter_bag_frames(bag, topics, every), unit="frame", disable=not progress)):
            name = f"{i:06d}"
            if f.rgb is None:
                raise SimdataError(f"{bag} has no colour image topic; an image folder needs colour "
                                   f"(name the topic with --colour-topic)")
            write_image(tmp / f"{name}-color.png", f.rgb)
            if f.depth_m is not None:
                write_image(tmp / f"{name}-depth.png", depth_m_to_mm_u16(f.depth_m))
                depth += 1
            if f.K is not None:
                if first_K is None:
                    first_K = f.K
                other_K += not np.allclose(f.K, first_K, atol=0.5)
            records.append({"name": name, "stamp_ns": f.stamp_ns, "frame_id": f.frame_id})
        if not records:
            raise SimdataError(f"{bag} holds no frame on the chosen topics; check them with "
                               f"--colour-topic / --depth-topic")
        if first_K is not None:
            (tmp / "meta.yml").write_text(meta_yml(first_K))
        write_json_atomic(tmp / "frames.json", {"bag": str(bag), "topics": asdict(topics), "every": every,
                                                "frames": records})
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except OSError as e:  # an unwritable --out, a full disk: one line, no temporary left
        shutil.rmtree(tmp, ignore_errors=True)
        raise disk_error(out, e) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if other_K:
        log.warning("%d frames of %s have other intrinsics than the first; meta.yml holds the "
                    "first's", other_K, bag)
    return {"frames": len(records), "depth": depth, "K": first_K is not None}
