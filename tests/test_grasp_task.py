"""The grasp task: data with grasp maps, augmentation, GG-CNN2 training, evaluation (rectangle
metric, closed-loop simulated grasps with baselines), export parity and prediction."""
import json

import numpy as np
import pytest
import torch

from simdata.grasping import GripperConfig
from simdata.grasping.planar import PlanarGrasp, decode_grasp_maps, paint_grasp_maps, smooth_grasp_maps


def _decode(maps):
    return decode_grasp_maps(*smooth_grasp_maps(maps.numpy()), n=1, threshold=0.1)[0]


@pytest.mark.parametrize("flip,turns", [(True, 0), (False, 1), (False, 2), (True, 3)])
def test_augmented_maps_hold_the_augmented_grasp(flip, turns):
    from adapt.grasping import augment_maps

    S = 64
    g = PlanarGrasp(20.0, 30.0, 0.5, 24.0, 6.0)
    maps = torch.from_numpy(paint_grasp_maps([g], (S, S)))
    x = torch.zeros(1, S, S)
    x[0, 30, 20] = 1.0  # marks the grasp centre in the input
    x2, m2 = augment_maps(x, maps, flip, turns)
    v, u = np.unravel_index(int(x2[0].argmax()), (S, S))
    # where the grasp went, by moving its direction vector the same way as the pixels
    d = np.array([np.cos(g.angle), np.sin(g.angle)])
    if flip:
        d[0] = -d[0]
    for _ in range(turns % 4):  # torch.rot90 (dims -2, -1) turns (u, v) -> (v, S-1-u)
        d = np.array([d[1], -d[0]])
    got = _decode(m2)
    assert np.hypot(got.u - u, got.v - v) <= 1.0
    expect = np.arctan2(d[1], d[0])
    assert abs(((got.angle - expect) + np.pi / 2) % np.pi - np.pi / 2) < 1e-3
    assert got.width == pytest.approx(24.0, rel=0.02)


def test_a_grasp_is_centred_on_the_object_between_its_fingers():
    from adapt.data import fit_plane_inverse_depth
    from adapt.grasping import centre_on_object

    K = np.array([[300.0, 0, 80], [0, 300.0, 60], [0, 0, 1]])
    depth = np.full((120, 160), 0.6, np.float32)  # the table, seen straight on
    depth[50:70, 70:90] = 0.56  # a box 4 cm high, 20 px (4 cm) across
    plane = fit_plane_inverse_depth(torch.from_numpy(depth))
    gripper = GripperConfig()
    g = PlanarGrasp(84.0, 60.0, 0.0, 12.0, 8.0, 0.9)  # 4.5 px right of the box's middle
    c = centre_on_object(g, depth, K, gripper, plane)
    assert (c.u, c.v) == pytest.approx((79.5, 60.0))
    assert c.width == pytest.approx(20.0) and (c.angle, c.quality) == (g.angle, g.quality)
    along = PlanarGrasp(84.0, 55.0, np.pi / 2, 12.0, 8.0)  # closing along v: moved along v only
    assert (centre_on_object(along, depth, K, gripper, plane).u,
            centre_on_object(along, depth, K, gripper, plane).v) == pytest.approx((84.0, 59.5))
    assert centre_on_object(PlanarGrasp(20.0, 20.0, 0.0, 12.0, 8.0), depth, K, gripper, plane) \
        == PlanarGrasp(20.0, 20.0, 0.0, 12.0, 8.0)  # on the table: unchanged
    depth[50:70, 10:150] = 0.56  # wider than the hand opens: unchanged
    assert centre_on_object(g, depth, K, gripper, plane) == g


def test_a_grasp_on_a_chord_of_a_can_moves_along_its_jaws_to_the_diameter():
    from adapt.data import fit_plane_inverse_depth
    from adapt.grasp_decode import centre_along_jaws

    K = np.array([[300.0, 0, 80], [0, 300.0, 60], [0, 0, 1]])
    depth = np.full((120, 160), 0.6, np.float32)  # the table, seen straight on: 1 px = 2 mm
    vv, uu = np.mgrid[:120, :160]
    depth[(uu - 80) ** 2 + (vv - 60) ** 2 <= 17 ** 2] = 0.5  # a standing can, 6.8 cm across
    plane = fit_plane_inverse_depth(torch.from_numpy(depth))
    chord = PlanarGrasp(80.0, 69.0, 0.0, 30.0, 8.0, 0.9)  # closing along u, 9 px off the axis
    c = centre_along_jaws(chord, depth, K, plane)
    assert (c.u, c.v) == pytest.approx((80.0, 60.0))
    assert (c.angle, c.width, c.quality) == (chord.angle, chord.width, chord.quality)
    turned = PlanarGrasp(71.0, 60.0, np.pi / 2, 30.0, 8.0)  # closing along v: moved along u
    assert (centre_along_jaws(turned, depth, K, plane).u,
            centre_along_jaws(turned, depth, K, plane).v) == pytest.approx((80.0, 60.0))
    off = PlanarGrasp(20.0, 20.0, 0.0, 12.0, 8.0)
    assert centre_along_jaws(off, depth, K, plane) == off  # on the table: unchanged
    depth[50:70, :] = 0.55  # a bar across the image, longer than the reach: unchanged
    across = PlanarGrasp(40.0, 60.0, np.pi / 2, 30.0, 8.0)
    assert centre_along_jaws(across, depth, K, plane, reach_m=0.05) == across


def test_refinement_turns_a_grasp_whose_finger_grazes_the_object_to_where_it_goes_deeper():
    from adapt.data import fit_plane_inverse_depth
    from adapt.grasp_decode import refine_grasp
    from simdata.grasping.depth_check import DepthCheckConfig, inpaint_holes, plan_grasp_depth

    K = np.array([[600.0, 0, 160], [0, 600.0, 120], [0, 0, 1]])
    depth = np.full((240, 320), 0.6, np.float32)  # the table, seen straight on: 1 px = 1 mm
    depth[45:195, 125:195] = 0.53  # a bar 7 cm high and 7 cm across (along u), 15 cm long
    plane = fit_plane_inverse_depth(torch.from_numpy(depth))
    gripper, check, filled = GripperConfig(), DepthCheckConfig(), inpaint_holes(depth)
    table_z = 0.6
    square = PlanarGrasp(160.0, 120.0, 0.0, 70.0, 20.0, 0.9)  # across the bar: fingers 3 mm clear
    h, plan = refine_grasp(square, depth, K, gripper, check, filled, plane)
    assert h == square and plan == plan_grasp_depth(depth, square, K, gripper, check, filled, table_z)
    assert plan[0] == pytest.approx(0.53 + 0.015, abs=1e-4)  # as deep as the fingers reach
    turned = PlanarGrasp(160.0, 120.0, np.radians(15.0), 70.0, 20.0, 0.9)  # a finger's corner on the bar
    before = plan_grasp_depth(depth, turned, K, gripper, check, filled, table_z)
    assert before is None or before[0] < plan[0] - 0.01
    h, after = refine_grasp(turned, depth, K, gripper, check, filled, plane)
    # the least turn that lets the fingers as deep as across the bar: 5 deg back, to 10 deg
    assert np.degrees(h.angle) == pytest.approx(10.0) and (h.u, h.v) == (160.0, 120.0)
    assert after[0] == pytest.approx(plan[0], abs=1e-4)
    assert refine_grasp(PlanarGrasp(160.0, 120.0, np.pi / 2, 70.0, 20.0), depth, K, gripper, check,
                        filled, plane) is None  # along the 15 cm bar: no neighbour fits


def test_pads_must_reach_a_lying_cans_widest_line_but_only_a_boxs_top_edge():
    from adapt.data import fit_plane_inverse_depth
    from adapt.grasp_decode import pads_reach_silhouette, silhouette_depth

    K = np.array([[600.0, 0, 160], [0, 600.0, 120], [0, 0, 1]])
    depth = np.full((240, 320), 0.6, np.float32)  # the table, seen straight on: 1 px = 1 mm
    x = (np.arange(320) - 160 + 0.5) / 1000  # metres across, at the table
    r = 0.034  # a tomato soup can lying along v: its widest line is r above the table
    on_can = np.abs(x) < r
    depth[60:180, on_can] = 0.6 - r - np.sqrt(r * r - x[on_can] ** 2)
    plane = fit_plane_inverse_depth(torch.from_numpy(depth))
    gripper = GripperConfig()
    across = PlanarGrasp(160.0, 120.0, 0.0, 68.0, 20.0, 0.9)
    edge = silhouette_depth(across, depth, K, plane, gripper.max_opening / 2)
    # its outermost pixels see the flank within 1 cm of the widest line (0.566 m)
    assert 0.556 < edge < 0.566
    top = 0.6 - 2 * r
    high = top + 0.02 - gripper.finger_length / 2  # fingertips 2 cm below the top: above the line
    low = 0.566 + 0.002 - gripper.finger_length / 2  # 2 mm below the line
    assert not pads_reach_silhouette(across, high, depth, K, gripper, plane)
    assert pads_reach_silhouette(across, low, depth, K, gripper, plane)
    # a box as wide and as high: its outline is its top edge, which the high pads reach
    depth[60:180, on_can] = top
    assert silhouette_depth(across, depth, K, plane, gripper.max_opening / 2) == pytest.approx(top)
    assert pads_reach_silhouette(across, high, depth, K, gripper, plane)
    # no outline to compare with (on the table, or wider than the hand opens): no objection
    assert pads_reach_silhouette(PlanarGrasp(20.0, 20.0, 0.0, 10.0, 20.0), high, depth, K, gripper, plane)
    depth[60:180, 20:300] = top
    assert silhouette_depth(across, depth, K, plane, gripper.max_opening / 2) is None


def test_baselines_and_interval():
    from adapt.grasping import centroid_grasp, random_grasp, wilson_interval

    masks = np.zeros((2, 50, 60), bool)
    masks[0, 10:20, 5:45] = True  # a bar 40 px long, 10 px high: its narrow side is vertical
    g = centroid_grasp(masks, np.random.default_rng(0))
    assert (g.u, g.v) == pytest.approx((24.5, 14.5))
    assert abs(abs(g.angle) - np.pi / 2) < 1e-6
    assert g.width == pytest.approx(10.0)  # as wide as the bar is high
    r = random_grasp(masks, np.random.default_rng(1), 30.0)
    assert masks[0][int(r.v), int(r.u)]
    assert random_grasp(np.zeros((0, 5, 5), bool), np.random.default_rng(0), 3.0) is None
    lo, hi = wilson_interval(160, 200)
    assert lo < 0.8 < hi and hi - lo < 0.12
    assert wilson_interval(0, 0) == [0.0, 1.0]


def test_grasp_net_trains_evaluates_exports_and_predicts(grasp_dataset, tmp_path):
    from adapt.cli import main
    from adapt.config import TrainConfig
    from adapt.export import export_run
    from adapt.methods import METHODS
    from adapt.tasks.grasp import GraspConfig
    from adapt.trainer import Trainer
    from simdata.errors import SimdataError

    cfg = TrainConfig(method="grasp-source-only", task="grasp", source=str(grasp_dataset),
                      out=str(tmp_path / "run"), steps=20, batch=4, height=240, crop=64,
                      channels="height", log_every=10, ckpt_every=20, sample_every=20)
    res = Trainer(cfg, METHODS["grasp-source-only"].Config(task_width=8),
                  task_cfg=GraspConfig(sim_trials=2)).fit(progress=False)
    assert np.isfinite(res["last"]["loss_task"])
    # eval: rectangle metric on every image, 2 closed-loop trials per policy
    assert main(["eval", str(tmp_path / "run"), "--data", str(grasp_dataset), "--sim-trials", "2"]) == 0
    ev = json.loads((tmp_path / "run" / f"eval_{grasp_dataset.name}.json").read_text())
    assert ev["images"] == 4 and len(ev["per_image"]) == 4
    assert set(ev["simulated"]) == {"net", "random", "centroid"}
    for r in ev["simulated"].values():
        assert r["trials"] == 2 and 0 <= r["successes"] <= 2
        assert r["ci95"][0] <= r["success_rate"] <= r["ci95"][1]
        # every trial ended one way, and the held ones are the successes
        assert sum(r["outcomes"].values()) == 2 and r["outcomes"].get("held", 0) == r["successes"]
    sim_rows = [row for row in ev["per_image"] if "sim_net" in row]
    labelled = [row for row in sim_rows if row["truths"]]
    assert ev["simulated"]["net"]["labelled_view_trials"] == len(labelled)
    if labelled:
        assert ev["simulated"]["net"]["labelled_view_success_rate"] == pytest.approx(
            sum(row["sim_net"] for row in labelled) / len(labelled), abs=1e-4)
    # per object: each executed grasp counted once, under the object its centre is on
    names = {m["name"] for m in json.loads((grasp_dataset / "objects.json").read_text()).values()} | {""}
    for p, table in ev["per_object"].items():
        assert set(table) <= names
        executed = [row for row in sim_rows if row[f"object_{p}"] is not None]
        assert sum(t[0] for t in table.values()) == len(executed)
        assert sum(t[1] for t in table.values()) == sum(row[f"sim_{p}"] for row in executed)
    assert ev["rectangle_accuracy"] is None or 0 <= ev["rectangle_accuracy"] <= 1
    figures = sorted((tmp_path / "run" / f"eval_{grasp_dataset.name}").glob("*.png"))
    assert len(figures) == 4  # one per image: labelled grasps and the net's best, on image and depth
    # export: both formats match PyTorch; the JSON says what goes in and out
    for fmt in ("onnx", "torchscript"):
        meta = export_run(tmp_path / "run", "task", fmt, tmp_path / f"grasp.{fmt}")
        assert meta["parity_max_abs_error"] < 1e-4
        assert meta["task"] == "grasp" and meta["input"]["channels"] == "height"
        assert "dominant plane" in meta["input"]["normalisation"] and "cos 2a" in meta["outputs"]["grasp_maps"]
    # predict on a folder with depth (here the BOP layout; real frames in the README)
    assert main(["predict", str(tmp_path / "run"), "--input", str(grasp_dataset / "train_pbr" / "000000"),
                 "--out", str(tmp_path / "pred")]) == 0
    lines = (tmp_path / "pred" / "grasps.jsonl").read_text().splitlines()
    assert len(lines) == 2 and len(list((tmp_path / "pred").glob("*_grasps.png"))) == 2
    rec = json.loads(lines[0])
    for g in (g for g in rec["grasps"] if g["executable"]):  # refused candidates have no pose
        T = np.array(g["T_cam_grasp"])
        assert np.allclose(T[:3, 2], [0, 0, 1]) and 0.3 < T[2, 3] < 0.8  # along the optical axis
    # a grasp net takes depth: rgb is refused, as an unlabelled BOP dataset is
    with pytest.raises(SimdataError, match="takes depth"):
        Trainer(TrainConfig(**{**cfg.__dict__, "channels": "rgb", "out": str(tmp_path / "r2")}),
                METHODS["grasp-source-only"].Config(), task_cfg=GraspConfig())
    assert main(["eval", str(tmp_path / "run"), "--data", str(grasp_dataset), "--sim-trials", "-1"]) == 2


def test_spigan_adapts_the_colour_of_an_rgbh_grasp_net(grasp_dataset, tmp_path):
    from adapt.config import TrainConfig
    from adapt.export import export_run
    from adapt.methods import METHODS
    from adapt.tasks.grasp import GraspConfig
    from adapt.trainer import Trainer

    cfg = TrainConfig(method="spigan", task="grasp", source=str(grasp_dataset), target=str(grasp_dataset),
                      out=str(tmp_path / "s"), steps=5, batch=2, height=120, crop=64, channels="rgbh",
                      log_every=1, ckpt_every=5, sample_every=5)
    scfg = METHODS["spigan"].Config(vgg_weights="random", gen_filters=8, gen_blocks=1, disc_filters=8,
                                    task_width=8)
    res = Trainer(cfg, scfg, task_cfg=GraspConfig(sim_trials=0)).fit(progress=False)
    assert np.isfinite(res["last"]["loss_task_adapted"]) and res["last"]["loss_pi"] >= 0
    assert (tmp_path / "s" / "samples").is_dir()
    meta = export_run(tmp_path / "s", "task", "onnx", tmp_path / "t.onnx")
    assert meta["task"] == "grasp" and meta["input"]["channels"] == "rgbh"


def test_an_ensemble_of_grasp_runs_averages_their_maps_and_exports(grasp_dataset, tmp_path):
    from adapt.config import TrainConfig
    from adapt.ensemble import build_ensemble
    from adapt.export import export_run
    from adapt.methods import METHODS
    from adapt.tasks.grasp import GraspConfig
    from adapt.trainer import Trainer, load_run
    from simdata.errors import SimdataError

    def train(name, method="grasp-source-only", task="grasp", **kw):
        cfg = TrainConfig(method=method, task=task, source=str(grasp_dataset), out=str(tmp_path / name),
                          steps=2, batch=2, height=240, crop=64, channels="height", log_every=1,
                          ckpt_every=2, sample_every=2, **kw)
        Trainer(cfg, METHODS[method].Config(task_width=8),
                task_cfg=GraspConfig(sim_trials=0) if task == "grasp" else None).fit(progress=False)
        return tmp_path / name

    runs = [train("a", seed=0), train("b", seed=1)]
    build_ensemble(runs, tmp_path / "ens")
    ens, conf = load_run(tmp_path / "ens", "cpu")
    x = torch.rand(1, 1, 64, 96) * 2 - 1
    with torch.no_grad():
        maps = torch.stack([load_run(r, "cpu")[0].task_net(x) for r in runs]).mean(0)
        assert torch.allclose(ens.task_net(x), maps, atol=1e-6)
    assert conf["train"]["task"] == "grasp" and len(conf["ensemble"]["members"]) == 2
    meta = export_run(tmp_path / "ens", "task", "onnx", tmp_path / "ens.onnx")
    assert meta["parity_max_abs_error"] < 1e-4 and meta["task"] == "grasp"
    seg = train("seg", method="seg-source-only", task="segmentation")
    with pytest.raises(SimdataError, match="differs from"):  # one task per ensemble
        build_ensemble([runs[0], seg], tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("dims", [(3,), (2,), (2, 3)])
def test_mirrored_grasp_maps_decode_to_the_mirrored_grasp(dims):
    """The rule by which GraspEnsemble's --flips maps a mirrored image's prediction back: the
    maps of a grasp, mirrored about one image axis with their sin 2a negated, are the maps of
    the mirrored grasp (angle -a) and decode to it; a half turn moves the maps and keeps a."""
    from simdata.grasping.planar import angle_difference

    g = PlanarGrasp(141.0, 97.0, 0.6, 36.0, 10.0)
    h, w = 240, 320
    maps = paint_grasp_maps([g], (h, w))
    mirrored = np.flip(maps, tuple(d - 1 for d in dims)).copy()  # maps are (4,H,W)
    if len(dims) == 1:
        mirrored[2] = -mirrored[2]
    u, v = (w - 1 - g.u if 3 in dims else g.u), (h - 1 - g.v if 2 in dims else g.v)
    want = -g.angle if len(dims) == 1 else g.angle
    (d,) = decode_grasp_maps(*smooth_grasp_maps(mirrored), n=1, threshold=0.1)
    assert np.hypot(d.u - u, d.v - v) <= 1.0 and angle_difference(d.angle, want) < 1e-3
    painted = paint_grasp_maps([PlanarGrasp(u, v, want, 36.0, 10.0)], (h, w))
    on = (painted[0] > 0) & (mirrored[0] > 0)
    assert on.sum() > 0.8 * (painted[0] > 0).sum()  # the same centre region, up to rounding
    assert np.allclose(painted[1:3][:, on], mirrored[1:3][:, on], atol=1e-6)


def test_flipped_grasp_ensemble_is_equivariant_and_exports(grasp_dataset, tmp_path):
    """adapt ensemble RUN --flips hv: one run is enough; the output is the mean over the four
    mirror images mapped back, so mirroring the input mirrors the maps (angle mirrored too);
    it exports with parity."""
    from adapt.config import TrainConfig
    from adapt.ensemble import build_ensemble
    from adapt.export import export_run
    from adapt.methods import METHODS
    from adapt.tasks.grasp import GraspConfig
    from adapt.trainer import Trainer, load_run
    from simdata.errors import SimdataError

    cfg = TrainConfig(method="grasp-source-only", task="grasp", source=str(grasp_dataset),
                      out=str(tmp_path / "a"), steps=2, batch=2, height=240, crop=64,
                      channels="height", log_every=1, ckpt_every=2, sample_every=2)
    Trainer(cfg, METHODS["grasp-source-only"].Config(task_width=8),
            task_cfg=GraspConfig(sim_trials=0)).fit(progress=False)
    build_ensemble([tmp_path / "a"], tmp_path / "flip", flips="hv")
    ens, conf = load_run(tmp_path / "flip", "cpu")
    net = load_run(tmp_path / "a", "cpu")[0].task_net
    assert conf["ensemble"]["flips"] == "hv"
    x = torch.rand(1, 1, 64, 96) * 2 - 1
    sign = torch.tensor([1.0, 1.0, -1.0, 1.0]).view(1, 4, 1, 1)
    with torch.no_grad():
        want = (net(x) + torch.flip(net(torch.flip(x, (3,))), (3,)) * sign
                + torch.flip(net(torch.flip(x, (2,))), (2,)) * sign
                + torch.flip(net(torch.flip(x, (2, 3))), (2, 3))) / 4
        assert torch.allclose(ens.task_net(x), want, atol=1e-6)
        assert torch.allclose(ens.task_net(torch.flip(x, (3,))), torch.flip(want, (3,)) * sign, atol=1e-5)
    meta = export_run(tmp_path / "flip", "task", "onnx", tmp_path / "flip.onnx")
    assert meta["parity_max_abs_error"] < 1e-4
    with pytest.raises(SimdataError, match="at least two runs, or one with --flips"):
        build_ensemble([tmp_path / "a"], tmp_path / "one")
