"""The writer protocol: how a rendered dataset reaches disk, whatever its format.

A :class:`DatasetWriter` owns one format of one dataset folder. The pipeline calls, in order:

- ``prepare(models, symmetries)`` once, on the machine that starts the run: dataset-level
  files (models, categories), clearing what a killed run left behind;
- ``has_scene(i)`` to resume: a scene is rendered again only for the formats that lack it;
- ``scene(i)`` -> a :class:`SceneWriter`, anywhere (a pool process, a Ray task): frames go in
  with ``add_frame``; ``commit`` makes the scene appear atomically (nothing of it is visible
  under its final name before), ``abort`` drops it;
- ``finish()`` once all scenes are committed: files that depend on every scene (COCO's
  merged annotations). It rebuilds them from the committed scenes, so a rerun repairs them.

Writers are built from the RenderConfig (see :func:`simdata.writers.make_writers`), cheaply
and without touching disk, so that every process can build its own. The crops writer
(:mod:`.crops`) writes crops, not scenes: ``add`` per crop, ``close`` commits, ``abort``.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Protocol

import numpy as np

from ..types import Frame, ObjectModel, PlacedObject


class SceneWriter(Protocol):
    def add_frame(self, im_id: int, frame: Frame, placed: list[PlacedObject],
                  models: list[ObjectModel]) -> None:
        """Write view ``im_id``: ``frame.masks[k]`` belongs to ``placed[k]``, whose model is
        ``models[placed[k].model_index]``."""

    def commit(self, scene_info: dict) -> None:
        """Finish the scene atomically; ``scene_info`` is the JSON-able scene record."""

    def abort(self) -> None:
        """Drop everything of an uncommitted scene (a no-op after commit)."""


class DatasetWriter(Protocol):
    name: str                 # the --format name
    needs: tuple[str, ...]    # formats it relies on (COCO points at BOP's images)

    def prepare(self, models: list[ObjectModel], symmetries: dict[int, dict]) -> None: ...

    def has_scene(self, scene_index: int) -> bool: ...

    def scene(self, scene_index: int) -> SceneWriter: ...

    def finish(self) -> None: ...


class SceneWriters:
    """Several formats' writers of one scene behind the SceneWriter protocol. Commits in the
    order given; each commit is atomic on its own, and a scene that one format committed and
    another did not is rendered again for the other only (see DatasetWriter.has_scene)."""

    def __init__(self, writers: list[SceneWriter]):
        self.writers = writers

    def add_frame(self, im_id, frame, placed, models) -> None:
        for w in self.writers:
            w.add_frame(im_id, frame, placed, models)

    def commit(self, scene_info: dict) -> None:
        for w in self.writers:
            w.commit(scene_info)

    def abort(self) -> None:
        for w in self.writers:
            w.abort()


def mask_bbox(mask: np.ndarray) -> list[int]:
    """[x, y, w, h] (pixels, ints) of a (H,W) bool mask's pixels; [-1, -1, -1, -1] if empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return [-1, -1, -1, -1]
    return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]


def temp_name(final: Path) -> Path:
    """Hidden temporary sibling of ``final``, unique per host and process: scenes of one
    dataset may be written by processes on several machines into one shared folder."""
    return final.with_name(f".tmp-{final.name}-{socket.gethostname()}-{os.getpid()}")
