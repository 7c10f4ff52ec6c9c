#!/usr/bin/env python3
"""The baseline of benchmarks/render_throughput.py: what a user writes with pyrender and
trimesh alone (no simdata code) to get the same labels from the same scenes.

Per view: the lit colour pass (colour + depth), one segmentation pass of all objects
(instance ids), one segmentation pass per object (its full silhouette); PNGs written with cv2
(colour, 16-bit depth in mm, instance ids, one mask per object).

    python benchmarks/plain_pyrender.py SCENES.json OUT_DIR [--wait]

SCENES.json (written by render_throughput.py from simdata's settled layouts, so both render
the same scenes): {"width", "height", "K": [fx, fy, cx, cy], "models": {name: {"path",
"scale"}}, "scenes": [{"objects": [[name, T_world_obj 4x4], ...], "table": [sx, sy, thick],
"ambient": [r, g, b], "lights": [[direction xyz, intensity], ...], "cameras": [T_world_cam
4x4 (OpenCV axes), ...]}, ...]}. Loading is not timed; the loop over views is. With --wait
the script prints "ready" once loaded and starts when a line arrives on stdin (so several
copies start together). Prints one JSON line: images, seconds, render_s, write_s.
"""
import json
import os
import sys
import time

import cv2
import numpy as np
import pyrender
import trimesh


def main():
    spec_path, out = sys.argv[1], sys.argv[2]
    spec = json.load(open(spec_path))
    fx, fy, cx, cy = spec["K"]
    renderer = pyrender.OffscreenRenderer(spec["width"], spec["height"])
    camera = pyrender.IntrinsicsCamera(fx, fy, cx, cy, znear=0.01, zfar=20.0)
    meshes = {}
    for name, m in spec["models"].items():
        tm = trimesh.load(m["path"], force="mesh")
        tm.apply_scale(m["scale"])
        meshes[name] = pyrender.Mesh.from_trimesh(tm)
    os.makedirs(out, exist_ok=True)
    if "--wait" in sys.argv:
        print("ready", flush=True)
        sys.stdin.readline()

    flip = np.diag([1.0, -1.0, -1.0, 1.0])  # OpenCV camera axes -> OpenGL
    n, t_render, t_write = 0, 0.0, 0.0
    start = time.perf_counter()
    for s, sc in enumerate(spec["scenes"]):
        scene = pyrender.Scene(ambient_light=sc["ambient"])
        table = trimesh.creation.box(sc["table"])
        table.apply_translation([0, 0, -sc["table"][2] / 2])
        table_node = scene.add(pyrender.Mesh.from_trimesh(table))
        nodes = [scene.add(meshes[name], pose=np.array(T)) for name, T in sc["objects"]]
        for direction, intensity in sc["lights"]:
            z = -np.array(direction) / np.linalg.norm(direction)
            x = np.cross([0.0, 1.0, 0.0] if abs(z[1]) < 0.9 else [1.0, 0.0, 0.0], z)
            x /= np.linalg.norm(x)
            pose = np.eye(4)
            pose[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
            scene.add(pyrender.DirectionalLight(intensity=intensity), pose=pose)
        cam_node = scene.add(camera, pose=np.eye(4))
        ids_map = {node: (i + 1, 0, 0) for i, node in enumerate(nodes)}
        ids_map[table_node] = (255, 0, 0)  # the table occludes, with id 255
        for v, T in enumerate(sc["cameras"]):
            a = time.perf_counter()
            scene.set_pose(cam_node, np.array(T) @ flip)
            color, depth = renderer.render(scene)
            ids = renderer.render(scene, flags=pyrender.RenderFlags.SEG, seg_node_map=ids_map)[0]
            masks = [renderer.render(scene, flags=pyrender.RenderFlags.SEG,
                                     seg_node_map={node: (255, 255, 255)})[0] for node in nodes]
            b = time.perf_counter()
            stem = f"{out}/{s:06d}_{v:06d}"
            cv2.imwrite(f"{stem}_rgb.png", color[..., ::-1])
            cv2.imwrite(f"{stem}_depth.png", np.round(depth * 1000).astype(np.uint16))
            cv2.imwrite(f"{stem}_ids.png", ids[..., 0])
            for k, m in enumerate(masks):
                cv2.imwrite(f"{stem}_mask_{k:06d}.png", m[..., 0])
            t_render += b - a
            t_write += time.perf_counter() - b
            n += 1
    seconds = time.perf_counter() - start
    renderer.delete()
    print(json.dumps({"images": n, "seconds": seconds, "render_s": t_render, "write_s": t_write}))


if __name__ == "__main__":
    main()
