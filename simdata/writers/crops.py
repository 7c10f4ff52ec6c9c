"""Crops writer: shards of object-centred crops plus labels.jsonl, written into a temporary
folder that is renamed when complete. The format is documented in :mod:`simdata.crops`.

Crops are not scenes, so this writer has its own shape: ``add`` crops one by one, ``close``
(commit) renames the folder into place, ``abort`` removes it.
"""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np

from ..errors import SimdataError
from ..fileio import write_bytes_atomic, write_json_atomic


class CropWriter:
    """Collects crops and writes them as shards plus labels.jsonl into a temporary folder that
    is renamed to ``out`` by :meth:`close` (so a crops folder is always complete)."""

    def __init__(self, out: Path, info: dict, shard_size: int = 1024, models: list | None = None,
                 symmetries: dict[int, dict] | None = None):
        """``models`` (ObjectModels, meshes in metres): write models_info.json and
        model_points.npz on close; ``symmetries`` {obj_id: BOP symmetry fields}, None = detect
        them from the meshes (cached)."""
        self.out = Path(out)
        if self.out.exists():
            raise SimdataError(f"--out {self.out} exists; crops are written to a new folder")
        self.tmp = self.out.with_name(f".tmp-{self.out.name}")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        self.info, self.shard_size = info, shard_size
        self.models, self.symmetries = models, symmetries
        self.labels: list[dict] = []
        self._buf: dict[str, list] = {"rgb": []}
        self._shard = 0

    def add(self, rgb, depth_m, mask, label: dict, **privileged) -> None:
        """Add one crop; ``privileged`` arrays (e.g. depth_clean, rgb_clean) are stored beside
        the sensor-like ones under their own keys."""
        arrays = {"rgb": rgb, "depth": depth_m.astype(np.float32), "mask": mask.astype(bool),
                  **{k: (v.astype(np.float32) if k.startswith("depth") else v)
                     for k, v in privileged.items()}}
        for k, v in arrays.items():
            self._buf.setdefault(k, []).append(v)
        self.labels.append({"id": len(self.labels), "shard": self._shard,
                            "index": len(self._buf["rgb"]) - 1, **label})
        if len(self._buf["rgb"]) >= self.shard_size:
            self._flush()

    def _flush(self) -> None:
        if not self._buf["rgb"]:
            return
        buf = io.BytesIO()
        np.savez(buf, **{k: np.stack(v) for k, v in self._buf.items()})
        write_bytes_atomic(self.tmp / f"shard_{self._shard:06d}.npz", buf.getvalue())
        self._buf = {k: [] for k in self._buf}
        self._shard += 1

    def close(self) -> Path:
        self._flush()
        lines = "".join(json.dumps(lb) + "\n" for lb in self.labels)
        write_bytes_atomic(self.tmp / "labels.jsonl", lines.encode())
        write_json_atomic(self.tmp / "crops_info.json", {**self.info, "count": len(self.labels),
                                                         "shards": self._shard})
        if self.models:
            self._write_models()
        self.tmp.rename(self.out)
        return self.out

    def _write_models(self) -> None:
        from ..symmetry import model_points
        from .bop import models_info

        write_json_atomic(self.tmp / "models_info.json", models_info(self.models, self.symmetries))
        points = {f"obj_{m.obj_id:06d}": model_points(m.mesh, 1000, seed=0) for m in self.models}
        buf = io.BytesIO()
        np.savez(buf, **points)
        write_bytes_atomic(self.tmp / "model_points.npz", buf.getvalue())

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
