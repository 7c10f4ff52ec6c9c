"""What a net sees, in numpy and OpenCV only: the normalisation of colour, depth and height above
the table, and whole images resized, normalised and padded for a fully convolutional net, with
their label maps brought back to the image's size.

The training data (adapt.data, adapt.scenes), ``adapt predict`` and ``adapt eval`` (torch) and
the dependency-light runtime (adapt.runtime: numpy, OpenCV, onnxruntime) all call these
functions, so what a net sees is the same in all of them.

Units and shapes: depth (H, W) float32 metres along the optical axis, 0 = no reading; colour
(H, W, 3) float32 RGB in [0, 1]; a net input (C, H, W) float32 in [-1, 1], channels in the
order of CHANNELS' names (colour first). Nothing here imports torch.
"""
from __future__ import annotations

import cv2
import numpy as np

CHANNELS = {"rgb": 3, "rgbd": 4, "depth": 1, "rgbh": 4, "height": 1}
DEPTH_RANGE_M = 0.1  # depth enters the nets as (z - median z of the image) / 0.1 m, clipped
DEPTH_NORMALISATION = ("(z - median of the image's valid z) / 0.1 m, clipped to [-1, 1]; +1 (far) "
                       "where the sensor has no reading")
PLANE_INLIER_M = 0.01  # a depth reading within 1 cm (along the ray) of a plane supports it
PLANE_SAMPLES, PLANE_HYPOTHESES = 1024, 128
HEIGHT_NORMALISATION = ("height above the image's dominant plane (the table: RANSAC fit of 1/z as an "
                        f"affine function of the pixel, {PLANE_INLIER_M * 100:g} cm inlier band, "
                        f"{PLANE_HYPOTHESES} hypotheses from {PLANE_SAMPLES} pixels drawn with "
                        "numpy.random.default_rng(0)), measured along the ray as z_plane - z, in "
                        "metres / 0.1, clipped to [-1, 1]; -1 beyond the plane's horizon; holes (no "
                        "reading) are inpainted first (OpenCV Navier-Stokes, radius 3 px)")
PAD_MULTIPLE = 8  # whole images are padded (edge values) to a multiple of this for the dense nets


def input_description(channels: str) -> str:
    """What a net's input holds, in words (export metadata)."""
    rgb = "rgb * 2 - 1 (rgb in [0,1])"
    return {"rgb": rgb, "depth": f"depth: {DEPTH_NORMALISATION}",
            "rgbd": f"{rgb}, then depth: {DEPTH_NORMALISATION}",
            "height": f"height: {HEIGHT_NORMALISATION}",
            "rgbh": f"{rgb}, then height: {HEIGHT_NORMALISATION}"}[channels]


def normalise_depth(depth: np.ndarray) -> np.ndarray:
    """(H,W) metres (0 = no reading) -> (H,W) float32 in [-1,1] (see DEPTH_NORMALISATION).

    Relative to the image's median (the lower middle value for an even count), so it does not
    change when the camera moves along its axis (every z shifts by the same amount)."""
    depth = np.asarray(depth, np.float32)
    valid = depth > 0
    med = np.float32(0.0)
    if valid.any():
        vals = depth[valid]
        k = (len(vals) - 1) // 2
        med = np.partition(vals, k)[k]
    rel = np.clip((depth - med) / np.float32(DEPTH_RANGE_M), -1, 1)
    return np.where(valid, rel, np.float32(1.0)).astype(np.float32)


def fit_plane_inverse_depth(depth: np.ndarray) -> np.ndarray | None:
    """(H,W) metres (0 = no reading) -> coefficients (3,) float64 of the dominant plane as
    1/z = a u + b v + c (u, v pixel coordinates divided by the image width), or None with
    fewer than 3 readings.

    A plane seen by a pinhole camera has an inverse depth affine in the pixel, whatever K is,
    so no intrinsics are needed. RANSAC with a fixed generator (the same image gives the same
    plane), inliers within PLANE_INLIER_M along the ray, then a least-squares refit on them."""
    h, w = depth.shape
    vs, us = np.nonzero(depth > 0)
    if len(us) < 3:
        return None
    rng = np.random.default_rng(0)
    pick = rng.permutation(len(us))[:PLANE_SAMPLES]
    z = depth[vs[pick], us[pick]].astype(np.float64)
    A = np.stack([us[pick] / w, vs[pick] / w, np.ones_like(z)], 1)
    tri = rng.integers(len(z), size=(PLANE_HYPOTHESES, 3))
    M, b = A[tri], (1 / z)[tri]
    ok = np.abs(np.linalg.det(M)) > 1e-12  # a repeated or collinear triple gives no plane
    sol = np.zeros((PLANE_HYPOTHESES, 3))
    if ok.any():
        sol[ok] = np.linalg.solve(M[ok], b[ok][:, :, None])[:, :, 0]
    with np.errstate(divide="ignore"):
        zp = 1 / (A @ sol.T)  # (samples, hypotheses) plane depth along each sample's ray
    inliers = (np.abs(zp - z[:, None]) < PLANE_INLIER_M) & (zp > 0)
    coef = sol[np.where(ok, inliers.sum(0), -1).argmax()]
    for _ in range(2):  # refit on the inliers, then once more on the refit's inliers
        inv = A @ coef
        with np.errstate(divide="ignore"):
            keep = (np.abs(1 / inv - z) < PLANE_INLIER_M) & (inv > 0)
        if keep.sum() < 3:
            break
        Ak = A[keep]  # normal equations by plain sums
        N = (Ak[:, :, None] * Ak[:, None, :]).sum(0)
        if abs(np.linalg.det(N)) <= 1e-18:
            break
        coef = np.linalg.solve(N, (Ak / z[keep][:, None]).sum(0))
    return coef


def plane_inverse_depth(coef, u, v, width: int):
    """1/z of the plane ``coef`` (:func:`fit_plane_inverse_depth`) at pixels (u, v) of an image
    ``width`` px wide (numbers or arrays)."""
    return coef[0] * u / width + coef[1] * v / width + coef[2]


def fill_holes(depth: np.ndarray) -> np.ndarray:
    """(H,W) metres with 0 = no reading -> the same with the holes inpainted from their borders
    (simdata.grasping.depth_check.inpaint_holes: OpenCV's Navier-Stokes method, radius 3 px;
    its Telea method is unstable on float depth), as Dex-Net and GQ-CNN process their depth
    frames.
    Raw sensors leave holes beside edges (the projector's shadow), on dark surfaces and on what
    is nearer than their range (a wrist camera's own gripper); processed frames are inpainted
    into smooth ramps there. Filling holes the same way on both sides gives a net one pattern
    to learn instead of two."""
    from simdata.grasping.depth_check import inpaint_holes

    return inpaint_holes(depth)


def height_above_plane(depth: np.ndarray) -> np.ndarray:
    """(H,W) metres (0 = no reading) -> (H,W) float32 in [-1,1] (see HEIGHT_NORMALISATION).

    z_plane - z along each ray: 0 on the table, positive for what stands on it, negative beyond
    its edge. Moving the camera along its axis shifts z and z_plane alike, so it is unchanged.
    The plane is fitted to the readings; the heights of holes come from the filled depth."""
    depth = np.asarray(depth, np.float32)
    h, w = depth.shape
    coef = fit_plane_inverse_depth(depth)
    if coef is None:
        return np.zeros((h, w), np.float32)
    d = fill_holes(depth).astype(np.float64)
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    inv = plane_inverse_depth(coef, u, v, w)
    rel = np.clip(np.where(inv > 0, (1 / np.maximum(inv, 1e-9) - d) / DEPTH_RANGE_M, -1.0), -1, 1)
    return np.where(d > 0, rel, 0.0).astype(np.float32)


def depth_channel(depth: np.ndarray, channels: str) -> np.ndarray:
    """The depth-derived channel (H,W) float32 of ``channels``: height above the table for
    rgbh / height, the normalised depth for rgbd / depth."""
    return height_above_plane(depth) if channels in ("rgbh", "height") else normalise_depth(depth)


def net_input(rgb: np.ndarray | None, depth: np.ndarray | None, channels: str) -> np.ndarray:
    """(C,H,W) float32 in [-1,1], C = CHANNELS[channels]: rgb (H,W,3) float32 in [0,1] as
    rgb * 2 - 1, then the depth channel (:func:`depth_channel`) of depth (H,W) metres."""
    if channels not in CHANNELS:
        raise ValueError(f"channels {channels!r}: one of {', '.join(CHANNELS)}")
    parts = []
    if channels in ("rgb", "rgbd", "rgbh"):
        parts.append(np.asarray(rgb, np.float32).transpose(2, 0, 1) * 2 - 1)
    if channels != "rgb":
        parts.append(depth_channel(depth, channels)[None])
    return np.concatenate(parts).astype(np.float32)


def as_unit_rgb(rgb: np.ndarray) -> np.ndarray:
    """(H,W,3) uint8 RGB (or float in [0,1]) -> float32 in [0,1]."""
    rgb = np.asarray(rgb)
    return rgb.astype(np.float32) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float32)


def image_input(rgb: np.ndarray | None, depth: np.ndarray | None, channels: str,
                height: int) -> tuple[np.ndarray, int]:
    """A whole image as a dense net takes it: rgb (H,W,3) float32 in [0,1] (None for depth-only
    channels) resized to ``height`` rows (aspect kept; bilinear), depth (H,W) metres (nearest;
    None for rgb), normalised (:func:`net_input`) and padded with edge values to multiples of
    PAD_MULTIPLE. Returns (x (1,C,H',W') float32, the resized width nw); the net's output
    [..., :height, :nw] covers the image."""
    h, w = (depth if rgb is None else rgb).shape[:2]
    nw = int(round(w * height / h))
    r = d = None
    if channels in ("rgb", "rgbd", "rgbh"):
        r = np.asarray(rgb, np.float32)
        r = r if r.shape[:2] == (height, nw) else cv2.resize(r, (nw, height), interpolation=cv2.INTER_LINEAR)
    if channels != "rgb":
        d = np.asarray(depth, np.float32)
        d = d if d.shape == (height, nw) else cv2.resize(d, (nw, height), interpolation=cv2.INTER_NEAREST)
    x = net_input(r, d, channels)
    x = np.pad(x, ((0, 0), (0, (-height) % PAD_MULTIPLE), (0, (-nw) % PAD_MULTIPLE)), mode="edge")
    return x[None], nw


def labels_at_image_size(logits: np.ndarray, height: int, nw: int, hw: tuple[int, int]) -> np.ndarray:
    """(C,H',W') class scores of :func:`image_input`'s x -> (H,W) uint8 labels of the original
    image (argmax, then nearest resizing)."""
    labels = logits[:, :height, :nw].argmax(0).astype(np.uint8)
    return cv2.resize(labels, (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST)
