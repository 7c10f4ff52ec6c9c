#!/usr/bin/env python3
"""What the grasp trials' rigid bodies change: the simulator's own grasp trials (simdata grasps)
on one labelled dataset, relabelled with every model's mesh volume at 500 kg/m^3 about its
centroid (what the trials took before the bodies were recorded in objects.json), per object:
collision-free trials and the share that held, with each kind of body, on the same scenes and
candidates.

    python benchmarks/grasp_bodies.py DATASET [--workers 2] [--out JSON]

DATASET: a dataset labelled by `simdata grasps` (e.g. the test set kept by
`benchmarks/grasp.py --keep DIR`: DIR/test). It is copied; the copy is relabelled.
"""
from __future__ import annotations

import argparse
import collections
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from results_io import save_results  # noqa: E402


def per_object(root: Path) -> dict:
    names = {int(k): v["name"] for k, v in json.loads((root / "objects.json").read_text()).items()}
    counts = collections.defaultdict(lambda: {"trials": 0, "collision_free": 0, "held": 0})
    for f in sorted((root / "train_pbr").glob("*/scene_grasps.json")):
        for r in json.loads(f.read_text())["grasps"]:
            c = counts[names[r["obj_id"]]]
            c["trials"] += 1
            c["collision_free"] += bool(r["collision_free"])
            c["held"] += bool(r["success"])
    return {k: {**v, "held_share": round(v["held"] / v["collision_free"], 3) if v["collision_free"] else None}
            for k, v in sorted(counts.items())}


def relabel(src: Path, copy: Path, workers: int, prepare=None, **physics) -> None:
    """Copy the labelled dataset ``src`` to ``copy`` without its labels and label it again with
    the settings ``src`` was labelled with, the trials' ``physics`` (shake, solver_iterations)
    changed where given; ``prepare(copy)`` runs before (to edit the copy's objects.json)."""
    from adapt.grasping import depth_check_of, gripper_of, trial_physics_of
    from simdata.grasping.labels import CONFIG_FILE, GraspLabelConfig, label_dataset

    settings = json.loads((src / CONFIG_FILE).read_text())
    shutil.copytree(src, copy, ignore=shutil.ignore_patterns("scene_grasps.json", "grasps", CONFIG_FILE))
    if prepare:
        prepare(copy)
    cfg = GraspLabelConfig(**{**settings, **trial_physics_of(src), **physics,
                              "gripper": gripper_of(src), "depth_check": depth_check_of(src)})
    label_dataset(copy, cfg, workers=workers, progress=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "grasp_bodies_cpu.json"))
    args = ap.parse_args()
    from simdata.grasping.labels import CONFIG_FILE

    t_start = time.perf_counter()
    src = Path(args.dataset)
    settings = json.loads((src / CONFIG_FILE).read_text())
    bodies = {}

    def drop_bodies(copy: Path) -> None:  # every model back to its mesh volume at 500 kg/m^3
        objects = json.loads((copy / "objects.json").read_text())
        bodies.update({v["name"]: v.pop("physics", None) for v in objects.values()})
        (copy / "objects.json").write_text(json.dumps(objects, indent=2))

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "volume"
        relabel(src, copy, args.workers, prepare=drop_bodies)
        volume = per_object(copy)
    recorded = per_object(src)
    rows = {name: {"recorded_body": bodies[name], "scene_bodies": recorded[name],
                   "mesh_volume_500": volume[name]} for name in recorded}
    for name, r in rows.items():
        print(f"{name:20s} collision-free {r['scene_bodies']['collision_free']:4d} / "
              f"{r['mesh_volume_500']['collision_free']:4d}  held {r['scene_bodies']['held_share']} "
              f"(mesh volume at 500 kg/m^3: {r['mesh_volume_500']['held_share']})")
    save_results(Path(args.out), {"benchmark": "grasp_bodies", "date": time.strftime("%Y-%m-%d"),
                                  "dataset": str(src), "label_settings": settings, "objects": rows},
                 t_start)


if __name__ == "__main__":
    main()
