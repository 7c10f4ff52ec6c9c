#!/usr/bin/env python3
"""Generate assets/ycb: YCB-like proxy objects with the real objects' names and sizes.

The real YCB models cannot ship with the repository (size, licence) nor be downloaded offline,
so this script builds light stand-ins: the same names, outer dimensions (metres) and masses as
the YCB set, UV-mapped meshes with procedural label textures, a convex decomposition made by
construction (collision.obj, one convex part per `o` block) and a URDF with mass and inertia.

    python assets/make_ycb_proxies.py [--out assets/ycb]

Deterministic: rerunning gives byte-identical files. Output per object:
    NNN_name/textured.obj  textured.mtl  texture_map.png  collision.obj  model.urdf
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import trimesh

TEX = 256  # texture side in pixels


# ----------------------------------------------------------------------------- geometry
class Part:
    """A mesh with per-vertex UVs (OBJ-style, v_uv in [0,1], v up)."""

    def __init__(self, v, f, uv):
        self.v, self.f, self.uv = np.asarray(v, float), np.asarray(f, int), np.asarray(uv, float)


def merge(parts: list[Part]) -> Part:
    vs, fs, uvs, n = [], [], [], 0
    for p in parts:
        vs.append(p.v), uvs.append(p.uv), fs.append(p.f + n)
        n += len(p.v)
    return Part(np.concatenate(vs), np.concatenate(fs), np.concatenate(uvs))


def box_part(size, atlas=((0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1))) -> Part:
    """Axis-aligned box centred at the origin; each face maps to one cell of a 3x2 atlas."""
    sx, sy, sz = np.asarray(size) / 2
    # faces: +x, -x, +y, -y, +z, -z; corners counter-clockwise seen from outside
    faces = [
        [(sx, -sy, -sz), (sx, sy, -sz), (sx, sy, sz), (sx, -sy, sz)],
        [(-sx, sy, -sz), (-sx, -sy, -sz), (-sx, -sy, sz), (-sx, sy, sz)],
        [(sx, sy, -sz), (-sx, sy, -sz), (-sx, sy, sz), (sx, sy, sz)],
        [(-sx, -sy, -sz), (sx, -sy, -sz), (sx, -sy, sz), (-sx, -sy, sz)],
        [(-sx, -sy, sz), (sx, -sy, sz), (sx, sy, sz), (-sx, sy, sz)],
        [(-sx, sy, -sz), (sx, sy, -sz), (sx, -sy, -sz), (-sx, -sy, -sz)],
    ]
    v, f, uv = [], [], []
    for k, quad in enumerate(faces):
        cu, cv = atlas[k]
        base = len(v)
        v += quad
        uv += [((cu + a) / 3, (cv + b) / 2) for a, b in ((0.02, 0.02), (0.98, 0.02), (0.98, 0.98), (0.02, 0.98))]
        f += [(base, base + 1, base + 2), (base, base + 2, base + 3)]
    return Part(v, f, uv)


def lathe_part(profile, n=32, v_range=(0.0, 1.0), xy_scale=(1.0, 1.0)) -> Part:
    """Surface of revolution about z of ``profile`` [(r, z), ...]; r == 0 at an end closes it.

    u runs around (0..1), v along the profile within ``v_range``.
    """
    prof = np.asarray(profile, float)
    seg = np.r_[0, np.cumsum(np.linalg.norm(np.diff(prof, axis=0), axis=1))]
    t = v_range[0] + (v_range[1] - v_range[0]) * seg / seg[-1]
    ang = np.linspace(0, 2 * np.pi, n + 1)
    v, uv = [], []
    for (r, z), tv in zip(prof, t):
        for j, a in enumerate(ang):
            v.append((r * np.cos(a) * xy_scale[0], r * np.sin(a) * xy_scale[1], z))
            uv.append((j / n, tv))
    f = []
    m = n + 1
    for i in range(len(prof) - 1):
        for j in range(n):
            a, b, c, d = i * m + j, i * m + j + 1, (i + 1) * m + j + 1, (i + 1) * m + j
            f += [(a, b, c), (a, c, d)]
    return Part(v, f, uv)


def tube_part(centers, radii, n=20) -> Part:
    """Swept circles along a polyline (closed with cones at the ends)."""
    centers = np.asarray(centers, float)
    v, uv, f = [], [], []
    m = n + 1
    tang = np.gradient(centers, axis=0)
    tang /= np.linalg.norm(tang, axis=1, keepdims=True)
    for i, (c, r, tg) in enumerate(zip(centers, radii, tang)):
        a = np.cross(tg, [0, 0, 1.0])
        if np.linalg.norm(a) < 1e-6:
            a = np.cross(tg, [1.0, 0, 0])
        a /= np.linalg.norm(a)
        b = np.cross(tg, a)
        for j, t in enumerate(np.linspace(0, 2 * np.pi, m)):
            v.append(c + r * (np.cos(t) * a + np.sin(t) * b))
            uv.append((j / n, i / (len(centers) - 1)))
    for i in range(len(centers) - 1):
        for j in range(n):
            p, q, s, w = i * m + j, i * m + j + 1, (i + 1) * m + j + 1, (i + 1) * m + j
            f += [(p, s, q), (p, w, s)]
    return Part(v, f, uv)


# ----------------------------------------------------------------------------- textures
def label_texture(rng, name: str, colors, stripes=True) -> np.ndarray:
    """A product-label-like RGB texture: bands, stripes, blocks and the object's name."""
    img = np.zeros((TEX, TEX, 3), np.uint8)
    img[:] = colors[0]
    h = TEX // 4
    for k in range(4):  # horizontal colour bands
        cv2.rectangle(img, (0, k * h), (TEX, k * h + int(h * rng.uniform(0.3, 0.8))),
                      tuple(int(c) for c in colors[k % len(colors)]), -1)
    if stripes:
        for x in range(0, TEX, 16):
            cv2.line(img, (x, 0), (x + 40, TEX), tuple(int(c) for c in colors[-1]), 2)
    for _ in range(6):  # "text" blocks
        x, y = rng.integers(0, TEX - 40, 2)
        cv2.rectangle(img, (int(x), int(y)), (int(x + rng.integers(10, 40)), int(y + 5)), (20, 20, 20), -1)
    cv2.circle(img, (TEX // 2, TEX // 2), TEX // 7, tuple(int(c) for c in colors[1]), -1)
    words = name.split("_")[1:]
    for k, word in enumerate(words[:3]):
        cv2.putText(img, word.upper(), (8, 60 + 50 * k), cv2.FONT_HERSHEY_SIMPLEX, 1.1,
                    (255, 255, 255), 3, cv2.LINE_AA)
        cv2.putText(img, word.upper(), (8, 60 + 50 * k), cv2.FONT_HERSHEY_SIMPLEX, 1.1,
                    (10, 10, 10), 1, cv2.LINE_AA)
    return img


# ----------------------------------------------------------------------------- objects
def can(d, h, n=32):
    r = d / 2
    profile = [(0, 0), (r * 0.92, 0), (r, h * 0.03), (r, h * 0.97), (r * 0.92, h), (0, h)]
    return lathe_part(profile, n), [convex(lathe_part(profile, n))]


def bottle(w, dep, h):
    r = 0.5
    profile = [(0, 0), (r * 0.9, 0), (r, 0.05), (r, 0.55), (0.42, 0.72), (0.22, 0.82),
               (0.2, 0.92), (0.16, 1.0), (0, 1.0)]
    prof = [(a, b * h) for a, b in profile]
    part = lathe_part(prof, 32, xy_scale=(w, dep))
    return part, [convex(part)]


def hollow(outer_r, h, wall, bottom, n=32, flare=1.0):
    """Open-top vessel (bowl when flare > 1): one closed lathe; collision = wall sectors + base."""
    ro, ri = outer_r, outer_r - wall
    rb = ro / flare
    profile = [(0, 0), (rb, 0), (ro, h), (ri, h), (ri / flare * 0.98, bottom), (0, bottom)]
    part = lathe_part(profile, n)
    hulls = [convex(lathe_part([(0, 0), (rb, 0), (rb, bottom), (0, bottom)], n))]
    k = 8
    for s in range(k):
        a0, a1 = 2 * np.pi * s / k, 2 * np.pi * (s + 1) / k
        pts = []
        for a in np.linspace(a0, a1, 4):
            for r, z in ((rb, 0), (ro, h), (ri, h), (ri / flare, bottom)):
                pts.append((r * np.cos(a), r * np.sin(a), z))
        hulls.append(trimesh.PointCloud(pts).convex_hull)
    return part, hulls


def mug(d, h):
    body, hulls = hollow(d / 2, h, 0.006, 0.008)
    ang = np.linspace(-np.pi / 2 + 0.3, np.pi / 2 - 0.3, 9)
    centers = [(d / 2 + 0.022 * np.cos(a) - 0.004, 0, h / 2 + 0.028 * np.sin(a)) for a in ang]
    handle = tube_part(centers, [0.006] * len(centers), 12)
    handle.uv = handle.uv * 0.1  # handle samples a small corner of the texture
    for i in range(len(centers) - 1):
        pts = handle.v[i * 13:(i + 2) * 13]
        hulls.append(trimesh.PointCloud(pts).convex_hull)
    return merge([body, handle]), hulls


def banana(length, thick):
    t = np.linspace(0, 1, 14)
    bend = 0.15 * length
    centers = np.stack([(t - 0.5) * length, np.zeros_like(t), bend * (1 - (2 * t - 1) ** 2)], 1)
    radii = thick / 2 * np.clip(np.sin(np.pi * t) ** 0.5, 0.15, 1)
    part = tube_part(centers, radii, 16)
    m = 17
    hulls = [trimesh.PointCloud(part.v[i * m:(i + 3) * m]).convex_hull for i in range(0, 12, 2)]
    return part, hulls


def box(size):
    part = box_part(size)
    return part, [convex(part)]


def convex(part: Part):
    return trimesh.Trimesh(part.v, part.f, process=True).convex_hull


# name: (builder, mass kg, label colours RGB)
OBJECTS = {
    "002_master_chef_can": (lambda: can(0.102, 0.139), 0.414, [(30, 60, 140), (200, 170, 40), (230, 230, 230), (160, 30, 30)]),
    "003_cracker_box": (lambda: box((0.060, 0.158, 0.210)), 0.411, [(200, 30, 30), (240, 220, 60), (250, 250, 250), (120, 10, 10)]),
    "004_sugar_box": (lambda: box((0.038, 0.089, 0.175)), 0.514, [(240, 220, 80), (30, 90, 160), (250, 250, 250), (200, 60, 40)]),
    "005_tomato_soup_can": (lambda: can(0.066, 0.101), 0.349, [(190, 25, 30), (245, 245, 240), (210, 180, 60), (90, 10, 10)]),
    "006_mustard_bottle": (lambda: bottle(0.058, 0.095, 0.190), 0.603, [(245, 210, 20), (40, 70, 160), (240, 240, 240), (200, 160, 0)]),
    "009_gelatin_box": (lambda: box((0.028, 0.085, 0.073)), 0.097, [(220, 60, 100), (250, 250, 250), (100, 40, 140), (240, 150, 170)]),
    "010_potted_meat_can": (lambda: box((0.050, 0.097, 0.082)), 0.370, [(40, 80, 170), (240, 240, 240), (200, 40, 40), (230, 200, 80)]),
    "011_banana": (lambda: banana(0.190, 0.036), 0.066, [(235, 205, 50), (220, 190, 40), (120, 100, 30), (245, 220, 90)]),
    "024_bowl": (lambda: hollow(0.0795, 0.053, 0.005, 0.006, flare=1.6), 0.147, [(200, 40, 40), (190, 35, 35), (170, 30, 30), (210, 60, 60)]),
    "025_mug": (lambda: mug(0.080, 0.082), 0.118, [(200, 40, 40), (180, 30, 30), (230, 220, 210), (150, 20, 20)]),
}


def write_obj(path: Path, part: Part, mtl: str):
    lines = ["# simdata YCB proxy, metres", f"mtllib {mtl}", "usemtl material_0"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in part.v]
    lines += [f"vt {u:.5f} {v:.5f}" for u, v in part.uv]
    lines += [f"f {a + 1}/{a + 1} {b + 1}/{b + 1} {c + 1}/{c + 1}" for a, b, c in part.f]
    path.write_text("\n".join(lines) + "\n")


def write_collision(path: Path, hulls):
    lines, n = ["# convex decomposition by construction: one convex part per object"], 0
    for k, h in enumerate(hulls):
        lines.append(f"o part_{k}")
        lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in h.vertices]
        lines += [f"f {a + 1 + n} {b + 1 + n} {c + 1 + n}" for a, b, c in h.faces]
        n += len(h.vertices)
    path.write_text("\n".join(lines) + "\n")


def write_urdf(path: Path, name: str, mass: float, mesh: trimesh.Trimesh):
    solid = mesh if mesh.is_volume else mesh.convex_hull
    com = solid.center_mass
    inertia = np.diag(solid.moment_inertia) * mass / solid.mass
    path.write_text(f"""<?xml version="1.0"?>
<robot name="{name}">
  <link name="baseLink">
    <inertial>
      <origin rpy="0 0 0" xyz="{com[0]:.5f} {com[1]:.5f} {com[2]:.5f}"/>
      <mass value="{mass}"/>
      <inertia ixx="{inertia[0]:.3e}" ixy="0" ixz="0" iyy="{inertia[1]:.3e}" iyz="0" izz="{inertia[2]:.3e}"/>
    </inertial>
    <visual><geometry><mesh filename="textured.obj" scale="1 1 1"/></geometry></visual>
    <collision><geometry><mesh filename="collision.obj" scale="1 1 1"/></geometry></collision>
  </link>
</robot>
""")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(Path(__file__).parent / "ycb"), help="output folder")
    args = ap.parse_args()
    out = Path(args.out)
    for k, (name, (build, mass, colors)) in enumerate(OBJECTS.items()):
        rng = np.random.default_rng(k)
        part, hulls = build()
        # model frame: centred in x/y on the bounding box, resting on z = 0
        lo, hi = part.v.min(0), part.v.max(0)
        shift = np.array([-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, -lo[2]])
        part.v = part.v + shift
        hulls = [h.copy() for h in hulls]
        for h in hulls:
            h.apply_translation(shift)
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        write_obj(d / "textured.obj", part, "textured.mtl")
        (d / "textured.mtl").write_text("newmtl material_0\nKa 1 1 1\nKd 1 1 1\nKs 0.2 0.2 0.2\n"
                                        "Ns 20\nmap_Kd texture_map.png\n")
        tex = label_texture(rng, name, colors, stripes=name not in ("011_banana", "024_bowl", "025_mug"))
        cv2.imwrite(str(d / "texture_map.png"), cv2.cvtColor(tex, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_PNG_COMPRESSION, 9])
        write_collision(d / "collision.obj", hulls)
        write_urdf(d / "model.urdf", name, mass, trimesh.Trimesh(part.v, part.f))
        print(f"{name}: {len(part.v)} vertices, {len(part.f)} faces, {len(hulls)} convex parts, "
              f"size {np.round(part.v.max(0) - part.v.min(0), 3).tolist()} m")


if __name__ == "__main__":
    main()
