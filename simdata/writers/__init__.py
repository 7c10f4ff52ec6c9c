"""Dataset writers. A writer only sees frames and poses; it never renders.

``FORMATS`` maps each ``--format`` name to its DatasetWriter class (see :mod:`.base` for the
protocol); :func:`make_writers` builds the writers of a RenderConfig, in FORMATS order.
"""
from .base import DatasetWriter, SceneWriter, SceneWriters
from .bop import BopSceneWriter, BopWriter, write_dataset_header, write_models
from .coco import CocoWriter
from .crops import CropWriter

# Order matters: scenes are committed in this order, and COCO points at BOP's images.
FORMATS = {"bop": BopWriter, "coco": CocoWriter}


def parse_formats(text: str) -> tuple[str, ...]:
    """'coco,bop' -> ('bop', 'coco'): a --format list in FORMATS order, so that the order typed
    does not count as another setting; unknown names go last (RenderConfig.validate refuses)."""
    names = {n.strip() for n in text.split(",") if n.strip()}
    return tuple(n for n in FORMATS if n in names) + tuple(sorted(names - set(FORMATS)))


def make_writers(cfg) -> list[DatasetWriter]:
    """The DatasetWriters of ``cfg.formats`` (a validated RenderConfig) for ``cfg.out``."""
    return [cls(cfg.out, cfg) for name, cls in FORMATS.items() if name in cfg.formats]


def open_scene(writers: list[DatasetWriter], scene_index: int) -> SceneWriters:
    """A SceneWriter for scene ``scene_index`` in every format of ``writers`` that lacks it."""
    return SceneWriters([w.scene(scene_index) for w in writers if not w.has_scene(scene_index)])


__all__ = ["FORMATS", "BopSceneWriter", "BopWriter", "CocoWriter", "CropWriter", "DatasetWriter",
           "SceneWriter", "SceneWriters", "make_writers", "open_scene", "parse_formats",
           "write_dataset_header", "write_models"]
