"""`simdata` command line: render, info, preview, assets."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

from .assets import MAX_TEXTURE_PX
from .errors import SimdataError
from .sensors import SENSOR_PRESETS

BUNDLED_ASSETS = Path(__file__).resolve().parent.parent / "assets" / "ycb"
SYMMETRIES_HELP = ("JSON file of object symmetry overrides (BOP models_info fields): "
                   '{"NAME or obj_id": "none" | {"symmetries_discrete": [[16 numbers: row-major '
                   '4x4, translation mm], ...], "symmetries_continuous": [{"axis": [x, y, z], '
                   '"offset": [x, y, z] mm}]}}; objects not listed keep the annotation of a BOP '
                   "models folder, or are detected from geometry and colour [detect all]")


def parse_range(text: str, cast=float) -> tuple:
    """'3:8' -> (3, 8); '5' -> (5, 5). Raises SimdataError on malformed input."""
    parts = str(text).split(":")
    try:
        if len(parts) == 1:
            v = cast(parts[0])
            return (v, v)
        if len(parts) == 2:
            return (cast(parts[0]), cast(parts[1]))
    except ValueError:
        pass
    kind = "integers" if cast is int else "numbers"
    raise SimdataError(f"cannot read range {text!r}: write MIN:MAX with {kind} (e.g. 3:8); "
                       f"for a negative MIN use --option=-15:15")


def _add_render(sub):
    p = sub.add_parser(
        "render", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        help="drop meshes on a table, render views, write a BOP dataset",
        description="Drop K objects on a table with pybullet, let them settle, render --views "
                    "cameras per scene headless with pyrender and write RGB, depth, full and "
                    "visible masks, normals, poses and boxes in BOP format. Rerunning into the "
                    "same --out resumes; finished scenes are kept. Ranges are MIN:MAX (for a "
                    "negative MIN write --roll=-15:15).")
    p.add_argument("--mode", default="scenes", choices=["scenes", "crops"],
                   help="scenes: physics scenes in BOP format; crops: single objects centred "
                        "in --size crops (PixelDA's Synthetic Cropped LineMOD; see --poses), "
                        "written as a crops folder")
    p.add_argument("--count", type=int, default=1000, help="crops to render in --mode crops")
    p.add_argument("--size", type=int, default=64, help="crop side in pixels in --mode crops")
    p.add_argument("--poses", default="viewpoints", choices=["viewpoints", "uniform"],
                   help="--mode crops: viewpoints: each object at rest (see --crop-rest), "
                        "seen from the upper hemisphere with in-plane rotations, off-centre in "
                        "the --width x --height camera and cut as a 1.2x square around its "
                        "silhouette (PixelDA's Cropped LineMOD); uniform: random 3D rotations, "
                        "centred")
    p.add_argument("--crop-elevation", default="10:80",
                   help="viewpoints: camera elevation above the resting plane, deg")
    p.add_argument("--crop-azimuth", default="0:360", help="viewpoints: camera azimuth, deg")
    p.add_argument("--crop-inplane", default="-30:30",
                   help="viewpoints: camera rotation about its optical axis, deg (positive: "
                        "the object turns counter-clockwise in the image)")
    p.add_argument("--crop-distance", default="0.5:1.0",
                   help="viewpoints: camera distance to the object's centre, m")
    p.add_argument("--crop-rest", default="stable", choices=["stable", "upright"],
                   help="viewpoints: stable = each object rests on its most stable face; upright "
                        "= as modelled, +z up (LineMOD/BOP models are authored standing)")
    p.add_argument("--crop-offcentre", type=float, default=0.5,
                   help="viewpoints: the object's centre lands in this central share of the "
                        "--width x --height image (0: on the principal point)")
    p.add_argument("--meshes", required=True, help="folder of meshes (.obj/.ply/.stl/.glb, one "
                   "folder per object, YCB google_16k layout, or BOP models/); several, "
                   "comma-separated, are rendered together (e.g. assets/ycb,data/shapes)")
    p.add_argument("--out", required=True, help="dataset folder to create or resume")
    p.add_argument("--scenes", type=int, default=20, help="number of physics scenes")
    p.add_argument("--views", type=int, default=4, help="camera views rendered per scene")
    p.add_argument("--objects", default="3:8", help="objects dropped per scene, MIN:MAX")
    p.add_argument("--seed", type=int, default=0, help="dataset seed; scene i uses (seed, i)")
    p.add_argument("--workers", type=int, default=1,
                   help="parallel rendering processes on this machine (output does not depend "
                        "on it; ignored with --ray); with 1, from 4 scenes on, a second "
                        "process settles the next scenes while this one renders")
    p.add_argument("--ray", nargs="?", const="auto", default="", metavar="auto|ADDRESS",
                   help="render scenes as Ray tasks: 'auto' (or just --ray) joins the Ray of "
                        "$RAY_ADDRESS or `ray start` on this machine, else starts one here; "
                        "ADDRESS is a cluster's head (host:6379). --out must be on storage "
                        "every node mounts under the same path; the output equals a local run's "
                        "(needs pip install 'simdata-adapt[cluster]')")
    p.add_argument("--format", default="bop",
                   help="output formats, comma list: bop (always needed), coco (instance "
                        "annotations of the BOP images with RLE masks in "
                        "coco/instances_train_pbr.json; needs pip install 'simdata-adapt[coco]')")
    p.add_argument("--units", default="auto", choices=["auto", "m", "cm", "mm"],
                   help="mesh units; auto detects metres vs millimetres from the object size")
    p.add_argument("--max-texture", type=int, default=MAX_TEXTURE_PX, metavar="PX",
                   help="largest texture side kept, in pixels: bigger textures are shrunk on "
                        "load (area average, cached); at 640x480 an object covers a few hundred "
                        "pixels, so its mipmaps never read finer texels. 0 = textures as stored")
    p.add_argument("--width", type=int, default=640, help="image width in pixels")
    p.add_argument("--height", type=int, default=480, help="image height in pixels")
    p.add_argument("--fx", type=float, help="focal length x in pixels [PrimeSense 572.4 at 640 px]")
    p.add_argument("--fy", type=float, help="focal length y in pixels [PrimeSense 573.6 at 480 px]")
    p.add_argument("--cx", type=float, help="principal point x in pixels [PrimeSense, scaled]")
    p.add_argument("--cy", type=float, help="principal point y in pixels [PrimeSense, scaled]")
    p.add_argument("--distance", default="0.55:1.0", help="camera distance to the objects, m")
    p.add_argument("--elevation", default="25:75", help="camera elevation above the table, deg")
    p.add_argument("--roll", default="-15:15", help="camera roll about its axis, deg")
    p.add_argument("--table-size", default="0.8:1.2", help="table side lengths, m")
    p.add_argument("--lights", default="1:2", help="directional lights per scene, MIN:MAX")
    p.add_argument("--light-intensity", default="2:5", help="directional light intensity, MIN:MAX")
    p.add_argument("--ambient", default="0.15:0.4", help="ambient light level (0-1), MIN:MAX")
    p.add_argument("--table-textures", default="plain,checker,stripes,noise",
                   help="table-top textures drawn from, comma list of plain, checker, stripes, "
                        "noise (colours and tile size are random)")
    p.add_argument("--randomize", default="none",
                   help="domain randomizers to switch on: comma list of materials, lights, "
                        "backgrounds, distractors, clutter, bins, camera; or all / none")
    p.add_argument("--randomize-config", default="",
                   help="JSON file of randomization ranges (fields of "
                        "simdata.randomize.RandomizationConfig); --randomize still switches")
    p.add_argument("--texture-dir", default="", help="images used as random object textures")
    p.add_argument("--background-dir", default="",
                   help="images used as backgrounds [procedural backgrounds]")
    p.add_argument("--distractors", default="2:5",
                   help="unlabelled primitives per scene when distractors are on, MIN:MAX")
    p.add_argument("--clutter", default="1:4",
                   help="clutter per scene when clutter is on, MIN:MAX: shelves beyond the "
                        "table's edges, robot links over it or across its edge and grippers "
                        "fixed to the camera, rendered only and written as mask_clutter/ (no "
                        "object on the table)")
    p.add_argument("--bins", type=float, default=None,
                   help="share of scenes whose objects stand in a bin when bins are on (0..1] "
                        "[0.5]: a tote's four walls around the settled objects, 3-20 cm high, "
                        "rendered only and written as mask_clutter/ (not an object)")
    p.add_argument("--sensor", default="clean", choices=list(SENSOR_PRESETS),
                   help="sensor model applied after rendering (noise, blur, depth holes ...); "
                        "the clean render is kept in rgb_clean/ and depth_m/")
    p.add_argument("--msaa", type=int, default=None,
                   help="antialiasing of the RGB: samples per pixel, 0 = none; 2, 4, 8, 16 where "
                        "the OpenGL gives exactly that many [EGL: 4, pyrender's; OSMesa cannot "
                        "antialias: 0]. Without a GPU (Mesa llvmpipe) 4 samples cost about as "
                        "much again as the colour pass without them: --msaa 0 makes 1.2-1.3x "
                        "more images/s, with jagged object edges. Masks, depth and normals are "
                        "never antialiased. The dataset records the count rendered with")
    p.add_argument("--rgb-format", default="jpg", choices=["jpg", "png"],
                   help="RGB file type (bop_toolkit reads train_pbr RGB as jpg)")
    p.add_argument("--depth-scale", type=float, default=0.1,
                   help="millimetres per unit of the uint16 depth PNGs")
    p.add_argument("--extras", default="normals,depth_m",
                   help="privileged extras: comma list of normals, depth_m, or 'none'")
    p.add_argument("--collision", default="auto", choices=["auto", "vhacd", "hull"],
                   help="collision shapes: auto = the provided decomposition, else the hull "
                        "of a convex mesh, else VHACD; or always VHACD; or always the hull")
    p.add_argument("--cache-dir", default="",
                   help="VHACD cache folder [$SIMDATA_CACHE or ~/.cache/simdata]")
    p.add_argument("--max-steps", type=int, default=2400,
                   help="physics step cap per scene (240 steps = 1 s)")
    p.add_argument("--symmetries", default="",
                   help=SYMMETRIES_HELP)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=cmd_render)


RANDOMIZERS = ("materials", "lights", "backgrounds", "distractors", "clutter", "bins", "camera")


def randomization_from_args(args):
    """RandomizationConfig from --randomize (switches) over --randomize-config (ranges)."""
    from .randomize import RandomizationConfig

    names = [n.strip() for n in args.randomize.split(",") if n.strip()]
    if names == ["all"]:
        names = list(RANDOMIZERS)
    elif names == ["none"]:
        names = []
    bad = set(names) - set(RANDOMIZERS)
    if bad:
        raise SimdataError(f"unknown --randomize {sorted(bad)}; choose from "
                           f"{', '.join(RANDOMIZERS)}, all or none")
    base = (RandomizationConfig.from_file(args.randomize_config) if args.randomize_config
            else RandomizationConfig())
    bins = args.bins if args.bins is not None else (base.bins or 0.5)
    if "bins" not in names and args.bins is not None:
        raise SimdataError(f"--bins {args.bins:g} needs bins in --randomize (e.g. --randomize all)")
    if "bins" in names and not 0 < bins <= 1:
        raise SimdataError(f"--bins {bins:g}: give the share of scenes in a bin, 0 < SHARE <= 1 "
                           f"(or leave bins out of --randomize)")
    jitter_m = base.camera_jitter_m or 0.01
    jitter_deg = base.camera_jitter_deg or 2.0
    return replace(
        base, materials="materials" in names, lights="lights" in names,
        backgrounds="backgrounds" in names,
        texture_dir=args.texture_dir or base.texture_dir,
        background_dir=args.background_dir or base.background_dir,
        distractors=parse_range(args.distractors, int) if "distractors" in names else (0, 0),
        clutter=parse_range(args.clutter, int) if "clutter" in names else (0, 0),
        bins=bins if "bins" in names else 0.0,
        camera_jitter_m=jitter_m if "camera" in names else 0.0,
        camera_jitter_deg=jitter_deg if "camera" in names else 0.0)


def cmd_render(args) -> int:
    from .pipeline import RenderConfig, render_dataset
    from .physics import PhysicsConfig
    from .sampling import SceneConfig
    from .types import PRIMESENSE
    from .writers import parse_formats

    base = PRIMESENSE.resized(args.width, args.height)
    intr = replace(base, **{k: getattr(args, k) for k in ("fx", "fy", "cx", "cy")
                            if getattr(args, k) is not None})
    extras = () if args.extras.strip() in ("", "none") else \
        tuple(e.strip() for e in args.extras.split(",") if e.strip())
    cfg = RenderConfig(
        randomize=randomization_from_args(args), sensor=args.sensor,
        meshes=args.meshes, out=args.out, scenes=args.scenes, seed=args.seed, units=args.units,
        max_texture=args.max_texture, rgb_format=args.rgb_format, depth_scale=args.depth_scale, extras=extras,
        workers=args.workers, symmetries=args.symmetries, ray=args.ray, msaa=args.msaa,
        formats=parse_formats(args.format),
        scene=SceneConfig(
            objects=parse_range(args.objects, int), views=args.views,
            distance=parse_range(args.distance), elevation_deg=parse_range(args.elevation),
            roll_deg=parse_range(args.roll), table_size=parse_range(args.table_size),
            lights=parse_range(args.lights, int), light_intensity=parse_range(args.light_intensity),
            ambient=parse_range(args.ambient),
            table_textures=tuple(t.strip() for t in args.table_textures.split(",") if t.strip()),
            intrinsics=intr,
            physics=PhysicsConfig(collision=args.collision, cache_dir=args.cache_dir,
                                  max_steps=args.max_steps)))
    if args.mode == "crops":
        from .crop_render import ViewpointConfig, render_crops

        if args.ray or args.format != "bop":
            raise SimdataError("--ray and --format apply to --mode scenes; --mode crops writes "
                               "a crops folder on this machine")
        if args.count < 1:
            raise SimdataError(f"--count {args.count} must be at least 1")
        if not 8 <= args.size <= 1024:
            raise SimdataError(f"--size {args.size} must be within 8..1024 pixels")
        vp = ViewpointConfig(
            elevation_deg=parse_range(args.crop_elevation), azimuth_deg=parse_range(args.crop_azimuth),
            inplane_deg=parse_range(args.crop_inplane), distance_m=parse_range(args.crop_distance),
            offcentre=args.crop_offcentre, intrinsics=intr, rest=args.crop_rest)
        res = render_crops(cfg, args.count, args.size, progress=not args.no_progress,
                           poses=args.poses, viewpoints=vp)
        print(f"rendered {res['crops']} crops of {args.size}x{args.size} in {res['seconds']:.1f} s "
              f"= {res['crops'] / res['seconds']:.1f} crops/s; out: {res['out']}")
        return 0
    summary = render_dataset(cfg, progress=not args.no_progress)
    t = summary.timings
    total = sum(t.values()) or 1.0
    print(summary.line())
    if summary.images:
        print("time split: " + ", ".join(f"{k} {v / total:.0%}" for k, v in t.items()))
    return 0


def cmd_crops(args) -> int:
    from .crops import CropsConfig, crops_from_dataset

    cfg = CropsConfig(size=args.size, background=args.background, pad=args.pad,
                      min_visib_fract=args.min_visib, min_px=args.min_px)
    out = crops_from_dataset(args.dataset, args.out, cfg, split=args.split,
                             progress=not args.no_progress, symmetries=args.symmetries)
    count = sum(1 for _ in open(out / "labels.jsonl"))
    print(f"wrote {count} crops of {args.size}x{args.size} to {out}")
    return 0


def cmd_info(args) -> int:
    from .info import dataset_info, format_info

    info = dataset_info(args.dataset, args.split, check_images=not args.quick)
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 1 if info["problems"] else 0


def cmd_preview(args) -> int:
    from .preview import contact_sheet

    if (Path(args.dataset) / "labels.jsonl").exists():
        from .preview import crops_sheet

        out = crops_sheet(args.dataset, args.out, n=args.rows * 8)
    else:
        out = contact_sheet(args.dataset, args.out, n=args.rows, width=args.tile_width,
                            split=args.split)
    print(f"wrote {out}")
    return 0


def cmd_assets_list(args) -> int:
    from .assets import load_models
    from .physics import PhysicsConfig, mass_properties
    from .symmetry import describe, symmetries_for_models

    root = Path(args.meshes) if args.meshes else BUNDLED_ASSETS
    models = load_models(root, args.units)
    syms = symmetries_for_models(models, args.symmetries)
    print(f"{len(models)} objects in {root}")
    for m in models:
        mass = mass_properties(m, PhysicsConfig().density)[0]
        size = " x ".join(f"{e * 1000:.0f}" for e in m.extents_m)
        coll = "provided" if m.collision_path else "VHACD at render"
        print(f"  {m.obj_id:4d}  {m.name:<28} {size:>17} mm  unit {m.unit:<2}  "
              f"{'textured' if m.textured else 'plain':<8}  {mass:.3f} kg  collision {coll}  "
              f"sym: {describe(syms[m.obj_id])}")
    return 0


def cmd_assets_download(args) -> int:
    from .download import download_ycb

    if args.dataset != "ycb":
        raise SimdataError(f"unknown asset set {args.dataset!r}; only 'ycb' can be downloaded")
    objects = [o.strip() for o in args.objects.split(",")] if args.objects else None
    done = download_ycb(args.dest, objects, kind=args.kind, timeout=args.timeout,
                        progress=not args.no_progress)
    print(f"{len(done)} YCB objects in {args.dest}; render them with "
          f"`simdata render --meshes {args.dest} --out DIR`")
    return 0


def cmd_grasps(args) -> int:
    from .grasping import GripperConfig
    from .grasping.labels import GraspLabelConfig, label_dataset

    if args.workers < 1:
        raise SimdataError(f"--workers {args.workers} must be at least 1")
    if not 0.01 <= args.opening <= 0.3:
        raise SimdataError(f"--opening {args.opening} m is not a gripper opening (0.01 to 0.3 m)")
    palm = GripperConfig().palm_size
    gripper = GripperConfig(max_opening=args.opening,
                            palm_size=(max(palm[0], args.opening + 0.04), *palm[1:]))
    cfg = GraspLabelConfig(candidates=args.candidates, samples=args.samples, friction=args.friction,
                           approach_cone_deg=args.approach_cone, view_cone_deg=args.view_cone,
                           seed=args.seed, collision=args.collision, robustness=args.robustness,
                           perturb_mm=args.perturb_mm, perturb_deg=args.perturb_deg, shake=args.shake,
                           solver_iterations=args.solver_iterations, trials=args.trials, gripper=gripper)
    t = time.perf_counter()
    tot = label_dataset(args.dataset, cfg, workers=args.workers, cache_dir=args.cache_dir,
                        progress=not args.no_progress)
    dt = time.perf_counter() - t
    rate = f"{tot['trials'] / dt:.1f} candidates/s" if tot["trials"] else "nothing to do"
    print(f"labelled {tot['scenes']} scenes ({tot['skipped']} already done): {tot['trials']} "
          f"grasps tried, {tot['collision_free']} collision-free, {tot['executed']} simulated, "
          f"{tot['successes']} lifted and held; {tot['images']} images with grasp maps; {dt:.1f} s, {rate}")
    return 0


def cmd_shapes(args) -> int:
    from .shapes import ShapeConfig, write_shapes

    try:
        lo, hi = (float(v) / 100 for v in args.sizes.split(":"))
    except ValueError:
        raise SimdataError(f"--sizes {args.sizes!r}: give MIN:MAX in cm, e.g. 2:16") from None
    records = write_shapes(args.out, ShapeConfig(count=args.count, seed=args.seed, kinds=args.kinds,
                                                 min_size_m=lo, max_size_m=hi))
    kinds = {k: sum(r["kind"] == k for r in records) for k in dict.fromkeys(r["kind"] for r in records)}
    print(f"{len(records)} shapes in {args.out} ({', '.join(f'{n} {k}' for k, n in kinds.items())}); "
          f"render them beside your meshes with `simdata render --meshes YOUR_MESHES,{args.out}`")
    return 0


def cmd_import_bag(args) -> int:
    from .bag_import import import_bag
    from .bags import topics_from_args

    res = import_bag(args.bag, args.out, topics_from_args(args), every=args.every, progress=not args.no_progress)
    print(f"wrote {res['frames']} frames to {args.out} ({res['depth']} with depth; "
          f"{'meta.yml with K' if res['K'] else 'no CameraInfo: no meta.yml'})")
    return 0


def cmd_view(args) -> int:
    from .options import pick
    from .view import ViewConfig, view_dataset

    cfg = pick(args, ViewConfig)
    n = view_dataset(args.dataset, cfg, scene=args.scene, split=args.split)
    print(f"logged {n} images" + (f" to {cfg.save} (open it with `rerun {cfg.save}`)" if cfg.save else "")
          + (f"; the viewer's picture of it in {cfg.screenshot}" if cfg.screenshot else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog="simdata", description="Synthetic RGB-D datasets of object meshes in BOP format: "
        "physics placement (pybullet), headless rendering (pyrender), ground truth for 6D pose "
        "and segmentation.")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug messages")
    parser.add_argument("-q", "--quiet", action="store_true", help="show warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_render(sub)

    p = sub.add_parser("crops", formatter_class=fmt, help="object-centred crops of a BOP dataset",
                       description="Cut one square crop per visible object instance of a BOP "
                       "dataset (padded silhouette box, resized) with RGB, metric depth, mask, "
                       "object id and name, rotation quaternion (wxyz, model-to-camera, w >= 0), "
                       "translation and the crop's own intrinsics. See simdata/crops.py for the "
                       "format; simdata.CropsDataset reads it.")
    p.add_argument("dataset", help="BOP dataset root")
    p.add_argument("--out", required=True, help="new crops folder")
    p.add_argument("--size", type=int, default=64, help="crop side in pixels")
    p.add_argument("--background", default="black", choices=["black", "scene"],
                   help="black: zero outside the object's visible mask; scene: keep the scene")
    p.add_argument("--pad", type=float, default=1.2, help="crop side / silhouette box side")
    p.add_argument("--min-visib", type=float, default=0.3, help="skip less visible instances")
    p.add_argument("--min-px", type=int, default=64, help="skip instances with fewer visible pixels")
    p.add_argument("--split", default="train_pbr", help="split folder")
    p.add_argument("--symmetries", default="", help=SYMMETRIES_HELP.replace(
        "keep the annotation of a BOP models folder, or are detected from geometry and colour "
        "[detect all]",
        "keep the dataset's models_info.json symmetries [keep all]"))
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=cmd_crops)

    p = sub.add_parser("grasps", formatter_class=fmt, help="grasp labels: trials in pybullet, "
                       "planar grasp maps per image",
                       description="Label a rendered dataset for grasping: antipodal grasp "
                       "candidates sampled on each model (cached by mesh content), tried in "
                       "each settled scene with a parallel-jaw gripper (open-gripper collision "
                       "check, approach, close, lift, shake), written as "
                       "train_pbr/NNNNNN/scene_grasps.json (6-DoF grasps in the world frame, "
                       "mm, with outcomes) and grasps/NNNNNN.npz per image (GG-CNN maps: "
                       "quality, cos 2a, sin 2a, width px; and the grasp rectangles) of the "
                       "successful grasps a depth-image check accepts from that view (fingers "
                       "and palm clear of what the depth shows, simdata.grasping.depth_check). Render "
                       "grasp data from above (e.g. --elevation 65:90) and without distractors. "
                       "Resumes: scenes with scene_grasps.json are kept.")
    p.add_argument("dataset", help="BOP dataset root made by simdata render")
    p.add_argument("--candidates", type=int, default=48, help="grasps tried per object instance and scene")
    p.add_argument("--samples", type=int, default=300,
                   help="surface points per model for antipodal sampling")
    p.add_argument("--friction", type=float, default=0.5,
                   help="friction coefficient of the antipodal test (cone half-angle atan(mu))")
    p.add_argument("--approach-cone", type=float, default=45.0,
                   help="try grasps approaching within this angle of straight down, deg")
    p.add_argument("--view-cone", type=float, default=30.0,
                   help="maps: successful grasps approaching within this angle of the camera axis, deg")
    p.add_argument("--opening", type=float, default=0.08, help="gripper's maximum opening, m")
    p.add_argument("--robustness", type=int, default=0,
                   help="try each successful grasp again this many times, perturbed (--perturb-mm, "
                   "--perturb-deg); the maps' quality is then the share that held (Dex-Net's robust "
                   "quality), not 1. Costs that many more trials per successful grasp")
    p.add_argument("--perturb-mm", type=float, default=4.0,
                   help="with --robustness: standard deviation of the shift along each of the "
                   "gripper's in-plane axes, mm")
    p.add_argument("--perturb-deg", type=float, default=10.0,
                   help="with --robustness: standard deviation of the turn about the approach, deg")
    from .grasping.execute import SHAKES
    from .grasping.labels import GraspLabelConfig

    p.add_argument("--shake", default=GraspLabelConfig.shake, choices=SHAKES,
                   help="the shake after the lift: one cycle of 1.5 cm along two axes and 0.25 rad "
                   "about two, as hard as a Franka arm's Cartesian limits allow (arm: 13 m/s^2, "
                   "25 rad/s^2); as 5 Hz sines started at full speed, 10x an arm's rotational "
                   "acceleration (sine: how labels were made before 2026-11-27); or none. "
                   "adapt eval shakes as the test set's labels did")
    p.add_argument("--solver-iterations", type=int, default=GraspLabelConfig.solver_iterations,
                   help="pybullet's constraint solver iterations per step of a trial: fewer are "
                   "faster, but a heavy object (a 0.9 kg drill) then turns between the pads and drops "
                   "(20: how labels were made before 2026-11-27)")
    from .grasping.labels import TRIALS

    p.add_argument("--trials", default=GraspLabelConfig.trials, choices=TRIALS,
                   help="which collision-free candidates are simulated: all (scene_grasps.json then "
                   "has every outcome, for 6-DoF uses), or only those some view's maps could show "
                   "(mapped: approaching within --view-cone of its optical axis, centre seen, "
                   "accepted by the depth-image check). The maps are the same; on YCB scenes seen "
                   "from above two in five of the trials are simulated, the others get success "
                   "null")
    p.add_argument("--seed", type=int, default=0, help="seed; scene i uses (seed, i)")
    p.add_argument("--collision", default="auto", choices=["auto", "vhacd", "hull"],
                   help="object collision geometry: hull if convex else VHACD (auto), always VHACD, or hulls")
    p.add_argument("--workers", type=int, default=1, help="processes labelling scenes in parallel")
    p.add_argument("--cache-dir", default="",
                   help="antipodal and VHACD cache [$SIMDATA_CACHE or ~/.cache/simdata]")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=cmd_grasps)

    p = sub.add_parser("shapes", formatter_class=fmt, help="random convex objects to train on beside real meshes",
                       description="Write random objects (boxes, cylinders, capsules, ellipsoids; "
                       "each side drawn log-uniformly in --sizes; one random colour each) as object "
                       "folders OUT/shape_NNN/textured.obj (metres) and OUT/shapes.json. Training "
                       "on them beside a user's meshes widens what a net has seen (Tobin et al. "
                       "2018); benchmarks/grasp.py --shapes measures what they do for grasping. "
                       "All are convex: physics uses their hulls. Deterministic per --seed; "
                       "a rerun rewrites the same files.")
    p.add_argument("--out", required=True, help="folder to write the shapes to")
    p.add_argument("--count", type=int, default=40, help="how many shapes")
    p.add_argument("--seed", type=int, default=0, help="seed; shape i uses (seed, i)")
    p.add_argument("--kinds", default="box,cylinder,capsule,ellipsoid",
                   help="comma-separated kinds to draw from, uniformly")
    p.add_argument("--sizes", default="2:16", help="MIN:MAX side length, cm")
    p.set_defaults(func=cmd_shapes)

    p = sub.add_parser("info", formatter_class=fmt, help="counts, objects and validation of a dataset",
                       description="Print counts, objects and image size of a BOP dataset and "
                       "validate it (every image, mask and JSON entry). Exit code 1 if invalid.")
    p.add_argument("dataset", help="dataset root (holds camera.json and the split folder)")
    p.add_argument("--split", default="train_pbr", help="split folder")
    p.add_argument("--quick", action="store_true", help="check files exist; do not open images")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("preview", formatter_class=fmt, help="contact sheet: rgb | depth | masks | normals",
                       description="Write a PNG contact sheet of a dataset: one row per image, "
                       "columns RGB (and clean RGB when a sensor model was used), depth (and "
                       "clean depth), visible masks and normals. Given a crops folder, a grid "
                       "of crops (rgb over depth) labelled with object name and rotation.")
    p.add_argument("dataset", help="dataset root or crops folder")
    p.add_argument("--out", default="preview.png", help="output PNG")
    p.add_argument("--rows", type=int, default=6,
                   help="images shown, spread over the dataset (crops: rows of 8 crops)")
    p.add_argument("--tile-width", type=int, default=320, help="width of each tile in pixels")
    p.add_argument("--split", default="train_pbr", help="split folder")
    p.set_defaults(func=cmd_preview)

    p = sub.add_parser("view", formatter_class=fmt, help="a dataset in 3D (Rerun)",
                       description="Log a BOP dataset to Rerun, the 3D viewer (rerun-sdk, the viewer "
                       "extra): per image the camera (pose and intrinsics), RGB, depth (as points), "
                       "visible instance masks, the object meshes at their ground-truth poses and, "
                       "where `simdata grasps` labelled the scene, its grasp trials. Entities are "
                       "listed in simdata/view.py.")
    p.add_argument("dataset", help="BOP dataset root")
    p.add_argument("--scene", type=int, default=-1, help="only this scene (-1: every scene)")
    p.add_argument("--split", default="train_pbr", help="split folder")
    from .options import add_dataclass_options
    from .view import ViewConfig

    add_dataclass_options(p, ViewConfig)
    p.set_defaults(func=cmd_view)

    p = sub.add_parser("import-bag", formatter_class=fmt, help="frames of a ROS bag as an image folder",
                       description="Write the colour frames of a ROS 1 or ROS 2 bag (.bag, .db3, "
                       ".mcap or a ROS 2 folder; read with rosbags, no ROS install), the depth "
                       "paired with each by header stamp and the intrinsics of its CameraInfo as "
                       "an image folder: NNNNNN-color.png, NNNNNN-depth.png (uint16 mm), meta.yml "
                       "(K) and frames.json (stamps). Training reads bags directly (--target "
                       "BAG); this is for users who want files.")
    p.add_argument("bag", help="ROS bag: .bag file, .db3/.mcap file or ROS 2 bag folder")
    p.add_argument("--out", required=True, help="new image folder")
    p.add_argument("--every", type=int, default=1, help="keep every N-th frame")
    from .bags import add_topic_options

    add_topic_options(p)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=cmd_import_bag)

    p = sub.add_parser("assets", help="list or download object models",
                       description="List the objects of a mesh folder, or download YCB models.")
    asub = p.add_subparsers(dest="assets_command", metavar="ACTION", required=True)
    q = asub.add_parser("list", formatter_class=fmt, help="objects, sizes, units, textures, masses",
                        description="Load every object of a mesh folder and print what the "
                        "renderer will use: size, detected unit, texture, mass, collision shape.")
    q.add_argument("--meshes", default="", help="mesh folder [the bundled assets/ycb]")
    q.add_argument("--units", default="auto", choices=["auto", "m", "cm", "mm"], help="mesh units")
    q.add_argument("--symmetries", default="", help=SYMMETRIES_HELP)
    q.set_defaults(func=cmd_assets_list)
    q = asub.add_parser("download", formatter_class=fmt, help="fetch the official YCB models (online)",
                        description="Download YCB object models into --dest (needs a network). "
                        "Interrupted downloads resume.")
    q.add_argument("dataset", choices=["ycb"], help="asset set")
    q.add_argument("--dest", required=True, help="destination folder")
    q.add_argument("--objects", default="", help="comma list like 003_cracker_box [all]")
    q.add_argument("--kind", default="google_16k", help="model kind: google_16k, google_64k, ...")
    q.add_argument("--timeout", type=float, default=60, help="network timeout per request, s")
    q.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    q.set_defaults(func=cmd_assets_download)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("simdata").setLevel(level)
    try:
        return args.func(args)
    except SimdataError as e:
        print(f"simdata: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("simdata: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
