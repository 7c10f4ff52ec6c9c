"""Where things are in a BOP split on disk (shared by the reader, the validator and previews)."""
from __future__ import annotations

import json
from pathlib import Path

from .errors import SimdataError

SPLIT = "train_pbr"


def scene_dirs(root: Path, split: str = SPLIT) -> list[Path]:
    """Finished scene folders of a split, in order (hidden temporary folders excluded)."""
    return sorted(p for p in (Path(root) / split).glob("[0-9]*") if p.is_dir())


def list_images(root: Path, split: str = SPLIT) -> list[tuple[Path, int]]:
    """(scene folder, image id) of every image in a split, in order."""
    items = []
    for scene in scene_dirs(root, split):
        cams = json.loads((scene / "scene_camera.json").read_text())
        items += [(scene, int(k)) for k in sorted(cams, key=int)]
    return items


def find_rgb(scene: Path, im_id: int) -> Path:
    """The RGB file of an image: BOP uses .jpg for PBR splits and .png elsewhere."""
    for ext in ("jpg", "png"):
        p = scene / "rgb" / f"{im_id:06d}.{ext}"
        if p.exists():
            return p
    raise SimdataError(f"no rgb image {im_id:06d} in {scene}/rgb; the dataset is incomplete")
