"""Field names, shapes and units of the BOP files, and the torch reader."""
import json

import numpy as np
import torch

from simdata import BopDataset


def load(p):
    return json.loads(p.read_text())


def test_dataset_level_files(small_dataset, assets_dir):
    cam = load(small_dataset / "camera.json")
    assert set(cam) == {"cx", "cy", "depth_scale", "fx", "fy", "height", "width"}
    assert (cam["width"], cam["height"], cam["depth_scale"]) == (320, 240, 0.1)
    info = load(small_dataset / "models" / "models_info.json")
    names = load(small_dataset / "objects.json")
    assert set(info) == set(names) and len(info) == len(list(assets_dir.iterdir()))
    for oid, mi in info.items():
        base = {"diameter", "min_x", "min_y", "min_z", "size_x", "size_y", "size_z"}
        assert base <= set(mi) <= base | {"symmetries_discrete", "symmetries_continuous"}
        ply = small_dataset / "models" / f"obj_{int(oid):06d}.ply"
        header = ply.read_bytes().split(b"end_header")[0].decode()
        for prop in ("property float x", "property float nx", "property uchar red",
                     "property list uchar int vertex_indices", "binary_little_endian"):
            assert prop in header
        # millimetres: a tomato soup can is 66 x 66 x 101 mm
        if names[oid]["name"] == "005_tomato_soup_can":
            assert np.allclose([mi["size_x"], mi["size_y"], mi["size_z"]], [66, 66, 101], atol=1)
            assert 115 < mi["diameter"] < 125  # the can's diagonal, sqrt(66^2 + 101^2)


def test_scene_files_fields_and_units(small_dataset):
    scene = small_dataset / "train_pbr" / "000000"
    cams, gts, infos = (load(scene / n) for n in ("scene_camera.json", "scene_gt.json",
                                                   "scene_gt_info.json"))
    assert set(cams) == set(gts) == set(infos) == {"0", "1"}
    for im in cams:
        c = cams[im]
        assert set(c) == {"cam_K", "depth_scale", "cam_R_w2c", "cam_t_w2c"}
        R = np.array(c["cam_R_w2c"]).reshape(3, 3)
        assert np.allclose(R @ R.T, np.eye(3), atol=1e-6)
        cam_pos_mm = -R.T @ np.array(c["cam_t_w2c"])
        assert 300 < np.linalg.norm(cam_pos_mm) < 1400  # 0.55-1.0 m away from objects, in mm
        assert cam_pos_mm[2] > 0  # above the table
        for gt, info in zip(gts[im], infos[im]):
            assert set(gt) == {"cam_R_m2c", "cam_t_m2c", "obj_id"}
            assert 300 < gt["cam_t_m2c"][2] < 1400
            assert set(info) == {"bbox_obj", "bbox_visib", "px_count_all", "px_count_valid",
                                 "px_count_visib", "visib_fract"}
        assert (scene / "rgb" / f"{int(im):06d}.jpg").exists()
    simdata = load(scene / "scene_simdata.json")
    assert {"table", "lighting", "objects", "dropped", "settle_steps"} <= set(simdata)


def test_bop_dataset_reader_shapes_and_units(small_dataset):
    ds = BopDataset(small_dataset)
    assert len(ds) == 4
    s = ds[0]
    n = len(s["obj_ids"])
    assert s["rgb"].shape == (3, 240, 320) and s["rgb"].dtype == torch.float32
    assert 0 <= s["rgb"].min() and s["rgb"].max() <= 1
    assert s["depth"].shape == (1, 240, 320) and 0.2 < s["depth"][s["depth"] > 0].median() < 2.0
    assert s["R"].shape == (n, 3, 3) and s["t"].shape == (n, 3)
    assert (0.2 < s["t"][:, 2]).all() and (s["t"][:, 2] < 1.5).all()  # metres
    assert s["masks_visib"].shape == (n, 240, 320) and s["masks"].dtype == torch.bool
    assert s["normals"].shape == (3, 240, 320)
    gt = load(small_dataset / "train_pbr" / "000000" / "scene_gt.json")["0"]
    assert s["obj_ids"].tolist() == [g["obj_id"] for g in gt]
    loader = torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=BopDataset.collate)
    batch = next(iter(loader))
    assert batch["rgb"].shape == (2, 3, 240, 320) and len(batch["R"]) == 2


def test_bop_dataset_filters_by_visibility(small_dataset):
    all_ = sum(len(BopDataset(small_dataset)[i]["obj_ids"]) for i in range(4))
    strict = sum(len(BopDataset(small_dataset, min_visib_fract=0.999)[i]["obj_ids"]) for i in range(4))
    assert strict <= all_


def test_gt_info_counts_are_the_written_masks(small_dataset):
    """scene_gt_info's pixel counts and visible boxes are those of the mask PNGs (counted
    inside each object's projected box: nothing of a silhouette may lie outside it)."""
    import cv2

    scene = small_dataset / "train_pbr" / "000000"
    infos = load(scene / "scene_gt_info.json")
    for im, per_object in infos.items():
        depth = cv2.imread(str(scene / "depth" / f"{int(im):06d}.png"), cv2.IMREAD_UNCHANGED)
        for k, info in enumerate(per_object):
            name = f"{int(im):06d}_{k:06d}.png"
            full = cv2.imread(str(scene / "mask" / name), cv2.IMREAD_UNCHANGED) > 0
            visib = cv2.imread(str(scene / "mask_visib" / name), cv2.IMREAD_UNCHANGED) > 0
            assert info["px_count_all"] == full.sum() > 0
            assert info["px_count_visib"] == visib.sum()
            assert info["px_count_valid"] == (full & (depth > 0)).sum()
            ys, xs = np.nonzero(visib)
            assert info["bbox_visib"] == ([int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1,
                                           int(np.ptp(ys)) + 1] if len(xs) else [-1, -1, -1, -1])
            x, y, w, h = info["bbox_obj"]
            fy, fx = np.nonzero(full)
            assert x <= fx.min() and fx.max() < x + w and y <= fy.min() and fy.max() < y + h


def test_normals_codec_matches_its_arithmetic():
    """The table-lookup decoding of the geometry pass's normals and the PNG encoding give the
    numbers of the plain float32 arithmetic, to the bit."""
    from simdata.render import _decode_normals
    from simdata.writers.bop import encode_normals

    rgb = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    rgb[:5] = 0  # nothing drawn
    rgb[5, :4] = [[0, 0, 1], [255, 255, 255], [128, 128, 128], [0, 255, 0]]
    ref = rgb.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    ref[..., 1:] *= -1
    ref /= np.maximum(np.linalg.norm(ref, axis=-1, keepdims=True), 1e-6)
    ref[~rgb.any(axis=-1)] = 0.0
    n = _decode_normals(rgb)
    assert n.dtype == np.float32 and np.array_equal(n, ref)
    enc = np.where(ref.any(-1, keepdims=True), np.round((ref + 1.0) * 127.5), 0).astype(np.uint8)
    assert np.array_equal(encode_normals(n), enc) and not encode_normals(n)[:5].any()


def test_normals_decoding_matches_its_arithmetic_for_every_byte_triple():
    """All 2^24 colours the geometry pass can write decode to the float32 arithmetic's
    normals, to the bit (the decoder looks channels up with cv2.LUT; its SIMD path must not
    round differently), from flipped views of read-back RGB and RGBA buffers."""
    from simdata.render import _decode_normals

    codes = np.arange(1 << 24, dtype=np.uint32)
    for chunk in np.split(codes, 4):
        rgb = np.stack([chunk >> 16, (chunk >> 8) & 255, chunk & 255], -1).astype(np.uint8)
        rgb = np.flip(rgb.reshape(2048, 2048, 3), axis=0)
        ref = rgb.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
        ref[..., 1:] *= -1
        ref /= np.maximum(np.linalg.norm(ref, axis=-1, keepdims=True), 1e-6)
        ref[~rgb.any(axis=-1)] = 0.0
        assert np.array_equal(_decode_normals(rgb).view(np.uint32), ref.view(np.uint32))
        rgba = np.flip(np.dstack([rgb[::-1], np.full(rgb.shape[:2], 7, np.uint8)]), axis=0)
        assert np.array_equal(_decode_normals(rgba).view(np.uint32), ref.view(np.uint32))


def test_png_encoding_is_lossless_for_every_kind(tmp_path):
    """Masks, uint16 depth and RGB go through the fast PNG settings and read back unchanged."""
    from simdata.fileio import read_image, write_image

    rng = np.random.default_rng(1)
    mask = np.zeros((48, 64), np.uint8)
    mask[10:30, 5:40] = 255
    images = {"mask.png": mask, "depth.png": rng.integers(0, 65536, (48, 64), dtype=np.uint16),
              "rgb.png": rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
              "gray.png": rng.integers(0, 256, (48, 64), dtype=np.uint8)}
    for name, img in images.items():
        write_image(tmp_path / name, img)
        back = read_image(tmp_path / name)
        assert back.dtype == img.dtype and np.array_equal(back, img), name
