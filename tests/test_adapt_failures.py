"""adapt's failure modes: bad input to `adapt` gets one line and exit status 2 (run in-process
through adapt.cli.main), a damaged checkpoint is named, never replaced by a bad one, and a run
whose loss stops being finite ends at once, keeping the last good checkpoint."""
import contextlib
import io
import json
import shutil

import pytest
import torch

from helpers import ASSETS
from simdata.crop_render import render_crops
from simdata.pipeline import RenderConfig

TRAIN = ["train", "source-only", "--size", "32", "--batch", "4", "--task-width", "8",
         "--log-every", "1", "--ckpt-every", "1", "--sample-every", "100", "--no-progress",
         "--device", "cpu"]


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    out = tmp_path_factory.mktemp("failures") / "crops"
    render_crops(RenderConfig(meshes=str(ASSETS), out=str(out), seed=0), 12, 32, progress=False)
    return out


@pytest.fixture(scope="module")
def trained(crops, tmp_path_factory):
    """A finished two-step run; tests copy it before they change it."""
    run = tmp_path_factory.mktemp("failures") / "run"
    assert adapt(*TRAIN, "--source", crops, "--out", run, "--steps", 2)[0] == 0
    return run


def adapt(*args):
    """(exit status, stderr lines) of `adapt ARGS`, run in this process."""
    from adapt.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main([str(a) for a in args])
    return rc, err.getvalue().strip().splitlines()


def refused(message, *args):
    rc, lines = adapt(*args)
    assert rc == 2 and len(lines) == 1 and message in lines[0], lines


def copy(run, tmp_path):
    return shutil.copytree(run, tmp_path / "run")


def test_a_damaged_checkpoint_is_named_on_eval_export_and_resume(crops, trained, tmp_path):
    run = copy(trained, tmp_path)
    ckpt = run / "checkpoints/last.pt"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])  # as a full disk leaves it
    refused("last.pt is not a readable checkpoint", "eval", run, "--data", crops)
    refused("last.pt is not a readable checkpoint", "export", run, "--out", tmp_path / "x.onnx")
    refused("last.pt is not a readable checkpoint", *TRAIN, "--source", crops, "--out", run,
            "--steps", 3, "--resume")
    torch.save({"weights": 1}, ckpt)  # readable, but not a checkpoint
    refused("is not an adapt checkpoint", "eval", run, "--data", crops)


def test_export_to_a_path_that_cannot_be_written(trained, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    refused("cannot write", "export", trained, "--out", blocker / "net.onnx")
    refused("is a folder", "export", trained, "--out", tmp_path)
    assert not list(trained.glob(".*tmp*")) and not list(tmp_path.glob(".*tmp*"))


@pytest.mark.parametrize("option, value, message", [
    ("--lr", "nan", "--lr nan: must be a finite number"),
    ("--lr", "inf", "--lr inf: must be a finite number"),
    ("--lr", "-0.1", "--lr -0.1: must be a finite number, 0 or more"),
    ("--lr", "0", "--lr 0: a learning rate must be above 0"),
    ("--clip", "nan", "--clip nan"),
    ("--seed", "-1", "--seed -1"),
    ("--rot-weight", "inf", "--rot-weight inf"),  # a task option
])
def test_numbers_no_run_can_use_are_refused(crops, tmp_path, option, value, message):
    refused(message, *TRAIN, "--source", crops, "--out", tmp_path / "run", "--steps", 1, option, value)
    assert not (tmp_path / "run").exists()


def test_out_naming_an_existing_file(crops, tmp_path):
    (tmp_path / "taken").write_text("not a run")
    refused("is a file", *TRAIN, "--source", crops, "--out", tmp_path / "taken", "--steps", 1)
    assert (tmp_path / "taken").read_text() == "not a run"


def test_resume_without_a_checkpoint_says_it_starts_a_new_run(crops, tmp_path, caplog):
    rc, _ = adapt(*TRAIN, "--source", crops, "--out", tmp_path / "new", "--steps", 1, "--resume")
    assert rc == 0 and (tmp_path / "new/checkpoints/last.pt").exists()
    assert "holds no checkpoint" in caplog.text and "starting a new run" in caplog.text


def test_resume_after_a_kill_that_cut_the_metrics_log_short(crops, trained, tmp_path):
    run = copy(trained, tmp_path)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 3, "loss')  # the append a kill interrupted
    rc, _ = adapt(*TRAIN, "--source", crops, "--out", run, "--steps", 3, "--resume")
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert rc == 0 and [json.loads(line)["step"] for line in lines] == [1, 2, 3]


def test_resume_with_changed_settings(crops, trained, tmp_path, caplog):
    run = copy(trained, tmp_path)
    before = (run / "checkpoints/last.pt").read_bytes()
    refused("--batch 4 -> 8", *TRAIN, "--source", crops, "--out", run, "--steps", 3, "--resume",
            "--batch", 8)
    refused("--seed 0 -> 1", *TRAIN, "--source", crops, "--out", run, "--steps", 3, "--resume",
            "--seed", 1)
    refused("--rot-weight 1.0 -> 2.0", *TRAIN, "--source", crops, "--out", run, "--steps", 3,
            "--resume", "--rot-weight", 2)
    refused("is at step 2 already", *TRAIN, "--source", crops, "--out", run, "--steps", 1, "--resume")
    assert (run / "checkpoints/last.pt").read_bytes() == before  # nothing ran
    # a longer run and other logging: said, and accepted
    rc, _ = adapt(*TRAIN, "--source", crops, "--out", run, "--steps", 3, "--resume", "--log-every", 3)
    assert rc == 0 and torch.load(run / "checkpoints/last.pt", weights_only=False)["step"] == 3
    assert "--steps 2 -> 3" in caplog.text and "--log-every 1 -> 3" in caplog.text
    # forced: the run goes on with the new batch
    rc, _ = adapt(*TRAIN, "--source", crops, "--out", run, "--steps", 4, "--batch", 8, "--force-resume")
    state = torch.load(run / "checkpoints/last.pt", weights_only=False)
    assert rc == 0 and state["step"] == 4 and state["config"]["train"]["batch"] == 8
    assert "(forced)" in caplog.text


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(crops, tmp_path):
    run = tmp_path / "run"
    # Adam's first step moves every weight by about the lr: step 2's activations overflow
    refused("the loss became NaN or infinite at step 2", *TRAIN, "--source", crops, "--out", run,
            "--steps", 4, "--lr", "1e30")
    state = torch.load(run / "checkpoints/last.pt", weights_only=False)
    assert state["step"] == 1
    assert all(t.isfinite().all() for t in state["method"]["nets"]["task"].values() if t.is_floating_point())
    logged = (run / "metrics.jsonl").read_text()
    assert '"step": 1' in logged and '"step": 2' not in logged  # nothing of step 2 was logged


def test_a_failed_save_leaves_the_previous_checkpoint(tmp_path):
    from adapt.trainer import load_checkpoint, save_atomic

    path = tmp_path / "checkpoints/last.pt"
    save_atomic({"step": 1, "method": {}, "config": {}}, path)
    with pytest.raises(Exception):
        save_atomic({"step": 2, "method": lambda: None, "config": {}}, path)  # cannot be pickled
    assert load_checkpoint(path, "cpu")["step"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary left
