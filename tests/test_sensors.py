"""Each sensor effect changes the statistic it models, is seeded, and leaves its input alone."""
import cv2
import numpy as np
import pytest

from simdata import sensors as S


def rng(seed=0):
    return np.random.default_rng(seed)


def gray(v=128, shape=(96, 128)):
    return np.full((*shape, 3), v, np.uint8)


def checker(shape=(96, 128), cell=4):
    y, x = np.indices(shape)
    img = (((x // cell) + (y // cell)) % 2 * 255).astype(np.uint8)
    return np.repeat(img[..., None], 3, -1)


def sharpness(img):
    return cv2.Laplacian(img[..., 1].astype(np.float64), cv2.CV_64F).var()


def test_shot_noise_grows_as_photons_fall_and_keeps_the_mean():
    img = gray()
    lo = S.poisson_gaussian_noise(img, rng(), photons=200, read_std=0)
    hi = S.poisson_gaussian_noise(img, rng(), photons=20000, read_std=0)
    assert lo.std() > 3 * hi.std() > 0
    assert abs(lo.mean() - 128) < 1.5
    assert np.array_equal(lo, S.poisson_gaussian_noise(img, rng(), 200, 0))
    assert not np.array_equal(lo, S.poisson_gaussian_noise(img, rng(1), 200, 0))


def test_blurs_remove_detail_in_their_direction():
    img = checker()
    assert sharpness(S.defocus_blur(img, 2.0)) < 0.2 * sharpness(img)
    assert np.array_equal(S.defocus_blur(img, 0.2), img)
    y, x = np.indices((96, 128))
    stripes = np.repeat(((x % 2) * 255).astype(np.uint8)[..., None], 3, -1)  # vary along x
    along = S.motion_blur(stripes, 9, 0.0)    # horizontal motion smears vertical stripes
    across = S.motion_blur(stripes, 9, 90.0)  # vertical motion leaves them
    assert np.abs(np.diff(along[..., 0].astype(int), axis=1)).mean() < \
        0.3 * np.abs(np.diff(across[..., 0].astype(int), axis=1)).mean()


def test_chromatic_aberration_moves_red_and_blue_not_green():
    img = checker()
    out = S.chromatic_aberration(img, 2.0)
    assert np.array_equal(out[..., 1], img[..., 1])
    assert (out[..., 0] != img[..., 0]).mean() > 0.05
    # the shift is zero at the centre and grows outwards
    c = (slice(44, 52), slice(60, 68))
    assert (out[c][..., 0] != img[c][..., 0]).mean() < (out[..., 0] != img[..., 0]).mean()


def test_white_balance_exposure_and_vignetting():
    img = gray(100)
    out = S.white_balance_exposure(img, [1.2, 1.0, 0.8], 1.0)
    assert out[..., 0].mean() == pytest.approx(240, abs=1)
    assert out[..., 2].mean() == pytest.approx(160, abs=1)
    v = S.vignetting(gray(200), 0.4)
    assert v[48, 64].mean() == pytest.approx(200, abs=1)
    assert v[0, 0].mean() == pytest.approx(200 * 0.6, abs=2)


def test_jpeg_error_grows_as_quality_falls():
    img = checker(cell=3)
    err = [np.abs(S.jpeg_artifacts(img, q).astype(int) - img).mean() for q in (20, 95)]
    assert err[0] > 2 * err[1] > 0


def flat_depth(z=1.0, shape=(96, 128)):
    return np.full(shape, z, np.float32)


def test_axial_noise_follows_the_distance_model():
    a, b, z0 = 0.0012, 0.0019, 0.4
    for z in (0.6, 2.0):
        noisy = S.axial_noise(flat_depth(z, (200, 200)), rng(), a, b, z0)
        assert noisy.std() == pytest.approx(a + b * (z - z0) ** 2, rel=0.1)
    assert not S.axial_noise(np.zeros((10, 10)), rng(), a, b, z0).any()  # holes stay holes


def test_edge_effects_touch_only_depth_discontinuities():
    d = flat_depth(1.0)
    d[30:60, 40:80] = 0.7
    edges = S.edge_dropout(d, rng(), jump_m=0.05, prob=1.0)
    dropped = (edges == 0) & (d > 0)
    assert dropped.any()
    assert not dropped[5:25, 5:35].any() and not dropped[40:50, 50:70].any()
    lat = S.lateral_noise(d, rng(), 1.0)
    changed = lat != d
    assert changed.any() and not changed[5:25, 5:35].any() and not changed[40:50, 50:70].any()


def test_grazing_and_dark_surfaces_lose_readings():
    d = flat_depth(1.0)
    normals = np.zeros((96, 128, 3), np.float32)
    normals[..., 2] = -1.0                       # facing the camera
    normals[:, 64:] = [1.0, 0.0, 0.0]            # seen edge-on
    out = S.grazing_dropout(d, normals, rng(), 75, 1.0)
    assert (out[:, :60] > 0).all() and (out[:, 70:] == 0).all()
    rgb = gray(200)
    rgb[:, :32] = 5
    out = S.dark_surface_holes(d, rgb, rng(), 0.1, 1.0)
    assert (out[:, :32] == 0).all() and (out[:, 32:] > 0).all()


def test_disparity_quantisation_steps_grow_with_distance_and_range_clips():
    z = np.linspace(0.5, 3.0, 4000, dtype=np.float32)[None]
    q = S.disparity_quantisation(z, 43.5, 0.125)[0]
    levels = np.unique(q)
    step_near = np.diff(levels[levels < 0.7]).mean()
    step_far = np.diff(levels[levels > 2.5]).mean()
    assert step_far > 10 * step_near
    assert np.abs(q - z[0]).max() <= 3.0 ** 2 * 0.125 / 43.5  # half a step at 3 m, and then some
    assert not S.clip_range(np.array([0.2, 1.0, 5.0]), 0.4, 4.0)[[0, 2]].any()


def test_projector_shadow_is_a_band_beside_near_surfaces_as_wide_as_their_disparity_step():
    depth = np.full((10, 200), 1.0, np.float32)
    depth[:, 80:100] = 0.5  # a near box on a far wall
    fb = 500 * 0.075
    step = fb * (1 / 0.5 - 1 / 1.0)  # 37.5 px of disparity between the box and the wall
    right = S.projector_shadow(depth, fb, "right")
    hole = np.nonzero(right[0] == 0)[0]
    assert hole.min() == 100 and abs(len(hole) - step) <= 2  # beside the box, on its right
    assert (right[:, :100] == depth[:, :100]).all()  # the box and the wall before it are seen
    left = S.projector_shadow(depth, fb, "left")
    assert np.array_equal(left[:, ::-1], S.projector_shadow(depth[:, ::-1].copy(), fb, "right"))
    tilted = np.tile(np.linspace(0.6, 1.2, 200, dtype=np.float32), (4, 1))
    assert np.array_equal(S.projector_shadow(tilted, fb, "right"), tilted)  # a smooth surface casts none
    with_holes = depth.copy()
    with_holes[:, 10:20] = 0  # no reading hides nothing
    assert (S.projector_shadow(with_holes, fb, "right")[:, 20:80] > 0).all()


def test_presets_are_seeded_record_their_draws_and_keep_inputs():
    rgb, depth = checker(), flat_depth(0.9)
    normals = np.zeros((96, 128, 3), np.float32)
    normals[..., 2] = -1
    keep_rgb, keep_depth = rgb.copy(), depth.copy()
    clean = S.apply_sensor(S.get_sensor("clean"), rng(), rgb, depth, normals)
    assert np.array_equal(clean[0], rgb) and np.array_equal(clean[1], depth) and clean[2] == {}
    for name in ("primesense", "realsense"):
        a = S.apply_sensor(S.get_sensor(name), rng(3), rgb, depth, normals)
        b = S.apply_sensor(S.get_sensor(name), rng(3), rgb, depth, normals)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
        assert not np.array_equal(a[0], rgb) and not np.array_equal(a[1], depth)
        assert {"photons", "jpeg_quality", "lateral_px"} <= set(a[2])
        assert "shadow_side" not in a[2]  # no focal length given: no shadow band
        assert S.apply_sensor(S.get_sensor(name), rng(3), rgb, depth, normals, fx=500.0)[2]["shadow_side"] \
            in ("left", "right")
    assert np.array_equal(rgb, keep_rgb) and np.array_equal(depth, keep_depth)
    with pytest.raises(Exception, match="unknown --sensor"):
        S.get_sensor("kinect9000")
