"""Bins (simdata --randomize bins): a tote's walls around the settled objects, not an object."""
import json

import numpy as np
import pytest
import torch

from helpers import small_config
from simdata.errors import SimdataError
from simdata.pipeline import render_dataset
from simdata.randomize import RandomizationConfig, draw_bin
from simdata.types import PRIMESENSE


def _square(cx, cy, half):
    return np.array([[cx - half, cy - half], [cx + half, cy + half], [cx - half, cy + half],
                     [cx + half, cy - half]])


def _bin_frame(spec, xy):
    """World xy (N,2) -> the bin's frame (centre at 0, axes along its walls)."""
    yaw = np.radians(spec["yaw_deg"])
    R2 = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
    return (xy - np.asarray(spec["centre_m"][:2])) @ R2


def test_a_bin_encloses_the_objects_and_takes_in_the_distractors_its_walls_would_cut():
    cfg = RandomizationConfig(bins=1.0)
    objects = [_square(0.0, 0.0, 0.05), _square(0.15, 0.1, 0.04)]
    cut = _square(0.22, 0.0, 0.03)      # beside the objects: a wall would run through it
    far = _square(0.9, 0.9, 0.03)       # far out: stays outside
    for seed in range(20):
        model, T, spec = draw_bin(np.random.default_rng(seed), cfg, objects, [cut, far], 0)
        half = np.asarray(spec["size_m"][:2]) / 2
        for f in [*objects, cut]:
            local = _bin_frame(spec, f)
            assert (np.abs(local) < half + 1e-4).all()  # the spec is rounded to 0.1 mm
        assert (np.abs(_bin_frame(spec, far)) > half + spec["wall_m"]).any(1).all()
        # the mesh is four walls: all its vertices lie between the inner and outer rectangles
        local = _bin_frame(spec, (np.asarray(model.mesh.vertices) @ T[:3, :3].T + T[:3, 3])[:, :2])
        outer = half + spec["wall_m"]
        assert (np.abs(local) <= outer + 1e-4).all()
        assert ((np.abs(local) >= half - 1e-4).any(1)).all()
        z = np.asarray(model.mesh.vertices)[:, 2] + T[2, 3]
        assert z.min() < 0 and abs(z.max() - spec["size_m"][2]) < 1e-4
        assert cfg.bin_wall_height_m[0] <= spec["size_m"][2] <= cfg.bin_wall_height_m[1]
    # a bin as long as a room is no tote: none
    assert draw_bin(np.random.default_rng(0), cfg, [_square(0, 0, 0.05), _square(1.0, 0, 0.05)],
                    [], 0) is None


def test_bins_leave_the_rest_of_the_scene_as_it_was():
    from simdata.assets import load_models
    from simdata.scene import layout_scene

    cfg = small_config("unused", scenes=1)
    models = load_models(cfg.meshes)
    with_bins = small_config("unused", scenes=1, randomize=RandomizationConfig(bins=1.0))
    bins = 0
    for i in range(3):
        a, b = layout_scene(models, cfg, i), layout_scene(models, with_bins, i)
        assert [p.model_index for p in a.objects] == [p.model_index for p in b.objects]
        assert all(np.array_equal(p.T_world_obj, q.T_world_obj) for p, q in zip(a.objects, b.objects))
        assert all(np.array_equal(p, q) for p, q in zip(a.cameras, b.cameras))
        assert repr(a.lighting) == repr(b.lighting) and a.materials == b.materials
        assert a.clutter == [] and [m.name.split("_")[-1] for m, _, _ in b.clutter] in ([], ["bin"])
        bins += len(b.clutter)
    assert bins >= 1
    with pytest.raises(SimdataError, match="share of scenes"):
        RandomizationConfig(bins=1.5).validate()


def test_a_rendered_bin_stands_on_the_table_around_the_objects_and_is_not_an_object(tmp_path):
    from adapt.scenes import SceneDomain
    from simdata import BopDataset

    # no cap on the bin's size: every scene gets one
    render_dataset(small_config(tmp_path / "syn", intrinsics=PRIMESENSE.resized(160, 120), scenes=2,
                                views=2, randomize=RandomizationConfig(
                                    distractors=(1, 2), bins=1.0, bin_max_side_m=2.0)),
                   progress=False)
    ds = BopDataset(tmp_path / "syn", load_full_masks=False)
    domain = SceneDomain(tmp_path / "syn", 120, 64, stream=1, seed=0, objectness=True, channels="depth")
    seen = 0
    for i in range(len(ds)):
        raw = ds[i]
        scene_dir = tmp_path / "syn" / "train_pbr" / f"{int(raw['scene_id']):06d}"
        spec = [c for c in json.loads((scene_dir / "scene_simdata.json").read_text())["style"]["clutter"]
                if c["kind"] == "bin"][0]
        depth, K = raw["depth_clean"][0], raw["K"]
        v, u = torch.meshgrid(torch.arange(depth.shape[0]), torch.arange(depth.shape[1]), indexing="ij")
        cam = torch.stack([(u - K[0, 2]) * depth / K[0, 0], (v - K[1, 2]) * depth / K[1, 1], depth], -1)
        xyz = ((cam - raw["t_w2c"]) @ raw["R_w2c"]).numpy()
        walls, objects = raw["clutter"].numpy(), raw["masks_visib"].any(0).numpy()
        seen += int(walls.sum())
        half = np.asarray(spec["size_m"][:2]) / 2
        local = _bin_frame(spec, xyz[..., :2].reshape(-1, 2)).reshape(*walls.shape, 2)
        tol = 2e-3  # the depth image's rounding
        on_wall = (np.abs(local) >= half - tol).any(-1) & (np.abs(local) <= half + spec["wall_m"] + tol).all(-1)
        assert on_wall[walls].all()
        assert (xyz[..., 2][walls] > -tol).all() and (xyz[..., 2][walls] < spec["size_m"][2] + tol).all()
        assert (np.abs(local[objects]) < half + tol).all()  # every object stands inside
        label = domain.sample(i, None)["label"].numpy()
        assert (label[walls] == 0).all() and (label[objects] == 1).all()
    assert seen > 50


def test_the_command_line_switches_bins_and_refuses_what_it_cannot_honour(tmp_path):
    from simdata.cli import build_parser, randomization_from_args
    from simdata.crop_render import render_crops

    parse = build_parser().parse_args
    args = ["render", "--meshes", "m", "--out", "o"]
    assert randomization_from_args(parse(args + ["--randomize", "all"])).bins == 0.5
    assert randomization_from_args(parse(args + ["--randomize", "bins", "--bins", "1"])).bins == 1.0
    assert randomization_from_args(parse(args + ["--randomize", "clutter"])).bins == 0.0
    with pytest.raises(SimdataError, match="--bins 1 needs bins in --randomize"):
        randomization_from_args(parse(args + ["--randomize", "clutter", "--bins", "1"]))
    with pytest.raises(SimdataError, match="--bins 0: give the share"):
        randomization_from_args(parse(args + ["--randomize", "bins", "--bins", "0"]))
    cfg = small_config(tmp_path / "c", randomize=RandomizationConfig(bins=0.5))
    with pytest.raises(SimdataError, match="--randomize bins cannot be honoured by --mode crops"):
        render_crops(cfg, 4, 32, progress=False)


def test_grasp_labels_refuse_a_scene_whose_walls_their_trials_cannot_see(tmp_path):
    from simdata.grasping.labels import GraspLabelConfig, label_scene

    scene = tmp_path / "000000"
    scene.mkdir()
    for style, match in (({"distractors_kept": 2}, "holds distractors"),
                         ({"clutter": [{"kind": "shelf"}, {"kind": "bin"}]}, "stands in a bin")):
        (scene / "scene_simdata.json").write_text(json.dumps({"style": style}))
        with pytest.raises(SimdataError, match=match):
            label_scene(scene, {}, GraspLabelConfig(), tmp_path)
