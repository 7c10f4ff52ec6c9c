"""`simdata render --ray`: scenes as Ray tasks give the files of a local run, a failing scene is
named, a rerun resumes, the progress bar follows finished tasks. One local Ray with 2 CPUs
serves the module (in-process runs reuse it; CLI runs connect to its address)."""
import logging
import shutil

import pytest

from helpers import ASSETS, TINY_ARGS, file_hashes, run_cli, run_cli_without, tiny
from simdata.pipeline import render_dataset

ray = pytest.importorskip("ray")
FORMATS = ("bop", "coco")


@pytest.fixture(scope="module")
def ray_address():
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The local run (one process) that Ray runs must equal."""
    out = tmp_path_factory.mktemp("ref") / "ds"
    render_dataset(tiny(out, formats=FORMATS), progress=False)
    return out


def test_ray_tasks_write_the_local_runs_files(ray_address, reference, tmp_path):
    summary = render_dataset(tiny(tmp_path / "ray", formats=FORMATS, ray="auto"), progress=False)
    assert (summary.scenes_done, summary.images) == (4, 4)
    assert "Ray" in summary.platform
    assert file_hashes(tmp_path / "ray") == file_hashes(reference)


def test_failing_scene_is_named_and_a_rerun_resumes(ray_address, reference, tmp_path):
    out = tmp_path / "partial"
    shutil.copytree(reference, out)
    for scene in ("000002", "000003"):
        shutil.rmtree(out / "train_pbr" / scene)
    (out / "train_pbr" / ".tmp-000003-deadnode-42").mkdir()  # left by a task on a dead node
    (out / "train_pbr" / "000002").write_text("in the way")  # scene 2 cannot be committed
    # --out relative to the driver's folder: tasks must get it as an absolute path
    args = ["render", "--meshes", ASSETS, "--out", "partial", *TINY_ARGS[:-1],
            "--format", "bop,coco", "--ray", ray_address]
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("simdata: error: scene 2: cannot write") and "000002" in last, last
    for scene in (out / "train_pbr").glob("[0-9]*"):  # what is under a final name is complete
        assert scene.is_file() or (scene / "scene_gt_info.json").is_file()

    (out / "train_pbr" / "000002").unlink()
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "skipped 2 finished scenes" in r.stdout or "skipped 3 finished scenes" in r.stdout
    assert "render: 100%" in r.stderr  # the bar, fed by finished tasks
    assert file_hashes(out) == file_hashes(reference)


def test_missing_ray_names_the_extra_and_writes_nothing(tmp_path):
    r = run_cli_without("ray", "render", "--meshes", ASSETS, "--out", tmp_path / "x", *TINY_ARGS,
                        "--ray")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "pip install 'simdata-adapt[cluster]'" in r.stderr
    assert not (tmp_path / "x").exists()


def test_a_task_that_cannot_see_out_says_so(tmp_path):
    from simdata.pipeline import render_one_scene

    # a node without the shared storage: --out (with its settings file) is not there
    result = render_one_scene([], tiny(tmp_path / "not_mounted"), 3, renderer=None)
    assert result["scene"] == 3 and "is not visible on" in result["error"]
    assert "every node mounts" in result["error"]


def test_relative_image_folders_give_the_local_runs_records(ray_address, tmp_path, monkeypatch):
    """Scenes record the texture and background images they used: with folders given relative
    to the driver's directory, Ray tasks (absolute paths) and a local run write the same."""
    import cv2
    import numpy as np

    from simdata.randomize import RandomizationConfig

    monkeypatch.chdir(tmp_path)
    for folder in ("tex", "bg"):
        (tmp_path / folder).mkdir()
        for k in range(3):
            cv2.imwrite(str(tmp_path / folder / f"{k}.png"),
                        np.full((32, 32, 3), 60 * k + 20, np.uint8))
    dr = RandomizationConfig(materials=True, material_prob=1.0, material_kinds=("image",),
                             texture_dir="tex", backgrounds=True, background_dir="bg")
    render_dataset(tiny("local", randomize=dr), progress=False)
    render_dataset(tiny("ray", randomize=dr, ray="auto"), progress=False)
    records = (tmp_path / "local").rglob("scene_simdata.json")
    assert any("tex/" in r.read_text() and "bg/" in r.read_text() for r in records)
    assert file_hashes(tmp_path / "ray") == file_hashes(tmp_path / "local")
