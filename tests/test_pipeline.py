"""Reliability of `simdata render`: determinism, worker independence, resume, bad input."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import (ASSETS, TINY_ARGS, descendants, error_lines, file_hashes, run_cli,
                     running_cli, pool_workers, tiny, wait_until)
from simdata.errors import SimdataError
from simdata.info import dataset_info
from simdata.pipeline import render_dataset
from simdata.pools import usable_cores


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "ds"
    render_dataset(tiny(out), progress=False)
    return out


def test_same_seed_gives_identical_files_and_workers_do_not_matter(reference, tmp_path, monkeypatch):
    from simdata import pipeline

    render_dataset(tiny(tmp_path / "again", workers=2), progress=False)
    # one worker settles the first scene itself and the next ones in a second process from 4
    # scenes on (the reference's 4); the same scenes all settled in the rendering process
    monkeypatch.setattr(pipeline, "PHYSICS_AHEAD_MIN", 10**6)
    render_dataset(tiny(tmp_path / "here"), progress=False)
    a, b, c = (file_hashes(p) for p in (reference, tmp_path / "again", tmp_path / "here"))
    assert len(a) > 20 and a == b == c


def test_the_physics_process_gets_the_geometry_without_the_look():
    """The process that settles a one-worker run's scenes gets the models' vertices and faces
    (the very arrays) and none of their textures: a textured library is not held twice."""
    import pickle

    import numpy as np

    from simdata.assets import load_models
    from simdata.pipeline import layout_models

    models = load_models(ASSETS)
    light = layout_models(models)
    assert [m.mesh.visual.kind for m in models].count("texture") >= 5
    for m, g in zip(models, light):
        assert np.array_equal(g.mesh.vertices, m.mesh.vertices) and np.array_equal(g.mesh.faces, m.mesh.faces)
        assert g.mesh.visual.kind is None and g.vertex_colors is None and g.content_key == ""
        assert g.texture is None
        assert (g.obj_id, g.collision_path, g.mass_kg) == (m.obj_id, m.collision_path, m.mass_kg)
    # the models' textures travel as paths; their UVs, normals, hulls and colours stay behind
    assert sum(m.texture is not None for m in models) >= 5
    assert len(pickle.dumps(light)) < len(pickle.dumps(models)) / 4


def test_msaa_off_changes_only_the_rgb_edges_and_bad_counts_are_refused(reference, tmp_path):
    """--msaa 0 (no antialiasing, faster on a CPU): masks, poses and boxes as with pyrender's 4
    samples, depth within 0.1 mm, the RGB differs (object edges); the count rendered with is
    recorded; counts the OpenGL cannot give exactly are refused before anything is written."""
    import cv2
    import numpy as np

    from helpers import check_dataset_geometry

    out = tmp_path / "msaa0"
    render_dataset(tiny(out, msaa=0), progress=False)
    a, b = file_hashes(reference), file_hashes(out)
    assert a.keys() == b.keys()
    same = [k for k in a if "/mask" in k or k.endswith(("scene_gt.json", "scene_gt_info.json"))]
    assert len(same) > 10 and all(a[k] == b[k] for k in same)
    rgb = [k for k in a if "/rgb/" in k]
    assert rgb and any(a[k] != b[k] for k in rgb)
    for k in (k for k in a if "/depth/" in k):
        da, db = (cv2.imread(str(r / k), cv2.IMREAD_UNCHANGED).astype(int) for r in (reference, out))
        assert np.abs(da - db).max() <= 1  # 0.1 mm units
    assert check_dataset_geometry(out) >= 4
    assert json.loads((out / "simdata_settings.json").read_text())["config"]["msaa"] == 0
    assert json.loads((reference / "simdata_settings.json").read_text())["config"]["msaa"] == 4
    for bad in ("3", "64"):
        r = run_cli("render", "--meshes", ASSETS, "--out", tmp_path / f"bad{bad}", *TINY_ARGS,
                    "--msaa", bad)
        assert r.returncode == 2 and f"--msaa {bad}" in r.stderr and len(r.stderr.splitlines()) == 1
        assert not (tmp_path / f"bad{bad}").exists()
    # a count the OpenGL would round up (llvmpipe gives 4 for 2) is refused, not recorded as 2
    r = run_cli("render", "--meshes", ASSETS, "--out", tmp_path / "two", *TINY_ARGS, "--msaa", "2")
    if r.returncode:
        assert "--msaa 2: this OpenGL takes 0 (no antialiasing) or" in r.stderr
        assert " 2," not in r.stderr.split("or", 1)[1] and not (tmp_path / "two").exists()
    else:
        assert json.loads((tmp_path / "two" / "simdata_settings.json").read_text())["config"]["msaa"] == 2


def test_a_layout_made_elsewhere_renders_the_same_scene(reference, tmp_path):
    """render_scene(scene=...) (settled in another process or machine, e.g. a GPU box without
    pybullet) writes what the whole pipeline wrote."""
    import pickle

    from simdata.assets import load_models, models_fingerprint
    from simdata.pipeline import prepare_output
    from simdata.render import SceneRenderer
    from simdata.scene import layout_scene, render_scene
    from simdata.writers import make_writers, open_scene

    cfg = tiny(tmp_path / "replayed", scenes=1)
    models = load_models(cfg.meshes, cfg.units)
    layout = pickle.loads(pickle.dumps(layout_scene(models, cfg, 0)))  # as it travels
    prepare_output(cfg, models, models_fingerprint(cfg.meshes), make_writers(cfg))
    with SceneRenderer(models, cfg.scene.intrinsics) as renderer:
        stats = render_scene(models, cfg, renderer, 0, open_scene(make_writers(cfg), 0), scene=layout)
    assert stats["images"] == cfg.scene.views
    ref_hashes = file_hashes(reference)
    ref = {k: v for k, v in ref_hashes.items() if k.startswith("train_pbr/000000/")}
    got = file_hashes(tmp_path / "replayed")
    assert len(ref) > 5 and all(got.get(k) == v for k, v in ref.items())
    # the layout given is the one used: scene 1's, written as scene 0, has scene 1's poses
    other = tmp_path / "other"
    cfg = tiny(other, scenes=1)
    prepare_output(cfg, models, models_fingerprint(cfg.meshes), make_writers(cfg))
    with SceneRenderer(models, cfg.scene.intrinsics) as renderer:
        render_scene(models, cfg, renderer, 0, open_scene(make_writers(cfg), 0),
                     scene=layout_scene(models, cfg, 1))
    gt = file_hashes(other)["train_pbr/000000/scene_gt.json"]
    assert gt == ref_hashes["train_pbr/000001/scene_gt.json"] != ref["train_pbr/000000/scene_gt.json"]


def test_other_seed_gives_other_data(reference, tmp_path):
    render_dataset(tiny(tmp_path / "other", seed=12, scenes=1), progress=False)
    a, b = file_hashes(reference), file_hashes(tmp_path / "other")
    assert a["train_pbr/000000/scene_gt.json"] != b["train_pbr/000000/scene_gt.json"]


def test_killed_run_resumes_to_the_same_dataset(reference, tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "simdata.cli", "render", "--meshes", ASSETS,
                             "--out", out, *TINY_ARGS], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not (out / "train_pbr" / "000000").is_dir() and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = sorted(p.name for p in (out / "train_pbr").iterdir() if not p.name.startswith("."))
    assert 1 <= len(finished) < 4, finished  # killed mid-run
    for name in finished:  # what is there under a final name is complete
        assert (out / "train_pbr" / name / "scene_gt_info.json").is_file()
    r = run_cli("render", "--meshes", ASSETS, "--out", out, *TINY_ARGS)
    assert r.returncode == 0, r.stderr
    assert f"skipped {len(finished)} finished scenes" in r.stdout
    assert not list((out / "train_pbr").glob(".tmp-*"))
    assert file_hashes(out) == file_hashes(reference)
    assert dataset_info(out)["problems"] == []


TWELVE_SCENES = ["--scenes", "12", *TINY_ARGS[2:]]  # TINY_ARGS' first 4 scenes and 8 more
assert TINY_ARGS[:2] == ["--scenes", "4"]


def _resumes_to_the_reference(out, args, reference) -> None:
    """A rerun of a stopped run finishes it, and its scenes 0-3 are the reference's."""
    finished = [p for p in (out / "train_pbr").iterdir() if not p.name.startswith(".")]
    assert 1 <= len(finished) < 12, finished  # stopped mid-run
    r = run_cli("render", "--meshes", ASSETS, "--out", out, *args)
    assert r.returncode == 0, r.stderr
    assert f"skipped {len(finished)} finished scenes" in r.stdout
    assert not list((out / "train_pbr").glob(".tmp-*"))
    a, b = file_hashes(out), file_hashes(reference)
    assert all(a[k] == b[k] for k in b if k.startswith("train_pbr/"))
    assert dataset_info(out)["problems"] == []


@pytest.mark.skipif(not Path("/proc").is_dir() or usable_cores() < 2,
                    reason="needs /proc and two cores (one core settles in the rendering process)")
@pytest.mark.parametrize("workers, who", [("1", "physics died"), ("2", "rendering worker process died")])
def test_a_killed_worker_process_stops_the_run_in_one_line_and_a_rerun_resumes(reference, tmp_path,
                                                                               workers, who):
    """A worker process that dies (killed, out of memory) stops the run with one line instead
    of leaving it waiting for ever; finished scenes are kept and a rerun resumes. One worker
    settles its next scenes in a second process; two render in two."""
    out = tmp_path / "killed"
    args = [*TWELVE_SCENES, "--workers", workers]
    with running_cli("render", "--meshes", ASSETS, "--out", out, *args) as proc:
        wait_until((out / "train_pbr" / "000000").is_dir)
        wait_until(lambda: len(pool_workers(proc.pid)) == int(workers), timeout=120)
        os.kill(pool_workers(proc.pid)[0], signal.SIGKILL)
        lines = error_lines(proc.communicate(timeout=120)[1])  # a Pool's result would wait for ever
    assert proc.returncode == 2 and len(lines) == 1, lines
    assert who in lines[0] and "rerun the command to resume" in lines[0]
    _resumes_to_the_reference(out, args, reference)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
@pytest.mark.parametrize("workers", ["1", "2"])
def test_ctrl_c_stops_every_process_in_one_line_and_a_rerun_resumes(reference, tmp_path, workers):
    """Ctrl-C (SIGINT to the whole process group) stops the run and its worker processes:
    exit code 130, one line (no worker's traceback), nothing left running; a rerun resumes."""
    out = tmp_path / "interrupted"
    args = [*TWELVE_SCENES, "--workers", workers]
    with running_cli("render", "--meshes", ASSETS, "--out", out, *args) as proc:
        wait_until((out / "train_pbr" / "000000").is_dir)
        # one worker has a process settling its scenes where it has a second core
        expected = 0 if workers == "1" and usable_cores() < 2 else int(workers)
        wait_until(lambda: len(pool_workers(proc.pid)) == expected, timeout=120)
        kids = descendants(proc.pid)  # the fork server and the workers forked from it too
        os.killpg(proc.pid, signal.SIGINT)
        lines = error_lines(proc.communicate(timeout=120)[1])
    assert proc.returncode == 130 and lines == [
        "simdata: interrupted; rerun the same command to resume"], lines
    time.sleep(0.5)
    assert not [pid for pid in kids if Path(f"/proc/{pid}").exists()
                and "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]]
    _resumes_to_the_reference(out, args, reference)


def test_more_scenes_extend_and_other_settings_are_refused(reference, tmp_path):
    import shutil

    out = tmp_path / "grow"
    shutil.copytree(reference, out)
    summary = render_dataset(tiny(out, scenes=5), progress=False)
    assert (summary.scenes_skipped, summary.scenes_done) == (4, 1)
    with pytest.raises(SimdataError, match=r"other settings \(config\.scene\.views: 1 -> 2"):
        render_dataset(tiny(out, views=2), progress=False)


@pytest.mark.parametrize("args, message", [
    (["--objects", "8:3"], "--objects 8:3 is empty"),
    (["--objects", "three"], "cannot read range 'three'"),
    (["--views", "0"], "--views 0 must be at least 1"),
    (["--workers", "0"], "--workers 0 must be at least 1"),
    (["--distance", "2:1"], "--distance 2.0:1.0 is empty"),
    (["--extras", "normals,thermal"], "unknown --extras ['thermal']"),
    (["--table-textures", "marble"], "--table-textures marble: choose from"),
    (["--randomize", "glitter"], "unknown --randomize ['glitter']"),
    (["--randomize", "distractors", "--distractors", "4:1"], "--distractors 4:1 is empty"),
    (["--randomize", "backgrounds", "--background-dir", "/nonexistent"], "holds no images"),
    (["--mode", "crops", "--count", "0"], "--count 0 must be at least 1"),
    (["--ambient", "0.5:2"], "--ambient 0.5:2.0 is outside [0.0, 1.0]"),
    (["--format", "bop,yolo"], "unknown --format yolo"),
    (["--format", "coco"], "--format coco needs bop beside it"),
    (["--max-texture", "-1"], "--max-texture -1 must be 0"),
    (["--ray", "127.0.0.1:1"], "nothing answers at 127.0.0.1:1"),
])
def test_bad_cli_values_give_one_clear_line(tmp_path, args, message):
    r = run_cli("render", "--meshes", ASSETS, "--out", tmp_path / "x", *args)
    assert r.returncode == 2
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()  # nothing written


def test_bad_meshes_give_one_clear_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run_cli("render", "--meshes", empty, "--out", tmp_path / "o1")
    assert r.returncode == 2 and "no meshes found in" in r.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "junk.obj").write_text("v nan nan nan\nf 1 1 1\n")
    r = run_cli("render", "--meshes", bad, "--out", tmp_path / "o2")
    assert r.returncode == 2 and "junk.obj" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_unwritable_output_is_refused(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    r = run_cli("render", "--meshes", ASSETS, "--out", blocker / "out", *TINY_ARGS)
    assert r.returncode == 2 and "cannot write" in r.stderr and str(blocker) in r.stderr
    r = run_cli("render", "--meshes", ASSETS, "--out", blocker, *TINY_ARGS)
    assert r.returncode == 2 and "is a file" in r.stderr


def test_foreign_folder_is_not_overwritten(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    r = run_cli("render", "--meshes", ASSETS, "--out", tmp_path / "mine", *TINY_ARGS)
    assert r.returncode == 2 and "not empty" in r.stderr
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


@pytest.mark.parametrize("cmd", [[], ["render"], ["crops"], ["info"], ["preview"], ["assets"],
                                 ["assets", "list"], ["assets", "download"], ["import-bag"], ["view"]])
def test_every_command_has_help(cmd):
    r = run_cli(*cmd, "--help")
    assert r.returncode == 0 and "usage: simdata" in r.stdout


def test_info_reports_and_detects_damage(reference, tmp_path):
    import shutil

    r = run_cli("info", reference)
    assert r.returncode == 0 and "valid" in r.stdout and "002_master_chef_can" in r.stdout
    broken = tmp_path / "broken"
    shutil.copytree(reference, broken)
    next((broken / "train_pbr" / "000000" / "mask_visib").glob("*.png")).unlink()
    r = run_cli("info", broken)
    assert r.returncode == 1 and "INVALID" in r.stdout and "missing" in r.stdout


def test_preview_writes_a_contact_sheet(reference, tmp_path):
    import cv2

    r = run_cli("preview", reference, "--out", tmp_path / "p.png", "--rows", "3",
                "--tile-width", "160")
    assert r.returncode == 0, r.stderr
    img = cv2.imread(str(tmp_path / "p.png"))
    assert img.shape == (3 * 120, 4 * 160, 3)  # rgb | depth | masks | normals
    assert img.std() > 10


def test_osmesa_fallback_renders_the_same_geometry(tmp_path):
    from helpers import check_dataset_geometry

    out = tmp_path / "osmesa"
    env = dict(os.environ, PYOPENGL_PLATFORM="osmesa")
    r = run_cli("render", "--meshes", ASSETS, "--out", out, *TINY_ARGS[:-1], "--scenes", "1",
                "--width", "320", "--height", "240", env=env)
    assert r.returncode == 0, r.stderr
    assert "GL osmesa" in r.stdout
    assert check_dataset_geometry(out) >= 1
    # OSMesa cannot antialias: the dataset says so, and asking for samples is refused
    assert json.loads((out / "simdata_settings.json").read_text())["config"]["msaa"] == 0
    r = run_cli("render", "--meshes", ASSETS, "--out", tmp_path / "aa", *TINY_ARGS, "--msaa", "4",
                env=env)
    assert r.returncode == 2 and "OSMesa renders without antialiasing" in r.stderr
    assert not (tmp_path / "aa").exists()


def test_gl_platform_is_probed_when_unset():
    code = ("import os; os.environ.pop('PYOPENGL_PLATFORM', None);"
            "from simdata.render import choose_gl_platform; print(choose_gl_platform())")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() in ("egl", "osmesa")


def test_the_egl_probe_takes_this_machines_egl_and_refuses_a_device_it_does_not_have():
    """EGL's probe (the context pyrender's EGL platform makes, with PyOpenGL alone) succeeds
    where pyrender renders with EGL, as every test here does, and fails for a device index
    beyond the machine's, as pyrender would."""
    from simdata.render import _EGL_PROBE

    env = dict(os.environ, PYOPENGL_PLATFORM="egl")
    run = lambda **more: subprocess.run([sys.executable, "-c", _EGL_PROBE], env={**env, **more},  # noqa: E731
                                        capture_output=True, text=True, timeout=120)
    assert run().returncode == 0
    bad = run(EGL_DEVICE_ID="99")
    assert bad.returncode != 0 and "no such EGL device" in bad.stderr


def test_full_disk_and_permission_errors_name_the_file_and_the_fix(tmp_path):
    import errno

    from simdata.fileio import disk_error

    full = disk_error(tmp_path / "x.png", OSError(errno.ENOSPC, "No space left on device"))
    assert "disk full while writing" in str(full) and "x.png" in str(full) and "resumes" in str(full)
    ro = disk_error(tmp_path / "x.png", OSError(errno.EROFS, "Read-only file system"))
    assert "choose a writable --out" in str(ro)
