"""Random objects for training nets that must generalise beyond the meshes a user has: boxes,
cylinders, capsules and ellipsoids of random proportions and sizes, written as object folders
that ``--meshes`` takes beside real models (``simdata shapes``).

Why: a grasp net trained on ten YCB proxies has seen ten shapes; procedurally generated
objects are the field's standard way to widen that (Tobin et al. 2018, "Domain randomization
and generative models for robotic grasping"; Dex-Net's and EGAD's object sets). Every shape is
convex, so its collision geometry is its hull and physics needs no decomposition.

Layout: ``OUT/shape_NNN/textured.obj`` (metres, z up, centred on its bounding box; one random
colour as vertex colours), and ``OUT/shapes.json`` (the settings and each shape's kind and
extents, mm). Deterministic: shape i is drawn from the generator (seed, i).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import SimdataError
from .fileio import write_bytes_atomic, write_json_atomic

KINDS = ("box", "cylinder", "capsule", "ellipsoid")
SHAPES_FILE = "shapes.json"


@dataclass
class ShapeConfig:
    """What to draw: ``count`` shapes of the ``kinds`` (comma-separated), each side between
    ``min_size_m`` and ``max_size_m`` (metres), drawn log-uniformly."""

    count: int = 40
    seed: int = 0
    kinds: str = ",".join(KINDS)
    min_size_m: float = 0.02
    max_size_m: float = 0.16

    def validate(self) -> None:
        if self.count < 1:
            raise SimdataError(f"--count {self.count}: give at least 1 shape")
        bad = [k for k in self.kind_list() if k not in KINDS]
        if bad or not self.kind_list():
            raise SimdataError(f"--kinds {self.kinds!r}: choose among {', '.join(KINDS)}")
        if not 0.005 <= self.min_size_m <= self.max_size_m <= 1.0:
            raise SimdataError(f"--sizes {self.min_size_m * 100:g}:{self.max_size_m * 100:g} cm: "
                               f"give MIN:MAX with 0.5 <= MIN <= MAX <= 100")

    def kind_list(self) -> list[str]:
        return [k.strip() for k in self.kinds.split(",") if k.strip()]


def random_shape(rng: np.random.Generator, cfg: ShapeConfig):
    """(kind, trimesh.Trimesh in metres, centred on its bounding box) drawn with ``rng``."""
    import trimesh

    kind = cfg.kind_list()[int(rng.integers(len(cfg.kind_list())))]
    lo, hi = np.log(cfg.min_size_m), np.log(cfg.max_size_m)
    size = np.exp(rng.uniform(lo, hi, 3))  # three sides, log-uniform
    if kind == "box":
        mesh = trimesh.creation.box(extents=size)
    elif kind == "cylinder":
        mesh = trimesh.creation.cylinder(radius=size[0] / 2, height=size[2], sections=32)
    elif kind == "capsule":  # a cylinder with round ends; height is the whole length
        r = size[0] / 2
        mesh = trimesh.creation.capsule(height=max(size[2] - 2 * r, 1e-3), radius=r, count=[16, 16])
    else:
        mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
        mesh.apply_scale(size)
    mesh.apply_translation(-mesh.bounds.mean(0))
    return kind, mesh


def write_shapes(out: str | Path, cfg: ShapeConfig) -> list[dict]:
    """Write ``cfg.count`` random shapes under ``out`` (see the module docstring); returns
    their records. A rerun with the same settings rewrites the same files; ``out`` holding
    other settings' shapes is refused."""
    cfg.validate()
    out = Path(out)
    index = out / SHAPES_FILE
    settings = asdict(cfg)
    if index.is_file() and json.loads(index.read_text()).get("settings") != settings:
        raise SimdataError(f"{out} holds shapes made with other settings ({index}); "
                           f"choose another --out or delete it")
    records = []
    for i in range(cfg.count):
        kind, mesh = random_shape(np.random.default_rng([cfg.seed, i]), cfg)
        rng = np.random.default_rng([cfg.seed, i, 1])
        colour = rng.uniform(0.15, 0.95, 3)
        folder = out / f"shape_{i:03d}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SimdataError(f"cannot create {folder} ({e.strerror}); choose a writable --out") from None
        rgb = " ".join(f"{c:.4f}" for c in colour)  # one colour, as OBJ vertex colours
        obj = [f"v {x:.6f} {y:.6f} {z:.6f} {rgb}" for x, y, z in mesh.vertices]
        obj += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in mesh.faces]
        write_bytes_atomic(folder / "textured.obj", ("\n".join(obj) + "\n").encode())
        records.append({"name": folder.name, "kind": kind,
                        "extents_mm": [round(float(v) * 1000, 2) for v in mesh.extents]})
    write_json_atomic(index, {"settings": settings, "shapes": records})
    return records
