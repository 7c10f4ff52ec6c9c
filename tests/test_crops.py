"""Crops: labels re-project onto the crop masks, quaternions match scene_gt, both routes."""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import trimesh

from helpers import ASSETS
from simdata import CropsDataset
from simdata.crops import CropsConfig, crop_intrinsics, crops_from_dataset, cut
from simdata.errors import SimdataError
from simdata.transforms import quat_wxyz_to_matrix


def reprojection_agreement(model_mm, quat, t_m, K, mask, n=2000, region=None):
    """Share of model points (posed by quat, t, projected with the crop K) on the crop mask,
    among those landing in ``region`` (the part of the crop inside the source image)."""
    pts = model_mm.sample(n, seed=0) / 1000.0
    pc = pts @ quat_wxyz_to_matrix(quat).T + np.asarray(t_m)
    uv = np.round(pc[:, :2] / pc[:, 2:] * [K[0, 0], K[1, 1]] + K[:2, 2]).astype(int)
    s = mask.shape[0]
    ok = (uv >= 0).all(1) & (uv < s).all(1)
    if region is not None:
        ok[ok] &= region[uv[ok, 1], uv[ok, 0]]
    m = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3))) > 0
    return m[uv[ok, 1], uv[ok, 0]].mean(), ok.mean()


@pytest.fixture(scope="module")
def cut_crops(small_dataset, tmp_path_factory):
    return crops_from_dataset(small_dataset, tmp_path_factory.mktemp("c") / "crops",
                              CropsConfig(size=64), progress=False)


def test_cut_crops_reproject_and_match_scene_gt(cut_crops, small_dataset):
    ds = CropsDataset(cut_crops)
    assert len(ds) >= 4
    models = {}
    for i in range(len(ds)):
        item, label = ds.raw(i)
        q = np.array(label["quat_wxyz"])
        assert np.isclose(np.linalg.norm(q), 1) and q[0] >= 0
        src = label["source"]
        gt = json.loads((small_dataset / "train_pbr" / src["scene"] / "scene_gt.json").read_text())
        gt = gt[str(src["im_id"])][src["gt_id"]]
        assert np.allclose(quat_wxyz_to_matrix(q), np.reshape(gt["cam_R_m2c"], (3, 3)), atol=1e-6)
        assert np.allclose(np.array(label["t_m"]) * 1000, gt["cam_t_m2c"])
        oid = label["obj_id"]
        models.setdefault(oid, trimesh.load(small_dataset / "models" / f"obj_{oid:06d}.ply"))
        K = np.reshape(label["K"], (3, 3))
        x0, y0, side, _ = label["box_xywh"]
        region = cut(np.ones((240, 320), bool), (x0, y0, side), 64, cv2.INTER_NEAREST)
        agree, _ = reprojection_agreement(models[oid], q, label["t_m"], K, item["mask"],
                                          region=region)
        # occluded parts project outside the visible mask, so weight by visibility
        assert agree > 0.95 * min(1.0, label["visib_fract"]) - 0.03, (i, agree, label["visib_fract"])
        assert (item["depth"][item["mask"]] > 0).mean() > 0.95  # metric depth on the object
        assert not item["rgb"][~item["mask"]].any()  # black background
    t = ds[0]
    assert t["rgb"].shape == (3, 64, 64) and t["depth"].shape == (1, 64, 64) and t["quat"].shape == (4,)
    assert ds.names[int(t["label"])] == ds.raw(0)[1]["name"]


def test_scene_background_keeps_pixels(small_dataset, tmp_path):
    out = crops_from_dataset(small_dataset, tmp_path / "scene", CropsConfig(size=32, background="scene"),
                             progress=False)
    item, _ = CropsDataset(out).raw(0)
    assert item["rgb"].shape == (32, 32, 3) and item["rgb"][~item["mask"]].any()
    with pytest.raises(SimdataError, match="exists"):
        crops_from_dataset(small_dataset, out, CropsConfig(), progress=False)
    with pytest.raises(SimdataError, match="--size"):
        CropsConfig(size=4).validate()


def test_crop_intrinsics_map_pixels_like_the_cut():
    K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    box = (300, 200, 80)  # 80 px square resized to 40: pixel (340, 240) -> (19.75, 19.75)
    Kc = crop_intrinsics(K, box, 40)
    p = np.array([0.05, 0.0, 1.0])  # projects to u = 345 in the source
    u_src = K[0, 0] * p[0] / p[2] + K[0, 2]
    u_crop = Kc[0, 0] * p[0] / p[2] + Kc[0, 2]
    assert np.isclose(u_crop, (u_src - box[0] + 0.5) * 40 / 80 - 0.5)


def run_render_crops(out, *extra):
    return subprocess.run([sys.executable, "-m", "simdata.cli", "render", "--mode", "crops",
                           "--meshes", ASSETS, "--out", out, "--count", "40", "--size", "64",
                           "--seed", "3", "--no-progress", *map(str, extra)],
                          capture_output=True, text=True, timeout=600)


def test_rendered_crops_are_centred_labelled_and_deterministic(tmp_path, assets_dir):
    r = run_render_crops(tmp_path / "a")
    assert r.returncode == 0, r.stderr
    assert "crops/s" in r.stdout
    ds = CropsDataset(tmp_path / "a")
    assert len(ds) == 40 and len(ds.names) == 10
    counts = np.bincount([ds.raw(i)[1]["label"] for i in range(len(ds))], minlength=10)
    assert (counts == 4).all()  # balanced classes
    from simdata.assets import load_models
    models = {m.obj_id: m for m in load_models(assets_dir)}
    for i in range(0, 40, 3):
        item, label = ds.raw(i)
        mesh_mm = models[label["obj_id"]].mesh.copy()
        mesh_mm.apply_scale(1000)
        agree, inside = reprojection_agreement(mesh_mm, label["quat_wxyz"], label["t_m"],
                                               np.reshape(label["K"], (3, 3)), item["mask"])
        assert agree > 0.98 and inside == 1.0  # the whole object is in the crop
        ys, xs = np.nonzero(item["mask"])
        assert abs(xs.mean() - 31.5) < 12 and abs(ys.mean() - 31.5) < 12
        assert not item["rgb"][~item["mask"]].any()
    r = run_render_crops(tmp_path / "b", "--workers", "2")  # three pool tasks of 16, 16 and 8
    assert r.returncode == 0, r.stderr
    shard = "shard_000000.npz"
    assert hashlib.sha256((tmp_path / "a" / shard).read_bytes()).digest() == \
        hashlib.sha256((tmp_path / "b" / shard).read_bytes()).digest()
    assert (tmp_path / "a" / "labels.jsonl").read_text() == (tmp_path / "b" / "labels.jsonl").read_text()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_a_dead_crop_worker_stops_the_run_in_one_line(tmp_path):
    """A crop-rendering worker process that dies (killed, out of memory) stops `render --mode
    crops --workers 2` with one line instead of leaving it waiting, and writes nothing."""
    import os
    import signal

    from helpers import error_lines, running_cli, pool_workers, wait_until

    out = tmp_path / "c"
    with running_cli("render", "--mode", "crops", "--meshes", ASSETS, "--out", out, "--count",
                     "4000", "--size", "64", "--workers", "2", "--no-progress") as proc:
        wait_until(lambda: len(pool_workers(proc.pid)) == 2, timeout=120, poll=0.05)
        os.kill(pool_workers(proc.pid)[0], signal.SIGKILL)
        lines = error_lines(proc.communicate(timeout=120)[1])  # a Pool's results would wait for ever
    assert proc.returncode == 2 and len(lines) == 1, lines
    assert "crop-rendering worker process died" in lines[0] and "nothing was written" in lines[0]
    assert not out.exists() or not list(out.iterdir())


def test_rendered_crops_with_sensor_keep_clean_channels(tmp_path):
    r = run_render_crops(tmp_path / "s", "--sensor", "primesense", "--randomize", "materials,backgrounds")
    assert r.returncode == 0, r.stderr
    t = CropsDataset(tmp_path / "s")[0]
    assert "depth_clean" in t and "rgb_clean" in t
    assert not np.array_equal(t["depth"].numpy(), t["depth_clean"].numpy())
    assert t["rgb"][:, ~t["mask"][0]].abs().sum() > 0  # background filled


def test_crops_cli_and_preview(small_dataset, tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "simdata.cli", *map(str, args)],
                              capture_output=True, text=True, timeout=600)
    r = cli("crops", small_dataset, "--out", tmp_path / "c", "--size", "48", "--no-progress")
    assert r.returncode == 0 and "crops of 48x48" in r.stdout, r.stderr
    r = cli("preview", tmp_path / "c", "--out", tmp_path / "c.png", "--rows", "1")
    assert r.returncode == 0, r.stderr
    assert cv2.imread(str(tmp_path / "c.png")).shape[1] == 8 * 96
    r = cli("crops", small_dataset, "--out", tmp_path / "c")
    assert r.returncode == 2 and "exists" in r.stderr


# --- render --mode crops --poses viewpoints (resting objects, upper hemisphere, cut like frames)

def render_vp(out, count=10, size=48, **kw):
    from simdata.config import RenderConfig
    from simdata.crop_render import render_crops

    return render_crops(RenderConfig(meshes=str(ASSETS), out=str(out), seed=5), count, size,
                        progress=False, **kw)


@pytest.fixture(scope="module")
def vp_crops(tmp_path_factory):
    return render_vp(tmp_path_factory.mktemp("vp") / "crops")["out"]


def test_viewpoint_crops_reproject_onto_masks_framed_1_2x(vp_crops):
    from simdata.assets import load_models

    models = {m.obj_id: m for m in load_models(ASSETS)}
    ds = CropsDataset(vp_crops)
    info = json.loads((vp_crops / "crops_info.json").read_text())
    assert info["poses"] == "viewpoints" and info["viewpoints"]["pad"] == 1.2
    Ks = set()
    for i in range(len(ds)):
        item, label = ds.raw(i)
        K = np.reshape(label["K"], (3, 3))
        Ks.add(tuple(np.round(K.ravel(), 6)))
        mesh_mm = models[label["obj_id"]].mesh.copy()
        mesh_mm.apply_scale(1000)
        agree, inside = reprojection_agreement(mesh_mm, label["quat_wxyz"], label["t_m"], K,
                                               item["mask"])
        assert agree >= 0.95 and inside == 1.0, (i, agree, inside)
        ys, xs = np.nonzero(item["mask"])
        longer = max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
        assert abs(longer - 48 / 1.2) <= 2.5, (i, longer)
        # centred on the silhouette box
        assert abs((xs.min() + xs.max()) / 2 - 23.5) <= 1.5 and abs((ys.min() + ys.max()) / 2 - 23.5) <= 1.5
        assert not item["rgb"][~item["mask"]].any()
        # the square box of the full image maps onto the crop through K
        x0, y0, side, _ = label["box_xywh"]
        assert np.isclose(K[0, 0], 572.4114 * 48 / side)
        v = label["viewpoint"]
        assert 10 <= v["elevation_deg"] <= 80 and -30 <= v["inplane_deg"] <= 30
        assert 0.5 <= v["distance_m"] <= 1.0 and 0 <= v["azimuth_deg"] <= 360
    assert len(Ks) == len(ds)  # intrinsics differ crop to crop (off-centre, varying distance)


def test_viewpoint_camera_is_above_the_resting_plane(vp_crops):
    from simdata.assets import load_models
    from simdata.crop_render import resting_pose

    models = {m.obj_id: m for m in load_models(ASSETS)}
    ds = CropsDataset(vp_crops)
    for i in range(len(ds)):
        _, label = ds.raw(i)
        model = models[label["obj_id"]]
        T = resting_pose(model)
        rested = model.mesh.vertices @ T[:3, :3].T + T[:3, 3]
        assert abs(rested[:, 2].min()) < 1e-6  # resting on z = 0
        R, t = quat_wxyz_to_matrix(label["quat_wxyz"]), np.array(label["t_m"])
        n_cam = R @ T[2, :3]  # world z (the resting plane's normal) in the camera frame
        c_cam = R @ np.asarray(model.mesh.bounds).mean(0) + t  # the object's centre
        to_cam = -c_cam / np.linalg.norm(c_cam)
        elev = np.degrees(np.arcsin(np.clip(n_cam @ to_cam, -1, 1)))
        v = label["viewpoint"]
        assert n_cam @ to_cam > 0 and abs(elev - v["elevation_deg"]) < 1.0, (i, elev, v)
        assert np.isclose(np.linalg.norm(c_cam), v["distance_m"])


def test_viewpoint_crops_are_deterministic(vp_crops, tmp_path):
    again = render_vp(tmp_path / "again")["out"]
    for name in ("shard_000000.npz", "labels.jsonl", "crops_info.json"):
        if name == "crops_info.json":  # holds the output path in its config
            a, b = (json.loads((p / name).read_text()) for p in (vp_crops, again))
            a["config"].pop("out"), b["config"].pop("out")
            assert a == b
        else:
            assert (vp_crops / name).read_bytes() == (again / name).read_bytes(), name
    with np.load(vp_crops / "shard_000000.npz") as x, np.load(again / "shard_000000.npz") as y:
        assert all(np.array_equal(x[k], y[k]) for k in x.files)


def test_uniform_poses_and_bad_viewpoint_ranges(tmp_path):
    from simdata.crop_render import ViewpointConfig

    out = render_vp(tmp_path / "u", count=4, size=32, poses="uniform")["out"]
    ds = CropsDataset(out)
    _, label = ds.raw(0)
    assert "viewpoint" not in label and label["box_xywh"] == [0, 0, 32, 32]
    assert json.loads((out / "crops_info.json").read_text())["poses"] == "uniform"
    for kw, flag in [({"elevation_deg": (-5, 30)}, "--crop-elevation"),
                     ({"elevation_deg": (60, 20)}, "--crop-elevation"),
                     ({"distance_m": (0.0, 1.0)}, "--crop-distance"),
                     ({"inplane_deg": (-200, 0)}, "--crop-inplane"),
                     ({"azimuth_deg": (-360, 360)}, "--crop-azimuth"),
                     ({"offcentre": 1.5}, "--crop-offcentre")]:
        with pytest.raises(SimdataError, match=flag):
            ViewpointConfig(**kw).validate()
    with pytest.raises(SimdataError, match="--poses"):
        render_vp(tmp_path / "x", poses="sphere")
    r = run_render_crops(tmp_path / "cli", "--crop-distance", "2:1")
    assert r.returncode == 2 and "--crop-distance" in r.stderr and not (tmp_path / "cli").exists()


def test_real_bop_frames_without_masks_or_depth_are_cut_around_the_annotated_pose(tmp_path):
    """lm_dev (real LineMOD frames: rgb, poses, boxes, models; no masks, no depth): the crops'
    silhouette masks come from the models at the annotated poses, the box follows bbox_obj,
    and the dataset's own symmetry annotations travel with the crops."""
    from conftest import SHARED

    lm = SHARED / "real" / "lm_dev"
    if not lm.is_dir():
        pytest.skip(f"{lm} is absent (real LineMOD frames live in ../shared)")
    out = crops_from_dataset(lm, tmp_path / "lm", CropsConfig(size=64, background="scene"),
                             split="test", progress=False)
    ds = CropsDataset(out)
    assert len(ds) == 48 and ds.names[0] == "obj_000001"
    assert "symmetries_discrete" in ds.models_info[10] and "symmetries_discrete" not in ds.models_info[1]
    gt_info = json.loads((lm / "test/000005/scene_gt_info.json").read_text())
    for i in range(0, 48, 7):
        arrays, label = ds.raw(i)
        model = trimesh.load(lm / "models" / f"obj_{label['obj_id']:06d}.ply", process=False)
        K = np.array(label["K"]).reshape(3, 3)
        on_mask, inside = reprojection_agreement(model, label["quat_wxyz"], label["t_m"], K, arrays["mask"])
        assert on_mask > 0.97 and inside > 0.97
        assert arrays["depth"].max() == 0  # no depth in these frames
    # the crop is 1.2x the annotated box (bbox_obj), centred on it
    first = [json.loads(x) for x in (out / "labels.jsonl").read_text().splitlines()
             if json.loads(x)["source"]["scene"] == "000005"][0]
    x, y, w, h = gt_info[str(first["source"]["im_id"])][0]["bbox_obj"]
    assert abs(first["box_xywh"][2] - 1.2 * max(w, h)) <= 3


def test_crops_refuse_randomizers_that_place_other_things(tmp_path):
    r = run_render_crops(tmp_path / "c", "--randomize", "lights,clutter")
    assert r.returncode != 0 and "--randomize clutter cannot be honoured by --mode crops" in r.stderr
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())


def test_resting_poses_and_model_info_come_back_from_the_disk_cache_bit_for_bit(
        assets_dir, tmp_path, monkeypatch):
    from simdata.assets import load_models
    from simdata.crop_render import resting_pose
    from simdata.writers.bop import model_info

    monkeypatch.setenv("SIMDATA_CACHE", str(tmp_path / "cache"))
    model = load_models(assets_dir)[0]
    cold_T, cold_info = resting_pose(model), model_info(model.mesh.vertices * 1000.0)
    assert len(list((tmp_path / "cache" / "resting_poses").glob("*.json"))) == 1
    assert len(list((tmp_path / "cache" / "model_info").glob("*.json"))) == 1
    warm_T, warm_info = resting_pose(model), model_info(model.mesh.vertices * 1000.0)
    assert np.array_equal(cold_T, warm_T) and cold_info == warm_info
    assert abs(np.linalg.det(warm_T[:3, :3]) - 1) < 1e-9 and cold_info["diameter"] > 10
