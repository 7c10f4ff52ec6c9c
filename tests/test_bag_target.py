"""ROS bags as the target domain: ImageFolder, adapt's domains and `simdata import-bag`."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("rosbags", reason="the ros extra (pip install '.[ros]') is not installed")

from helpers import rgbd_frames, write_test_bag  # noqa: E402
from simdata import ImageFolder  # noqa: E402
from simdata.bags import BagTopics  # noqa: E402
from simdata.cli import main as simdata_main  # noqa: E402
from simdata.errors import SimdataError  # noqa: E402


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    frames = rgbd_frames(5)
    path = write_test_bag(tmp_path_factory.mktemp("bag") / "cam", frames, version=2, storage="sqlite3",
                          depth_delay_ns=4_000_000)
    return path, frames


def test_image_folder_reads_a_bag_like_a_folder(bag):
    path, frames = bag
    ds = ImageFolder(path)
    assert len(ds) == 5
    s = ds[3]
    assert s["rgb"].shape == (3, 48, 64) and s["has_depth"] and s["path"].endswith("frame_000003")
    assert torch.equal((s["rgb"] * 255).round().byte().permute(1, 2, 0), torch.from_numpy(frames[3].rgb))
    assert np.allclose(s["depth"][0].numpy(), frames[3].depth_m, atol=0.0005)  # metres
    assert np.allclose(s["K"].numpy(), frames[3].K)
    crop = ImageFolder(path, crop_size=32, crops="center")[0]
    assert crop["rgb"].shape == (3, 32, 32) and crop["K"][0, 2] == pytest.approx(31.5 - 16)
    batch = next(iter(torch.utils.data.DataLoader(ImageFolder(path, crop_size=32), batch_size=5)))
    assert batch["depth"].shape == (5, 1, 32, 32)
    colour_only = ImageFolder(path, topics=BagTopics(depth="none"))[0]
    assert not colour_only["has_depth"] and colour_only["depth"].abs().sum() == 0
    with pytest.raises(SimdataError, match="has no colour image topic"):
        ImageFolder(path, topics=BagTopics(colour="none"))


def test_a_bag_is_a_target_domain_of_every_task(bag):
    from adapt.config import TrainConfig
    from adapt.tasks import TASKS

    path, _ = bag
    cfg = TrainConfig(size=32, height=48, crop=32, channels="rgbd", bag_topics="tolerance_s=0.01")
    for name in ("pose", "segmentation", "grasp"):
        domain = TASKS[name]().open_domain(cfg, path, stream=1)
        x = domain.batch(0, 3)["x"]
        assert x.shape == (3, 4, 32, 32) and not domain.labelled
        assert (x[:, 3] != 1).any()  # depth read: not all "no reading"
    colour_only = TrainConfig(size=32, channels="rgbd", bag_topics="depth=none")
    assert not TASKS["pose"]().open_domain(colour_only, path, stream=1).ds[0]["has_depth"]
    with pytest.raises(SimdataError, match="bag topics 'colour'"):
        TASKS["pose"]().open_domain(TrainConfig(bag_topics="colour"), path, stream=1)


def test_import_bag_writes_the_folder_image_folder_reads(bag, tmp_path, capsys):
    path, frames = bag
    out = tmp_path / "frames"
    assert simdata_main(["import-bag", str(path), "--out", str(out), "--every", "2", "--no-progress"]) == 0
    assert "wrote 3 frames" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        "000000-color.png", "000000-depth.png", "000001-color.png", "000001-depth.png", "000002-color.png",
        "000002-depth.png", "frames.json", "meta.yml"]
    stamps = [f["stamp_ns"] for f in json.loads((out / "frames.json").read_text())["frames"]]
    assert stamps == [frames[i].stamp_ns for i in (0, 2, 4)]
    files, direct = ImageFolder(out)[1], ImageFolder(path)[2]
    assert torch.equal(files["rgb"], direct["rgb"]) and torch.allclose(files["depth"], direct["depth"], atol=1e-6)
    assert torch.allclose(files["K"], direct["K"])
    assert simdata_main(["import-bag", str(path), "--out", str(out), "--no-progress"]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert simdata_main(["import-bag", str(path), "--out", str(tmp_path / "x"), "--depth-topic", "/nope",
                         "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--depth-topic /nope" in err and not (tmp_path / "x").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


@pytest.mark.parametrize("where", ["under_a_file", "proc"])
def test_import_bag_to_an_unwritable_folder_fails_in_one_line(bag, tmp_path, capsys, where):
    path, _ = bag
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    out = tmp_path / "notes.txt" / "frames" if where == "under_a_file" else Path("/proc/simdata-nope/frames")
    assert simdata_main(["import-bag", str(path), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot write {out}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # nothing half-written
