"""Real-sensor models applied after rendering: pure functions of (image, rng, parameters).

RGB effects work on uint8 (H,W,3) images; depth effects on float (H,W) z-depth in metres
(0 = no reading). Every function returns a new array and leaves its input untouched, so the
clean render stays available as privileged data.

Depth follows structured-light sensors (Kinect v1 / PrimeSense) measured by Nguyen et al.,
"Modeling Kinect Sensor Noise for Improved 3D Reconstruction and Tracking" (3DIMPVT 2012):
axial noise sigma_z(z) = a + b (z - z0)^2, lateral noise of about one pixel at edges, missing
readings at depth discontinuities and grazing angles, disparity quantisation.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .errors import SimdataError


# ----------------------------------------------------------------------------- RGB
def poisson_gaussian_noise(rgb: np.ndarray, rng, photons: float, read_std: float) -> np.ndarray:
    """Shot noise (Poisson, ``photons`` electrons at full scale) plus read noise (std, in
    0-255 units)."""
    x = rgb.astype(np.float64) / 255.0
    shot = rng.poisson(x * photons) / photons
    out = shot * 255.0 + rng.normal(0.0, read_std, rgb.shape)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def defocus_blur(rgb: np.ndarray, radius_px: float) -> np.ndarray:
    """Blur with a disc of ``radius_px`` (thin-lens defocus)."""
    if radius_px < 0.5:
        return rgb.copy()
    r = int(np.ceil(radius_px))
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    k = (x * x + y * y <= radius_px ** 2).astype(np.float32)
    return cv2.filter2D(rgb, -1, k / k.sum(), borderType=cv2.BORDER_REFLECT)


def motion_blur(rgb: np.ndarray, length_px: float, angle_deg: float) -> np.ndarray:
    """Linear motion blur of ``length_px`` along ``angle_deg``."""
    if length_px < 1:
        return rgb.copy()
    n = int(np.ceil(length_px)) | 1
    k = np.zeros((n, n), np.float32)
    k[n // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D(((n - 1) / 2, (n - 1) / 2), angle_deg, 1.0)
    k = cv2.warpAffine(k, rot, (n, n))
    return cv2.filter2D(rgb, -1, k / max(k.sum(), 1e-6), borderType=cv2.BORDER_REFLECT)


def chromatic_aberration(rgb: np.ndarray, shift_px: float) -> np.ndarray:
    """Lateral chromatic aberration: red magnified and blue shrunk about the image centre, so
    that they are ``shift_px`` off green at the corners."""
    if abs(shift_px) < 1e-3:
        return rgb.copy()
    h, w = rgb.shape[:2]
    corner = np.hypot(w / 2, h / 2)
    out = rgb.copy()
    for c, sign in ((0, 1.0), (2, -1.0)):
        s = 1.0 + sign * shift_px / corner
        M = np.array([[s, 0, (1 - s) * (w - 1) / 2], [0, s, (1 - s) * (h - 1) / 2]])
        out[..., c] = cv2.warpAffine(rgb[..., c], M, (w, h), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REFLECT)
    return out


def white_balance_exposure(rgb: np.ndarray, gains_rgb, ev: float) -> np.ndarray:
    """Per-channel gains (white balance error) and an exposure change of ``ev`` stops."""
    out = rgb.astype(np.float64) * np.asarray(gains_rgb) * (2.0 ** ev)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def vignetting(rgb: np.ndarray, strength: float) -> np.ndarray:
    """Darken towards the corners: gain 1 - strength * r^2 (r = 1 at the corners)."""
    h, w = rgb.shape[:2]
    y, x = np.mgrid[0:h, 0:w]
    r2 = ((x - (w - 1) / 2) ** 2 + (y - (h - 1) / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)
    out = rgb.astype(np.float64) * (1.0 - strength * r2)[..., None]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def jpeg_artifacts(rgb: np.ndarray, quality: int) -> np.ndarray:
    """Round trip through a JPEG of ``quality`` (1-100)."""
    ok, buf = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()


# ----------------------------------------------------------------------------- depth
def axial_noise(depth_m: np.ndarray, rng, a: float, b: float, z0: float) -> np.ndarray:
    """Gaussian noise along the ray with std a + b (z - z0)^2 (metres)."""
    sigma = a + b * (depth_m - z0) ** 2
    out = depth_m + rng.normal(0.0, 1.0, depth_m.shape) * sigma
    return np.where(depth_m > 0, np.maximum(out, 0.0), 0.0)


def lateral_noise(depth_m: np.ndarray, rng, sigma_px: float) -> np.ndarray:
    """Each reading is taken from a neighbour offset by N(0, sigma_px) pixels: edges jitter."""
    if sigma_px <= 0:
        return depth_m.copy()
    h, w = depth_m.shape
    dy = np.rint(rng.normal(0, sigma_px, (h, w))).astype(int)
    dx = np.rint(rng.normal(0, sigma_px, (h, w))).astype(int)
    y, x = np.mgrid[0:h, 0:w]
    return depth_m[np.clip(y + dy, 0, h - 1), np.clip(x + dx, 0, w - 1)]


def edge_dropout(depth_m: np.ndarray, rng, jump_m: float, prob: float) -> np.ndarray:
    """Drop readings next to depth discontinuities larger than ``jump_m`` with ``prob``."""
    d = depth_m
    grad = np.zeros_like(d, dtype=bool)
    grad[:, 1:] |= np.abs(np.diff(d, axis=1)) > jump_m
    grad[:, :-1] |= np.abs(np.diff(d, axis=1)) > jump_m
    grad[1:] |= np.abs(np.diff(d, axis=0)) > jump_m
    grad[:-1] |= np.abs(np.diff(d, axis=0)) > jump_m
    drop = grad & (rng.random(d.shape) < prob)
    return np.where(drop, 0.0, d)


def grazing_dropout(depth_m: np.ndarray, normals: np.ndarray, rng, max_angle_deg: float,
                    prob: float) -> np.ndarray:
    """Drop readings whose surface is seen more obliquely than ``max_angle_deg`` (needs the
    camera-frame normals, (H,W,3))."""
    h, w = depth_m.shape
    y, x = np.mgrid[0:h, 0:w]
    ray = np.stack([x - (w - 1) / 2, y - (h - 1) / 2, np.full((h, w), float(max(h, w)))], -1)
    ray /= np.linalg.norm(ray, axis=-1, keepdims=True)
    cos = -(normals * ray).sum(-1)
    grazing = (cos < np.cos(np.radians(max_angle_deg))) & normals.any(-1)
    return np.where(grazing & (rng.random((h, w)) < prob), 0.0, depth_m)


def dark_surface_holes(depth_m: np.ndarray, rgb: np.ndarray, rng, below: float,
                       prob: float) -> np.ndarray:
    """Missing readings on dark (IR-absorbing) surfaces: luminance below ``below`` (0-1)."""
    lum = rgb.astype(np.float64).mean(-1) / 255.0
    return np.where((lum < below) & (rng.random(lum.shape) < prob), 0.0, depth_m)


def disparity_quantisation(depth_m: np.ndarray, focal_baseline: float, subpixel: float) -> np.ndarray:
    """Quantise in disparity (d = fb / z) to steps of ``subpixel`` pixels, as stereo/structured
    light sensors do: the depth step grows with z^2."""
    valid = depth_m > 0
    disp = np.where(valid, focal_baseline / np.where(valid, depth_m, 1.0), 0.0)
    q = np.round(disp / subpixel) * subpixel
    return np.where(valid & (q > 0), focal_baseline / np.where(q > 0, q, 1.0), 0.0)


def projector_shadow(depth_m: np.ndarray, focal_baseline_px_m: float, side: str = "right") -> np.ndarray:
    """No reading where the projector (structured light) or the second imager (active stereo)
    cannot see the surface: the band beside each near-to-far edge that the nearer surface hides
    from a device ``focal_baseline_px_m`` / z pixels of disparity away. ``side`` is the side of
    the near surface on which the band falls in the image ("right": the device sits to the
    camera's left, so it lights the scene from there; as beside objects in GQ-CNN's PrimeSense
    frames).

    Per row, a pixel at column x with disparity d(x) is seen by the device at x + d(x) (x - d(x)
    for "left"); it is hidden when a pixel between it and the device, at x' < x, lands at or
    beyond that column: x' + d(x') >= x + d(x). (H,W) metres, 0 = no reading."""
    d = depth_m
    valid = d > 0
    disp = np.where(valid, focal_baseline_px_m / np.where(valid, d, 1.0), -np.inf)
    x = np.arange(d.shape[1], dtype=np.float64)
    if side == "left":  # mirror, so that the hiding surface is always at smaller x
        disp = disp[:, ::-1]
    seen_at = x + disp
    # the furthest any pixel to the left reaches (strictly to the left: shift by one column)
    reach = np.maximum.accumulate(seen_at, axis=1)
    before = np.concatenate([np.full((d.shape[0], 1), -np.inf), reach[:, :-1]], axis=1)
    hidden = before > seen_at + 0.5  # half a pixel: a smooth surface never hides itself
    if side == "left":
        hidden = hidden[:, ::-1]
    return np.where(hidden, 0.0, d)


def clip_range(depth_m: np.ndarray, min_m: float, max_m: float) -> np.ndarray:
    """No reading outside [min_m, max_m]."""
    return np.where((depth_m >= min_m) & (depth_m <= max_m), depth_m, 0.0)


# ----------------------------------------------------------------------------- the model
Range = tuple[float, float]


@dataclass
class SensorModel:
    """Which effects a sensor has, each a (min, max) range drawn per image, or None = off.

    Units: pixels for blur/shift, stops for exposure, metres for depth, degrees for angles.
    """

    name: str = "clean"
    # RGB
    photons: Range | None = None            # full-scale electrons (shot noise)
    read_std: Range | None = None           # read noise, 0-255 units
    defocus_px: Range | None = None
    motion_px: Range | None = None
    chroma_px: Range | None = None
    wb_gain: Range | None = None            # per-channel gain range
    exposure_ev: Range | None = None
    vignetting: Range | None = None
    jpeg_quality: Range | None = None
    # depth
    axial: tuple[float, float, float] | None = None   # a, b, z0 of a + b (z - z0)^2
    lateral_px: Range | None = None
    edge_jump_m: float = 0.02
    edge_prob: Range | None = None
    grazing_deg: Range | None = None
    grazing_prob: float = 0.8
    dark_below: Range | None = None
    dark_prob: float = 0.5
    disparity: tuple[float, float] | None = None      # focal*baseline (px m), step (px)
    range_m: tuple[float, float] | None = None
    shadow_baseline_m: float | None = None             # projector / second imager offset

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def is_clean(self) -> bool:
        return all(v is None for k, v in asdict(self).items()
                   if k not in ("name", "edge_jump_m", "grazing_prob", "dark_prob"))


SENSOR_PRESETS = {
    "clean": SensorModel(),
    # PrimeSense Carmine / Kinect v1 (structured light, 7.5 cm baseline, 1/8 px disparity)
    "primesense": SensorModel(
        name="primesense", photons=(800, 3000), read_std=(1.0, 3.0), defocus_px=(0.0, 0.8),
        motion_px=(0.0, 2.0), chroma_px=(0.2, 0.8), wb_gain=(0.9, 1.1), exposure_ev=(-0.3, 0.3),
        vignetting=(0.15, 0.35), jpeg_quality=(75, 95),
        axial=(0.0012, 0.0019, 0.4), lateral_px=(0.3, 0.8), edge_prob=(0.3, 0.7),
        grazing_deg=(70, 80), dark_below=(0.05, 0.12), disparity=(43.5, 0.125),
        range_m=(0.4, 4.0), shadow_baseline_m=0.075),
    # Intel RealSense D435 (active stereo, 5 cm baseline), noisier colour, fewer dark holes
    "realsense": SensorModel(
        name="realsense", photons=(500, 2000), read_std=(1.5, 4.0), defocus_px=(0.0, 1.0),
        motion_px=(0.0, 3.0), chroma_px=(0.3, 1.0), wb_gain=(0.85, 1.15), exposure_ev=(-0.5, 0.5),
        vignetting=(0.1, 0.3), jpeg_quality=(70, 95),
        axial=(0.0005, 0.003, 0.0), lateral_px=(0.4, 1.0), edge_prob=(0.4, 0.8),
        grazing_deg=(72, 82), dark_below=(0.03, 0.08), disparity=(19.0, 0.08),
        range_m=(0.17, 6.0), shadow_baseline_m=0.05),
}


def get_sensor(name: str) -> SensorModel:
    if name not in SENSOR_PRESETS:
        raise SimdataError(f"unknown --sensor {name!r}; choose from {', '.join(SENSOR_PRESETS)}")
    return SENSOR_PRESETS[name]


def _draw(rng, r: Range) -> float:
    return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])


def apply_sensor(model: SensorModel, rng, rgb: np.ndarray, depth_m: np.ndarray,
                 normals: np.ndarray | None = None, fx: float | None = None):
    """Apply ``model`` to one rendered view whose focal length is ``fx`` pixels (needed for the
    shadow band; without it there is none). Returns (rgb, depth_m, params) where params are
    the values drawn for this image. The inputs are not modified."""
    p: dict = {}
    out = rgb
    if model.wb_gain or model.exposure_ev:
        gains = [_draw(rng, model.wb_gain) for _ in range(3)] if model.wb_gain else [1.0] * 3
        ev = _draw(rng, model.exposure_ev) if model.exposure_ev else 0.0
        out = white_balance_exposure(out, gains, ev)
        p["wb_gains"], p["exposure_ev"] = gains, ev
    if model.vignetting:
        p["vignetting"] = _draw(rng, model.vignetting)
        out = vignetting(out, p["vignetting"])
    if model.chroma_px:
        p["chroma_px"] = _draw(rng, model.chroma_px)
        out = chromatic_aberration(out, p["chroma_px"])
    if model.defocus_px:
        p["defocus_px"] = _draw(rng, model.defocus_px)
        out = defocus_blur(out, p["defocus_px"])
    if model.motion_px:
        p["motion_px"], p["motion_deg"] = _draw(rng, model.motion_px), float(rng.uniform(0, 180))
        out = motion_blur(out, p["motion_px"], p["motion_deg"])
    if model.photons or model.read_std:
        p["photons"] = _draw(rng, model.photons) if model.photons else 1e9
        p["read_std"] = _draw(rng, model.read_std) if model.read_std else 0.0
        out = poisson_gaussian_noise(out, rng, p["photons"], p["read_std"])
    if model.jpeg_quality:
        p["jpeg_quality"] = int(round(_draw(rng, model.jpeg_quality)))
        out = jpeg_artifacts(out, p["jpeg_quality"])

    d = depth_m
    if model.shadow_baseline_m and fx:
        # which side the device sits on depends on how the camera is mounted: draw it
        p["shadow_side"] = str(rng.choice(["left", "right"]))
        d = projector_shadow(d, fx * model.shadow_baseline_m, p["shadow_side"])
    if model.lateral_px:
        p["lateral_px"] = _draw(rng, model.lateral_px)
        d = lateral_noise(d, rng, p["lateral_px"])
    if model.axial:
        d = axial_noise(d, rng, *model.axial)
    if model.edge_prob:
        p["edge_prob"] = _draw(rng, model.edge_prob)
        d = edge_dropout(d, rng, model.edge_jump_m, p["edge_prob"])
    if model.grazing_deg and normals is not None:
        p["grazing_deg"] = _draw(rng, model.grazing_deg)
        d = grazing_dropout(d, normals, rng, p["grazing_deg"], model.grazing_prob)
    if model.dark_below:
        p["dark_below"] = _draw(rng, model.dark_below)
        d = dark_surface_holes(d, rgb, rng, p["dark_below"], model.dark_prob)
    if model.disparity:
        d = disparity_quantisation(d, *model.disparity)
    if model.range_m:
        d = clip_range(d, *model.range_m)
    if d is depth_m:
        d = depth_m.copy()
    return out if out is not rgb else rgb.copy(), d.astype(np.float32), p
