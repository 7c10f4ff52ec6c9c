"""ImageFolder: real target-domain images with depth and intrinsics, whole or cropped."""
import json

import cv2
import numpy as np
import pytest
import torch

from simdata import ImageFolder
from simdata.errors import SimdataError


@pytest.fixture(scope="module")
def ycbv_demo():
    from conftest import SHARED

    path = SHARED / "real" / "ycbv_demo"
    if not path.is_dir():
        pytest.skip(f"{path} is absent (real frames live in ../shared on dev machines and CI)")
    return path


def test_reads_the_ycbv_demo_frames_as_they_are(ycbv_demo):
    ds = ImageFolder(ycbv_demo)
    assert len(ds) == 5
    s = ds[0]
    assert s["rgb"].shape == (3, 480, 640) and s["has_depth"]
    valid = s["depth"][s["depth"] > 0]
    assert 0.3 < float(valid.median()) < 2.0  # millimetres read as metres
    assert s["K"][0, 0] == pytest.approx(618.0, abs=0.1) and s["K"][1, 2] == pytest.approx(232.4, abs=0.1)
    assert "color" in s["path"]
    loader = torch.utils.data.DataLoader(ImageFolder(ycbv_demo, crop_size=64), batch_size=5)
    batch = next(iter(loader))
    assert batch["rgb"].shape == (5, 3, 64, 64) and batch["depth"].shape == (5, 1, 64, 64)


def test_random_crops_are_seeded_and_keep_intrinsics_consistent(ycbv_demo):
    a, b = ImageFolder(ycbv_demo, crop_size=64, seed=1), ImageFolder(ycbv_demo, crop_size=64, seed=1)
    assert torch.equal(a[2]["rgb"], b[2]["rgb"])
    assert not torch.equal(a[2]["rgb"], ImageFolder(ycbv_demo, crop_size=64, seed=2)[2]["rgb"])
    half = ImageFolder(ycbv_demo, resize=240, crops="center", crop_size=200)[0]
    assert half["rgb"].shape == (3, 200, 200)
    assert half["K"][0, 0] == pytest.approx(618.0 / 2 * 200 / 200, rel=1e-3)


def test_npy_depth_pairs_plain_images_and_errors(tmp_path):
    rgb = np.zeros((60, 80, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "rgb_0001.png"), rgb)
    np.save(tmp_path / "depth_0001.npy", np.full((60, 80), 0.8, np.float32))
    cv2.imwrite(str(tmp_path / "photo.jpg"), rgb)
    ds = ImageFolder(tmp_path)
    items = {p["path"].split("/")[-1]: p for p in (ds[i] for i in range(len(ds)))}
    assert set(items) == {"rgb_0001.png", "photo.jpg"}
    assert items["rgb_0001.png"]["has_depth"] and float(items["rgb_0001.png"]["depth"].max()) == pytest.approx(0.8)
    assert not items["photo.jpg"]["has_depth"] and torch.isnan(items["photo.jpg"]["K"]).all()
    np.save(tmp_path / "depth_0001.npy", np.zeros((10, 10), np.float32))
    index = [it["rgb"].name for it in ds.items].index("rgb_0001.png")
    with pytest.raises(SimdataError, match="pair files of the same size"):
        ImageFolder(tmp_path)[index]
    with pytest.raises(SimdataError, match="crops='mask' needs object masks"):
        ImageFolder(tmp_path, crop_size=32, crops="mask")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SimdataError, match="no images"):
        ImageFolder(tmp_path / "empty")
    with pytest.raises(SimdataError, match="does not exist"):
        ImageFolder(tmp_path / "missing")


def test_bop_layout_with_mask_guided_crops(small_dataset):
    ds = ImageFolder(small_dataset / "train_pbr", crop_size=48, crops="mask")
    assert len(ds) == 4
    s = ds[0]
    assert s["has_depth"] and s["rgb"].shape == (3, 48, 48)
    assert (s["depth"] > 0).float().mean() > 0.5  # the window sits on an object, not the void
    cam = json.loads((small_dataset / "train_pbr/000000/scene_camera.json").read_text())["0"]
    full = ImageFolder(small_dataset / "train_pbr")[0]
    assert np.allclose(full["K"].numpy().ravel(), cam["cam_K"], atol=1e-4)
