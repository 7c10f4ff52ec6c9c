"""Training on several processes (adapt.distributed): `adapt train --nproc 2` on the CPU (gloo),
interrupted and resumed, against one process with the same global batch. GG-CNN2 has no batch
norm, dropout or noise, so the two runs differ by float rounding only (measured 5e-8)."""
import json
import subprocess
import sys

import pytest
import torch

from helpers import small_config
from simdata.grasping.labels import GraspLabelConfig, label_dataset
from simdata.pipeline import render_dataset
from simdata.types import PRIMESENSE

ARGS = {"task": "grasp", "channels": "height", "height": 64, "crop": 32, "batch": 4, "log_every": 1,
        "ckpt_every": 2, "sample_every": 2, "device": "cpu"}
TOL = 1e-6  # max |weight difference|; float rounding of the averaged gradients gives ~5e-8


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "scenes"
    render_dataset(small_config(out, intrinsics=PRIMESENSE.resized(160, 120), scenes=1, views=2),
                   progress=False)
    label_dataset(out, GraspLabelConfig(candidates=4), progress=False)
    return out


def train_cli(scenes, out, steps, *extra):
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in ARGS.items()]
    return subprocess.run([sys.executable, "-m", "adapt", "train", "grasp-source-only", "--source",
                           str(scenes), "--out", str(out), "--steps", str(steps), "--task-width=8",
                           "--no-progress", *flags, *map(str, extra)], capture_output=True, text=True, timeout=300)


def test_two_processes_resumed_give_the_weights_of_one(scenes, tmp_path):
    from adapt.config import TrainConfig
    from adapt.methods import METHODS
    from adapt.trainer import Trainer

    cfg = TrainConfig(method="grasp-source-only", source=str(scenes), out=str(tmp_path / "one"),
                      steps=4, **ARGS)
    Trainer(cfg, METHODS[cfg.method].Config(task_width=8)).fit(progress=False)
    two = tmp_path / "two"
    r = train_cli(scenes, two, 2, "--nproc", 2)
    assert r.returncode == 0 and "to step 2" in r.stdout, r.stderr
    r = train_cli(scenes, two, 4, "--nproc", 2, "--resume")
    assert r.returncode == 0 and r.stdout.count("to step 4") == 1, r.stderr  # rank 0 reports
    a = torch.load(tmp_path / "one/checkpoints/last.pt", weights_only=False)
    b = torch.load(two / "checkpoints/last.pt", weights_only=False)
    assert a["step"] == b["step"] == 4 and b["config"]["world_size"] == 2 and len(b["ranks"]) == 2
    for k, v in a["method"]["nets"]["task"].items():
        assert (v - b["method"]["nets"]["task"][k]).abs().max() < TOL, k
    # one metrics line per step (rank 0 writes), the loss of the global batch
    one, two_lines = ([json.loads(x) for x in (p / "metrics.jsonl").read_text().splitlines()]
                      for p in (tmp_path / "one", two))
    assert [x["step"] for x in two_lines] == [1, 2, 3, 4]
    for x, y in zip(one, two_lines):
        assert abs(x["loss_task"] - y["loss_task"]) <= 2e-6 * x["loss_task"] + 1e-6
    assert sorted(p.name for p in (two / "samples").iterdir()) == ["step_0000002.png", "step_0000004.png"]
    # resuming with another number of processes changes the shares: refused
    r = train_cli(scenes, two, 6, "--resume")
    assert r.returncode == 2 and "--nproc 2 -> 1" in r.stderr, r.stderr


def test_the_global_batch_is_split_evenly():
    from adapt.distributed import Ranks
    from simdata.errors import SimdataError

    assert [Ranks(r, 3).share(12) for r in range(3)] == [slice(0, 4), slice(4, 8), slice(8, 12)]
    assert Ranks().share(12) is None
    with pytest.raises(SimdataError, match="--batch 10 is the global batch, split over 4"):
        Ranks(0, 4).share(10)


def test_an_error_only_another_rank_met_is_said_once_with_its_rank(tmp_path, monkeypatch, capsys):
    from adapt.distributed import ERRORS_ENV, _errors_of_other_ranks, report_error

    monkeypatch.setenv(ERRORS_ENV, str(tmp_path))
    for rank, message in ((0, "adapt: error: same"), (1, "adapt: error: same"),
                          (2, "adapt: error: bad frame 7")):
        monkeypatch.setenv("RANK", str(rank))
        report_error(message)
    assert capsys.readouterr().err.splitlines() == ["adapt: error: same"]  # rank 0 only
    assert _errors_of_other_ranks(str(tmp_path)) == ["adapt: error: bad frame 7 (rank 2)"]
    monkeypatch.delenv(ERRORS_ENV)  # a bare torchrun: the rank says it itself
    report_error("adapt: error: bad frame 9")
    assert capsys.readouterr().err.strip() == "adapt: error: bad frame 9 (rank 2)"
