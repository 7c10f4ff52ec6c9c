"""Segmentation inputs a robot has (rgb, rgbd, depth) and the object / not-object label set."""
import json

import numpy as np
import pytest
import torch

from helpers import small_config
from simdata.pipeline import render_dataset
from simdata.types import PRIMESENSE


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seg_inputs")
    render_dataset(small_config(tmp / "syn", intrinsics=PRIMESENSE.resized(160, 120), scenes=1, views=2,
                                sensor="primesense"), progress=False)
    return tmp / "syn"


def test_depth_normalisation_ignores_moving_the_camera_along_its_axis():
    from adapt.data import normalise_depth, to_input

    g = torch.Generator().manual_seed(0)
    d = 0.6 + 0.2 * torch.rand(2, 1, 16, 16, generator=g)
    d[:, :, :3, :3] = 0  # no reading
    for shift in (0.25, -0.3):
        moved = torch.where(d > 0, d + shift, d)
        assert torch.allclose(normalise_depth(moved), normalise_depth(d), atol=1e-6)
    n = normalise_depth(d)
    assert (n[:, :, :3, :3] == 1).all() and n.abs().max() <= 1  # holes read as far
    rgb = torch.rand(2, 3, 16, 16, generator=g)
    assert to_input(rgb, d, "rgbd").shape == (2, 4, 16, 16)
    assert torch.equal(to_input(rgb, d, "depth"), n)


def test_objectness_labels_of_a_rendered_scene_match_its_masks(scenes):
    from adapt.scenes import SceneDomain
    from simdata import BopDataset

    d = SceneDomain(scenes, 120, 64, stream=1, seed=0, objectness=True, channels="rgbd")
    assert d.names == ["not object", "object"]
    s = d.sample(0, None)
    raw = BopDataset(scenes, load_full_masks=False)[0]
    objects = raw["masks_visib"].any(0)
    assert s["x"].shape[0] == 4
    assert (s["label"][objects] == 1).all()
    assert ((s["label"] == 1) == objects).all()  # everything else, table and empty space, is 0


def test_rgbd_segmentation_trains_exports_with_parity_and_refuses_spigan(scenes, tmp_path):
    from adapt.config import TrainConfig
    from adapt.export import export_run
    from adapt.methods import METHODS
    from adapt.tasks.segmentation import SegmentationConfig
    from adapt.trainer import Trainer
    from simdata.errors import SimdataError

    cfg = TrainConfig(method="seg-source-only", source=str(scenes), out=str(tmp_path / "run"), steps=2,
                      batch=2, height=64, crop=64, channels="rgbd", log_every=1, ckpt_every=2)
    Trainer(cfg, METHODS["seg-source-only"].Config(task_width=8),
            task_cfg=SegmentationConfig(objectness=True)).fit(progress=False)
    meta = export_run(tmp_path / "run", "task", "onnx", tmp_path / "seg.onnx")
    assert meta["parity_max_abs_error"] < 1e-4 and meta["input"]["channels"] == "rgbd"
    assert "median" in meta["input"]["normalisation"] and meta["classes"] == ["not object", "object"]
    spigan = TrainConfig(method="spigan", source=str(scenes), target=str(scenes), out=str(tmp_path / "s"),
                         height=64, crop=64, channels="rgbd")
    with pytest.raises(SimdataError, match="spigan adapts rgb"):
        Trainer(spigan, METHODS["spigan"].Config(vgg_weights="random"))


def test_a_labelled_real_folder_with_depth_scores_and_predicts(tmp_path):
    """tabletop_dev: real PrimeSense frames with depth and object masks."""
    from conftest import SHARED

    from adapt.config import TrainConfig
    from adapt.evaluate import evaluate_segmentation
    from adapt.predict import predict_segmentation_folder
    from adapt.scenes import SceneDomain
    from adapt.tasks import DataSpec, SegmentationTask
    from adapt.tasks.segmentation import SegmentationConfig

    real = SHARED / "real" / "tabletop_dev"
    if not real.is_dir():
        pytest.skip(f"{real} is absent (real frames live in ../shared)")
    d = SceneDomain(real, 120, 64, stream=99, seed=0, channels="rgbd", objectness=True)
    assert d.labelled and len(d) == 10
    s = d.sample(0, None)
    assert s["x"].shape[0] == 4 and set(s["label"].unique().tolist()) <= {0, 1}
    assert 0 < (s["label"] == 1).float().mean() < 0.5  # one object on a table
    task = SegmentationTask(SegmentationConfig(objectness=True))
    torch.manual_seed(0)
    net = task.build_net(DataSpec(4, 64, d.names), width=8).eval()
    res = evaluate_segmentation(net, d, "cpu")
    assert set(res["per_class_iou"]) == {"not object", "object"} and len(res["per_image_iou"]) == 10

    class Run:
        task_net, data, device = net, DataSpec(4, 64, d.names), "cpu"
    conf = {"train": TrainConfig(height=120).__dict__, "data": {"channels": "rgbd"}}
    assert predict_segmentation_folder(Run, conf, real, tmp_path) == 10
    labels = json.loads((real / "classes.json").read_text())
    assert labels and (tmp_path / "frame_00_color.png").exists() and (tmp_path / "frame_00_labels.png").exists()
