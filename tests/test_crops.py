"""Crops: labels re-project onto the crop masks, quaternions match scene_gt, both routes."""
import hashlib
import json
import subprocess
import sys

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
    r = run_render_crops(tmp_path / "b")
    shard = "shard_000000.npz"
    assert hashlib.sha256((tmp_path / "a" / shard).read_bytes()).digest() == \
        hashlib.sha256((tmp_path / "b" / shard).read_bytes()).digest()
    assert (tmp_path / "a" / "labels.jsonl").read_text() == (tmp_path / "b" / "labels.jsonl").read_text()


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
