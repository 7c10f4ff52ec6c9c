"""Each randomizer changes what it should, only when switched on, reproducibly."""
import hashlib
import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import small_config
from simdata.errors import SimdataError
from simdata.pipeline import render_dataset
from simdata.randomize import (RandomizationConfig, kelvin_to_rgb, pattern_image,
                               vertex_pattern)
from simdata.types import PRIMESENSE


def render(tmp, name, **kw):
    cfg = small_config(tmp / name, intrinsics=PRIMESENSE.resized(160, 120), scenes=2, views=2,
                       objects=(3, 4), seed=5, rgb_format="png", **kw)
    render_dataset(cfg, progress=False)
    return tmp / name


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dr")
    base = RandomizationConfig()
    out = {"off": render(tmp, "off")}
    for name, dr in {
        "materials": replace(base, materials=True, material_prob=1.0),
        "lights": replace(base, lights=True),
        "backgrounds": replace(base, backgrounds=True),
        "distractors": replace(base, distractors=(3, 3)),
        "camera": replace(base, camera_jitter_m=0.02, camera_jitter_deg=3.0),
    }.items():
        out[name] = render(tmp, name, randomize=dr)
    out["sensor"] = render(tmp, "sensor", sensor="primesense")
    return out


def images(root, folder, ext="png"):
    return {str(p.relative_to(root)): cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
            for p in sorted(root.glob(f"train_pbr/*/{folder}/*.{ext}"))}


def same(root_a, root_b, folder, ext="png"):
    a, b = images(root_a, folder, ext), images(root_b, folder, ext)
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def object_pixels(root):
    """(image key -> union of full masks dilated by 2 px) for every image."""
    out = {}
    for scene in sorted((root / "train_pbr").glob("0*")):
        for p in sorted((scene / "rgb").glob("*.png")):
            m = np.zeros(cv2.imread(str(p)).shape[:2], bool)
            for mp in (scene / "mask").glob(f"{p.stem}_*.png"):
                m |= cv2.imread(str(mp), 0) > 0
            out[str(p.relative_to(root))] = cv2.dilate(m.astype(np.uint8), np.ones((5, 5))) > 0
    return out


def test_materials_change_object_pixels_only(variants):
    off, on = variants["off"], variants["materials"]
    assert same(off, on, "mask_visib") and same(off, on, "depth")
    rgb_off, rgb_on, objs = images(off, "rgb"), images(on, "rgb"), object_pixels(off)
    for k in rgb_off:
        inside, outside = objs[k], ~objs[k]
        assert np.array_equal(rgb_off[k][outside], rgb_on[k][outside])
        assert np.abs(rgb_off[k][inside].astype(int) - rgb_on[k][inside]).mean() > 5
    style = json.loads((on / "train_pbr/000000/scene_simdata.json").read_text())["style"]
    assert all(m["kind"] != "keep" for m in style["materials"]) and "materials" in style["randomizers"]


def test_lights_change_shading_not_geometry(variants):
    off, on = variants["off"], variants["lights"]
    assert same(off, on, "mask_visib") and same(off, on, "depth")
    a, b = images(off, "rgb"), images(on, "rgb")
    change = [np.abs(a[k].astype(int) - b[k]).mean() for k in a]
    assert min(change) > 1 and np.mean(change) > 3
    lighting = json.loads((on / "train_pbr/000000/scene_simdata.json").read_text())["lighting"]
    assert lighting["colors"] and lighting["points"]


def test_backgrounds_fill_only_pixels_without_surface(variants):
    off, on = variants["off"], variants["backgrounds"]
    a, b = images(off, "rgb"), images(on, "rgb")
    depth = images(off, "depth")
    changed_any = False
    for k in a:
        empty = depth[k.replace("rgb", "depth")] == 0
        assert np.array_equal(a[k][~empty], b[k][~empty])
        changed_any |= bool((a[k][empty] != b[k][empty]).any())
    assert changed_any
    info = json.loads((on / "train_pbr/000000/scene_simdata.json").read_text())
    assert info["images"][0]["background"] == "procedural"


def test_distractors_occlude_but_are_not_labelled(variants):
    from helpers import check_dataset_geometry

    on = variants["distractors"]
    kept = [json.loads(p.read_text())["style"]["distractors_kept"]
            for p in on.glob("train_pbr/*/scene_simdata.json")]
    assert sum(kept) >= 1
    names = {v["name"] for v in json.loads((on / "objects.json").read_text()).values()}
    for p in on.glob("train_pbr/*/scene_simdata.json"):
        assert set(json.loads(p.read_text())["objects"]) <= names
    assert check_dataset_geometry(on, min_px=30) >= 1  # visible masks still match the depth


def test_camera_jitter_moves_cameras_not_objects(variants):
    off, on = variants["off"], variants["camera"]
    for scene in ("000000", "000001"):
        ca = json.loads((off / "train_pbr" / scene / "scene_camera.json").read_text())
        cb = json.loads((on / "train_pbr" / scene / "scene_camera.json").read_text())
        ga = json.loads((off / "train_pbr" / scene / "scene_gt.json").read_text())
        gb = json.loads((on / "train_pbr" / scene / "scene_gt.json").read_text())
        for im in ca:
            assert not np.allclose(ca[im]["cam_R_w2c"], cb[im]["cam_R_w2c"])
            for g1, g2 in zip(ga[im], gb[im]):  # world poses of objects agree
                w1, w2 = (world_pose(c[im], g) for c, g in ((ca, g1), (cb, g2)))
                assert np.allclose(w1, w2, atol=1e-3)


def world_pose(cam, gt):
    R_wc, t_wc = np.array(cam["cam_R_w2c"]).reshape(3, 3), np.array(cam["cam_t_w2c"])
    R_co, t_co = np.array(gt["cam_R_m2c"]).reshape(3, 3), np.array(gt["cam_t_m2c"])
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R_wc.T @ R_co, R_wc.T @ (t_co - t_wc)
    return T


def test_sensor_model_changes_outputs_and_keeps_clean_privileged_channels(variants):
    off, on = variants["off"], variants["sensor"]
    assert same(off, on, "mask_visib")
    # clean channels equal the clean render exactly
    for p in off.glob("train_pbr/*/depth_m/*.npy"):
        assert np.array_equal(np.load(p), np.load(on / p.relative_to(off)))
    a, clean = images(off, "rgb"), images(on, "rgb_clean")
    assert all(np.array_equal(a[k], clean[k.replace("rgb", "rgb_clean")]) for k in a)
    noisy, d_off, d_on = images(on, "rgb"), images(off, "depth"), images(on, "depth")
    assert all(not np.array_equal(a[k], noisy[k]) for k in a)
    for k in d_off:
        valid = (d_off[k] > 0) & (d_on[k] > 0)
        assert (d_on[k] == 0).sum() > (d_off[k] == 0).sum()  # holes appeared
        err_mm = np.abs(d_on[k][valid].astype(float) - d_off[k][valid]) * 0.1
        assert 0.2 < np.median(err_mm) < 10  # PrimeSense-like millimetre noise
    info = json.loads((on / "train_pbr/000000/scene_simdata.json").read_text())
    assert info["sensor"] == "primesense" and "photons" in info["images"][0]["sensor"]


def test_randomized_datasets_are_reproducible(tmp_path):
    dr = RandomizationConfig(materials=True, lights=True, backgrounds=True, distractors=(1, 2),
                             camera_jitter_m=0.01, camera_jitter_deg=2)
    a = render(tmp_path, "a", randomize=dr, sensor="realsense")
    b = render(tmp_path, "b", randomize=dr, sensor="realsense", workers=2)

    def hashes(root):
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file() and p.name != "simdata_settings.json"}
    assert hashes(a) == hashes(b)


def test_pattern_helpers_and_config_file(tmp_path):
    assert len(np.unique(pattern_image("checker", [0, 0, 0], [1, 1, 1]).reshape(-1, 3), axis=0)) == 2
    with pytest.raises(ValueError):
        pattern_image("marble", [0, 0, 0], [1, 1, 1])
    cols = vertex_pattern(np.random.default_rng(0).random((50, 3)), "checker", [0, 0, 0], [1, 1, 1], 0.3)
    assert cols.shape == (50, 4) and len(np.unique(cols[:, 0])) == 2
    warm, cold = kelvin_to_rgb(2700), kelvin_to_rgb(7500)
    assert warm[0] > warm[2] and cold[2] > cold[0]
    f = tmp_path / "dr.json"
    f.write_text(json.dumps({"roughness": [0.5, 0.6], "distractors": [1, 2]}))
    cfg = RandomizationConfig.from_file(f, materials=True)
    assert cfg.roughness == (0.5, 0.6) and cfg.materials and cfg.enabled() == ["materials", "distractors"]
    f.write_text(json.dumps({"glitter": True}))
    with pytest.raises(SimdataError, match="unknown keys"):
        RandomizationConfig.from_file(f)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SimdataError, match="holds no images"):
        RandomizationConfig(texture_dir=str(tmp_path / "empty")).validate()


def test_texture_and_background_folders_are_used(tmp_path):
    pics = tmp_path / "pics"
    pics.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(pics / f"photo_{i}.jpg"), rng.integers(0, 255, (90, 120, 3), dtype=np.uint8))
    dr = RandomizationConfig(materials=True, material_prob=1.0, material_kinds=("image",),
                             texture_dir=str(pics), backgrounds=True, background_dir=str(pics))
    out = render(tmp_path, "folders", randomize=dr)
    info = json.loads((out / "train_pbr/000000/scene_simdata.json").read_text())
    assert {m["kind"] for m in info["style"]["materials"]} == {"image"}
    assert all(m["image"].startswith(str(pics)) for m in info["style"]["materials"])
    assert info["images"][0]["background"].startswith(str(pics))


def test_wrist_grippers_stay_in_front_of_the_camera_and_short_of_the_table():
    from simdata.randomize import draw_gripper, edge_clearance_m
    from simdata.transforms import look_at
    from simdata.types import PRIMESENSE

    down = look_at(np.array([0.0, 0.0, 0.7]), np.zeros(3), roll_rad=0.0)
    assert np.allclose(edge_clearance_m([down], PRIMESENSE), 0.7, atol=1e-6)
    tilted = look_at(np.array([0.0, -0.5, 0.5]), np.zeros(3), roll_rad=0.0)
    bottom, left, top, right = edge_clearance_m([tilted], PRIMESENSE)
    assert bottom < left < top and left == pytest.approx(right)  # the bottom sees the table nearest
    rng = np.random.default_rng(0)
    edges = []
    for _ in range(200):
        mesh, T, size = draw_gripper(rng, np.full(4, 0.7))
        z = (mesh.vertices @ T[:3, :3].T + T[:3, 3])[:, 2]
        assert 0.05 < z.min() and z.max() < 0.7 and (size > 0).all()
        edges.append(T[1, 3] > abs(T[0, 3]))  # the palm at the image's bottom edge
    assert 0.35 < np.mean(edges) < 0.65
