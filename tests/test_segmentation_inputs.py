"""Segmentation inputs a robot has (rgb, rgbd, depth) and the object / not-object label set."""
import json
import shutil
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from helpers import small_config
from simdata.pipeline import render_dataset
from simdata.randomize import RandomizationConfig
from simdata.types import PRIMESENSE


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seg_inputs")
    render_dataset(small_config(tmp / "syn", intrinsics=PRIMESENSE.resized(160, 120), scenes=1, views=2,
                                sensor="primesense",
                                randomize=RandomizationConfig(distractors=(2, 3), clutter=(4, 4))),
                   progress=False)
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


def _tilted_table_with_box(distance=0.7, K=((200.0, 0, 63.5), (0, 200.0, 47.5), (0, 0, 1)), h=96, w=128):
    """Depth (1,1,H,W) metres of a camera ``distance`` m (along its axis) from a table tilted
    30 deg about the camera's x axis, with a 5 cm box on it (its top 5 cm above the table)."""
    K = np.array(K)
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    n = np.array([0.0, -np.sin(np.radians(30)), -np.cos(np.radians(30))])  # normal towards the camera
    p0 = np.array([0.0, 0.0, distance])
    depth = (p0 @ n) / (rays @ n)  # ray-plane intersection, z of each pixel
    top = ((p0 + 0.05 * n) @ n) / (rays @ n)
    box = (abs(u - 64) < 12) & (abs(v - 48) < 10)
    depth[box] = top[box]
    return torch.from_numpy(depth).float()[None, None], torch.from_numpy(box)


def test_height_above_the_table_plane_needs_no_intrinsics_and_ignores_moving_the_camera():
    from adapt.data import height_above_plane, to_input

    depth, box = _tilted_table_with_box()
    hgt = height_above_plane(depth)[0, 0]
    assert hgt[~box].abs().max() < 1e-3  # the table is at height 0 wherever it is seen
    # z_plane - z along the ray is 5 cm / cos(angle of ray and normal): 0.5 -> 0.5..0.6
    assert 0.49 < hgt[box].min() and hgt[box].max() < 0.62
    for distance in (0.4, 1.2):  # the camera moved along its axis: the same heights
        moved, box = _tilted_table_with_box(distance)
        hgt = height_above_plane(moved)[0, 0]
        assert hgt[~box].abs().max() < 1e-3 and 0.49 < hgt[box].min() and hgt[box].max() < 0.62
    holes = depth.clone()
    holes[..., :5, :5] = 0
    holes[..., 46:50, 62:66] = 0  # no reading: the nearest reading's depth
    filled = height_above_plane(holes)[0, 0]
    assert filled[:5, :5].abs().max() < 0.2 and 0.49 < filled[46:50, 62:66].min()
    assert to_input(torch.rand(1, 3, 96, 128), depth, "rgbh").shape == (1, 4, 96, 128)
    assert torch.equal(to_input(None, depth, "height"), height_above_plane(depth))


def test_holes_are_inpainted_smoothly_from_their_borders():
    from adapt.data import fill_holes

    ramp = torch.linspace(0.5, 1.0, 40).repeat(30, 1)  # a tilted surface
    holed = ramp.clone()
    holed[10:20, 15:25] = 0
    f = fill_holes(holed)
    assert (f > 0).all() and torch.equal(f[holed > 0], ramp[holed > 0])  # readings kept
    assert (f[10:20, 15:25] - ramp[10:20, 15:25]).abs().max() < 0.03  # the ramp goes on (nearest: 0.06)
    assert torch.equal(fill_holes(ramp), ramp)


def _world_points(raw) -> torch.Tensor:
    """(H,W,3) world points of a BopDataset sample's clean depth, metres (table top z = 0)."""
    depth, K = raw["depth_clean"][0], raw["K"]
    v, u = torch.meshgrid(torch.arange(depth.shape[0]), torch.arange(depth.shape[1]), indexing="ij")
    cam = torch.stack([(u - K[0, 2]) * depth / K[0, 0], (v - K[1, 2]) * depth / K[1, 1], depth], -1)
    return (cam - raw["t_w2c"]) @ raw["R_w2c"]


def test_objectness_labels_of_a_rendered_scene_match_its_masks(scenes):
    """Objects and distractors standing on the table are "object"; the table, empty space and
    clutter (shelves beyond the table, links hovering over it) are "not object"."""
    from adapt.scenes import SceneDomain
    from simdata import BopDataset

    d = SceneDomain(scenes, 120, 64, stream=1, seed=0, objectness=True, channels="rgbd")
    assert d.names == ["not object", "object"]
    ds = BopDataset(scenes, load_full_masks=False)
    half = np.array(json.loads((scenes / "train_pbr" / "000000" / "scene_simdata.json").read_text())
                    ["table"]["size_xy_m"]) / 2
    seen_clutter = 0
    for i in range(len(ds)):
        s, raw = d.sample(i, None), ds[i]
        assert s["x"].shape[0] == 4
        objects, clutter = raw["masks_visib"].any(0), raw["clutter"]
        seen_clutter += int(clutter.sum())
        assert not (objects & clutter).any()
        xyz = _world_points(raw)
        # clutter is where simdata put it: beyond the table's edges, or off its top
        beyond = (xyz[..., 0].abs() > half[0] - 2e-3) | (xyz[..., 1].abs() > half[1] - 2e-3)
        assert (beyond | (xyz[..., 2].abs() > 5e-3))[clutter].all()
        on_table = (raw["depth_clean"][0] > 0) & (xyz[..., 2] > 5e-3) & ~clutter & ~beyond
        assert (s["label"][objects] == 1).all() and (s["label"][clutter] == 0).all()
        assert ((s["label"] == 1) == (objects | on_table)).all()  # distractors are objects too
        assert (s["label"][~(objects | on_table)] == 0).all()
    assert seen_clutter > 100


def test_rgbd_segmentation_trains_exports_with_parity_and_spigan_restyles_what_it_has(scenes, tmp_path):
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
    # SPIGAN restyles the colour of rgbd inputs, the depth channel goes to T as it is
    spigan = TrainConfig(method="spigan", source=str(scenes), target=str(scenes), out=str(tmp_path / "s"),
                         height=64, crop=64, channels="rgbh", steps=5, batch=1, log_every=1, ckpt_every=5)
    scfg = METHODS["spigan"].Config(vgg_weights="random", gen_filters=8, gen_blocks=1, disc_filters=8,
                                    task_width=8)
    Trainer(spigan, scfg, task_cfg=SegmentationConfig(objectness=True)).fit(progress=False)
    meta = export_run(tmp_path / "s", "task", "onnx", tmp_path / "spigan.onnx")
    assert meta["parity_max_abs_error"] < 1e-4 and meta["input"]["channels"] == "rgbh"
    assert "dominant plane" in meta["input"]["normalisation"]
    meta = export_run(tmp_path / "s", "generator", "onnx", tmp_path / "g.onnx")
    assert meta["input"]["channels"] == "rgb" and meta["parity_max_abs_error"] < 1e-4
    # with height alone G restyles the height: sim -> real depth, P on G's height
    Trainer(replace(spigan, channels="height", out=str(tmp_path / "h")), scfg,
            task_cfg=SegmentationConfig(objectness=True)).fit(progress=False)
    meta = export_run(tmp_path / "h", "generator", "onnx", tmp_path / "gh.onnx")
    assert meta["input"]["channels"] == "height" and meta["parity_max_abs_error"] < 1e-4
    meta = export_run(tmp_path / "h", "task", "onnx", tmp_path / "h.onnx")
    assert meta["input"]["channels"] == "height" and meta["parity_max_abs_error"] < 1e-4
    from adapt.translate import translate
    with pytest.raises(SimdataError, match="generator restyles depth"):
        translate(tmp_path / "h", scenes, tmp_path / "translated")
    assert not (tmp_path / "translated").exists()


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
    # two halves of the folder, scored apart, pool into the whole's figures
    from adapt.evaluate import scores_from_confusion

    halves = []
    for half, frames in enumerate((range(0, 5), range(5, 10))):
        folder = tmp_path / f"half{half}"
        folder.mkdir()
        shutil.copy(real / "classes.json", folder)
        for i in frames:
            for name in (f"frame_{i:02d}.png", f"frame_{i:02d}_labels.png", f"depth_frame_{i:02d}.npy"):
                shutil.copy(real / name, folder)
        halves.append(evaluate_segmentation(
            net, SceneDomain(folder, 120, 64, stream=99, seed=0, channels="rgbd", objectness=True), "cpu"))
    assert halves[0]["per_image_iou"] + halves[1]["per_image_iou"] == res["per_image_iou"]
    pooled = scores_from_confusion(np.add(halves[0]["confusion"], halves[1]["confusion"]), d.names)
    assert pooled == {"miou": res["miou"], "per_class_iou": res["per_class_iou"]}

    class Run:
        task_net, data, device = net, DataSpec(4, 64, d.names), "cpu"
    conf = {"train": TrainConfig(height=120).__dict__, "data": {"channels": "rgbd"}}
    assert predict_segmentation_folder(Run, conf, real, tmp_path) == 10
    labels = json.loads((real / "classes.json").read_text())
    assert labels and (tmp_path / "frame_00_color.png").exists() and (tmp_path / "frame_00_labels.png").exists()
    # eval figures: one per image, input | truth | prediction | depth, at twice the eval size
    assert task.eval_figures(net, d, Run.data, "cpu", res, tmp_path / "figures") == 10
    fig = cv2.imread(str(tmp_path / "figures" / "frame_00.png"))
    assert fig.shape[0] > 240 and fig.shape[1] == 2 * 4 * (s["x"].shape[-1] // 8 * 8)
    assert "object IoU" in task.summary(res)


def test_an_ensemble_of_runs_averages_their_probabilities_and_exports(scenes, tmp_path):
    from adapt.config import TrainConfig
    from adapt.ensemble import build_ensemble
    from adapt.export import export_run
    from adapt.methods import METHODS
    from adapt.tasks.segmentation import SegmentationConfig
    from adapt.trainer import Trainer, load_run
    from simdata.errors import SimdataError

    def train(name, resume=False, **kw):
        cfg = TrainConfig(method="seg-source-only", source=str(scenes), out=str(tmp_path / name), steps=2,
                          batch=2, height=64, crop=64, channels="height", log_every=1, ckpt_every=2)
        Trainer(replace(cfg, **kw), METHODS["seg-source-only"].Config(task_width=8), resume=resume,
                task_cfg=SegmentationConfig(objectness=True)).fit(progress=False)
        return tmp_path / name

    runs = [train("a", seed=0), train("b", seed=1)]
    build_ensemble(runs, tmp_path / "ens")
    ens, conf = load_run(tmp_path / "ens", "cpu")
    x = torch.rand(2, 1, 64, 96) * 2 - 1
    with torch.no_grad():
        probs = torch.stack([torch.softmax(load_run(r, "cpu")[0].task_net(x), 1) for r in runs]).mean(0)
        assert torch.allclose(torch.softmax(ens.task_net(x), 1), probs, atol=1e-5)
    assert len(conf["ensemble"]["members"]) == 2 and conf["data"]["channels"] == "height"
    meta = export_run(tmp_path / "ens", "task", "onnx", tmp_path / "ens.onnx")
    assert meta["parity_max_abs_error"] < 1e-4 and meta["method"].startswith("ensemble of 2")
    # runs that do not share inputs, one run, an ensemble of ensembles, an existing --out
    other = train("c", channels="depth")
    for bad, why in (([runs[0], other], "differs from"), ([runs[0]], "at least two runs, or one"),
                     ([tmp_path / "ens", runs[0]], "is an ensemble already")):
        with pytest.raises(SimdataError, match=why):
            build_ensemble(bad, tmp_path / "bad")
        assert not (tmp_path / "bad").exists() and not (tmp_path / ".tmp-bad").exists()
    with pytest.raises(SimdataError, match="exists"):
        build_ensemble(runs, tmp_path / "ens")
    # --flips h: one run, its probabilities averaged with those of the mirrored image
    build_ensemble(runs[:1], tmp_path / "flip", flips="h")
    flip, _ = load_run(tmp_path / "flip", "cpu")
    with torch.no_grad():
        net = load_run(runs[0], "cpu")[0].task_net
        probs = (torch.softmax(net(x), 1) + torch.flip(torch.softmax(net(torch.flip(x, (3,))), 1), (3,))) / 2
        assert torch.allclose(torch.softmax(flip.task_net(x), 1), probs, atol=1e-5)
    with pytest.raises(SimdataError, match="is an ensemble"):  # not a run to train on
        train("ens", steps=4, resume=True)


def test_mirrored_training_crops_keep_labels_and_privileged_channels_with_the_input(scenes):
    """--hflip: about half of the training crops are the mirror images of the crops drawn
    (input, labels, privileged depth alike; the normals' x negated); without it the crops are
    those of before (no extra draw)."""
    from adapt.scenes import SceneDomain

    plain = SceneDomain(scenes, 120, 64, stream=1, seed=0, objectness=True, channels="rgbd")
    mirror = SceneDomain(scenes, 120, 64, stream=1, seed=0, objectness=True, channels="rgbd", hflip=True)
    assert plain.sample(0, None)["normals"].abs().sum() > 0
    flipped = 0
    for step in range(20):
        rng = np.random.default_rng(step)
        item = plain.sample(0, rng)
        assert plain.augment(item, np.random.default_rng(step)) is item  # nothing drawn, nothing changed
        out = mirror.augment(item, np.random.default_rng(step))
        if out is item:
            continue
        flipped += 1
        for k in ("x", "label", "depth"):
            assert torch.equal(out[k], item[k].flip(-1))
        n, m = item["normals"], out["normals"]
        assert torch.equal(m[0], -n[0].flip(-1)) and torch.equal(m[1:], n[1:].flip(-1))
    assert 5 <= flipped <= 15
    # the training batches: those of a domain without --hflip are unchanged by the option's existence
    a, b = plain.batch(3, 4), SceneDomain(scenes, 120, 64, stream=1, seed=0, objectness=True,
                                          channels="rgbd").batch(3, 4)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_hflip_is_a_segmentation_option(scenes, tmp_path):
    from adapt.cli import main

    with pytest.raises(SystemExit) as e:
        main(["train", "grasp-source-only", "--task", "grasp", "--source", str(scenes),
              "--out", str(tmp_path / "g"), "--hflip", "--steps", "1"])
    assert e.value.code != 0
    assert not (tmp_path / "g").exists()
