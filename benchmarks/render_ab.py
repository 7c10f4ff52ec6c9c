#!/usr/bin/env python3
"""`simdata render` of two checkouts of this project, interleaved on one machine: a code
change's speed-up measured in one run (the same scenes, seeds and settings; rounds alternate
before / after so that a machine getting busier or quieter hits both, and odd rounds run after
first, as running second costs a few per cent here: give an even --rounds).

Each measurement is a fresh process run in the checkout's folder (its own simdata), rendering
``--scenes`` scenes of 4 views, 6 objects, every modality (as benchmarks/render_throughput.py)
with each ``--workers`` count, after one untimed run of each checkout that fills its mesh
cache. Prints and saves images/s and the physics / render / write split per image (ms, summed
over workers), the after / before ratio of the mean rates, each process's wall time from start
to exit (the rate counts from the models loaded on), and the peak memory of its process tree
(sampled every 0.25 s): proportional set size (PSS: a page shared by n processes counts 1/n in
each) and resident set size (RSS), each summed over the processes.

With ``--startup`` each measurement is instead `simdata render` of 1 scene x 1 view, 6 objects,
from process start to exit with a warm mesh cache (a temporary $SIMDATA_CACHE that one untimed
run of each checkout fills): its wall time and the CPU seconds it spent in user and kernel
mode, and the after / before ratio of the mean wall times.

    git worktree add /tmp/before HEAD~1
    python benchmarks/render_ab.py --before /tmp/before --after . [--meshes ../shared/ycb]
        [--workers 1 2] [--scenes 20] [--rounds 2] [--msaa N] [--startup] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from results_io import save_results  # noqa: E402

CHILD = """
import json, sys
sys.path[:0] = ["benchmarks", "."]
from render_throughput import scene_config
from simdata.pipeline import render_dataset
meshes, out, scenes, workers, msaa = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
s = render_dataset(scene_config(meshes, 4, out, scenes, workers, msaa=None if msaa == "" else int(msaa)),
                   progress=False)
print("RESULT " + json.dumps({"images": s.images, "seconds": s.seconds,
                             "ms_per_image": {k: v / s.images * 1000 for k, v in s.timings.items()}}))
"""


def measure(tree: Path, meshes: str, scenes: int, workers: int, msaa: str,
            poll_s: float = 0.25) -> dict:
    from render_throughput import tree_memory_mb

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYOPENGL_PLATFORM": os.environ.get("PYOPENGL_PLATFORM", "egl")}
        out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"  # files: a pipe could fill
        with open(out, "w") as fo, open(err, "w") as fe:
            t = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-c", CHILD, meshes, str(Path(tmp) / "out"),
                                     str(scenes), str(workers), msaa], cwd=tree, env=env,
                                    stdout=fo, stderr=fe)
            peak_pss = peak_rss = 0.0
            while proc.poll() is None:  # the process tree's memory, summed over its processes
                rss, _, pss = tree_memory_mb(proc.pid)
                peak_pss = max(peak_pss, sum(pss.values()))
                peak_rss = max(peak_rss, sum(rss.values()))
                time.sleep(poll_s)
            process_s = time.perf_counter() - t
        stdout = out.read_text()
        if proc.returncode:
            raise SystemExit(f"render in {tree} failed ({proc.returncode}): "
                             f"{err.read_text()[-2000:]}")
    line = next(l for l in stdout.splitlines() if l.startswith("RESULT "))
    r = json.loads(line[len("RESULT "):])
    return {"images_per_s": round(r["images"] / r["seconds"], 3),
            "process_s": round(process_s, 3),  # start to exit: imports and model loading too
            "peak_pss_mb": round(peak_pss, 1), "peak_rss_mb": round(peak_rss, 1),
            "ms_per_image": {k: round(v, 1) for k, v in r["ms_per_image"].items()}}


STARTUP = ["-c", "import sys; from simdata.cli import main; sys.exit(main())", "render",
           "--scenes", "1", "--views", "1", "--objects", "6:6", "--no-progress"]


def measure_startup(tree: Path, meshes: str, cache: str, probe_gl: bool = False) -> dict:
    """Wall, user and system seconds of one `simdata render` start-up run in ``tree``
    (``probe_gl``: without $PYOPENGL_PLATFORM, so that it probes for the platform)."""
    import resource

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYOPENGL_PLATFORM": os.environ.get("PYOPENGL_PLATFORM", "egl"),
               "SIMDATA_CACHE": cache}
        if probe_gl:
            del env["PYOPENGL_PLATFORM"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run([sys.executable, *STARTUP, "--meshes", meshes, "--out", str(Path(tmp) / "out")],
                       cwd=tree, env=env, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall_s": round(wall, 3), "user_s": round(after.ru_utime - before.ru_utime, 3),
            "sys_s": round(after.ru_stime - before.ru_stime, 3)}


def round_order(trees: dict, r: int) -> list:
    """The checkouts in the order round ``r`` runs them: before first in even rounds, after
    first in odd ones. On the 2-core machine (2026-11-28) whichever ran second in a round made
    about 5 % fewer images/s, whatever its code; a fixed order put that on one side."""
    items = list(trees.items())
    return items if r % 2 == 0 else items[::-1]


def startup_ab(trees: dict, meshes: str, rounds: int, probe_gl: bool = False) -> tuple[list, dict]:
    """Alternated start-up runs of the checkouts (warm cache): the runs and their means."""
    runs = []
    with tempfile.TemporaryDirectory() as cache:
        for tree in trees.values():  # fill the cache (each checkout's keys) untimed
            measure_startup(tree, meshes, cache, probe_gl)
        for r in range(rounds):
            for name, tree in round_order(trees, r):
                m = measure_startup(tree, meshes, cache, probe_gl)
                runs.append({"round": r, "code": name, **m})
                print(f"round {r} {name:6s} start-up: {m['wall_s']:.2f} s (user {m['user_s']:.2f} s, "
                      f"system {m['sys_s']:.2f} s)", flush=True)
    mean = {name: {k: round(sum(x[k] for x in runs if x["code"] == name) / rounds, 3)
                   for k in ("wall_s", "user_s", "sys_s")} for name in trees}
    summary = {"before": mean["before"], "after": mean["after"],
               "ratio_wall": round(mean["after"]["wall_s"] / mean["before"]["wall_s"], 3)}
    print(f"start-up: {mean['before']['wall_s']:.2f} -> {mean['after']['wall_s']:.2f} s "
          f"({summary['ratio_wall']:.2f}x); system time {mean['before']['sys_s']:.2f} -> "
          f"{mean['after']['sys_s']:.2f} s")
    return runs, summary


def revision(tree: Path) -> str:
    """The checkout's commit, with "+changes" when its tracked files differ from it."""
    git = ["git", "-C", str(tree)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "diff", "--quiet", "HEAD"], capture_output=True).returncode
    return (head.stdout.strip() or "unknown") + ("+changes" if dirty else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", required=True, help="checkout of the code before the change")
    ap.add_argument("--after", default=str(REPO), help="checkout of the code after [this one]")
    shared = REPO.parent / "shared" / "ycb"
    ap.add_argument("--meshes", default=str(shared if shared.is_dir() else REPO / "assets" / "ycb"))
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--scenes", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--msaa", default="", help="--msaa of both [the OpenGL's own]")
    ap.add_argument("--startup", action="store_true",
                    help="time start-up (1 scene x 1 view, warm cache) instead of images/s")
    ap.add_argument("--probe-gl", action="store_true",
                    help="with --startup: run without $PYOPENGL_PLATFORM (simdata probes for it, "
                         "as on a machine where it is not set)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "render_ab_cpu.json"))
    args = ap.parse_args()
    if args.probe_gl and not args.startup:
        ap.error("--probe-gl times start-up: give --startup too")
    t0 = time.perf_counter()
    trees = {"before": Path(args.before).resolve(), "after": Path(args.after).resolve()}
    described = {k: {"path": str(v), "revision": revision(v)} for k, v in trees.items()}
    if args.startup:
        runs, summary = startup_ab(trees, args.meshes, args.rounds, args.probe_gl)
        save_results(args.out, {"benchmark": "render_ab --startup", "meshes": args.meshes,
                                "pyopengl_platform_set": not args.probe_gl,
                                "what": "simdata render of 1 scene x 1 view, 6 objects, warm cache: "
                                        "process start to exit",
                                "trees": described, "runs": runs, "summary": summary,
                                "date": time.strftime("%Y-%m-%d"), "cpu_count": os.cpu_count()}, t0)
        return
    runs = []
    for tree in trees.values():  # each checkout's mesh cache filled, untimed
        measure(tree, args.meshes, 1, 1, args.msaa)
    for r in range(args.rounds):
        for name, tree in round_order(trees, r):
            for w in args.workers:
                m = measure(tree, args.meshes, args.scenes, w, args.msaa)
                runs.append({"round": r, "code": name, "workers": w, **m})
                print(f"round {r} {name:6s} workers {w}: {m['images_per_s']:.2f} images/s, "
                      f"process {m['process_s']:.2f} s, peak PSS {m['peak_pss_mb']:.0f} MB "
                      f"(RSS {m['peak_rss_mb']:.0f}) {m['ms_per_image']}", flush=True)
    summary = {}
    for w in args.workers:
        mean, proc_s, pss = ({name: sum(x[key] for x in runs if x["code"] == name and x["workers"] == w)
                              / args.rounds for name in trees}
                             for key in ("images_per_s", "process_s", "peak_pss_mb"))
        summary[f"workers_{w}"] = {"before_images_per_s": round(mean["before"], 3),
                                   "after_images_per_s": round(mean["after"], 3),
                                   "ratio": round(mean["after"] / mean["before"], 3),
                                   "before_process_s": round(proc_s["before"], 3),
                                   "after_process_s": round(proc_s["after"], 3),
                                   "before_peak_pss_mb": round(pss["before"], 1),
                                   "after_peak_pss_mb": round(pss["after"], 1)}
        print(f"workers {w}: {mean['before']:.2f} -> {mean['after']:.2f} images/s "
              f"({mean['after'] / mean['before']:.2f}x); whole process {proc_s['before']:.2f} -> "
              f"{proc_s['after']:.2f} s; peak PSS {pss['before']:.0f} -> {pss['after']:.0f} MB")
    save_results(args.out, {"benchmark": "render_ab", "meshes": args.meshes,
                            "scenes": args.scenes, "views": 4, "msaa": args.msaa or None,
                            "trees": described,
                            "runs": runs,
                            "summary": summary, "date": time.strftime("%Y-%m-%d"),
                            "cpu_count": os.cpu_count()}, t0)


if __name__ == "__main__":
    main()
