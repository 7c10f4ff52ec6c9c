"""Object symmetries (BOP convention): detection, expansion to transforms, overrides, cache,
and the models_info.json / model_points.npz written beside BOP datasets and crops folders."""
import json

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from helpers import ASSETS
from simdata.errors import SimdataError
from simdata.symmetry import (describe, detect_symmetries, load_symmetry_overrides,
                              model_symmetries, symmetry_transforms)
from simdata.types import ObjectModel


def box(size=(0.05, 0.1, 0.2)):
    return trimesh.creation.box(size)


def cylinder(sections=48):
    return trimesh.creation.cylinder(radius=0.04, height=0.12, sections=sections)


def rotations(info):
    return [np.reshape(m, (4, 4)) for m in info.get("symmetries_discrete", [])]


def assert_maps_surface_onto_itself(mesh_m, info, tol_frac=0.02):
    """Every transform moves surface points (mm) onto the surface: NN distance small."""
    pts = mesh_m.sample(3000, seed=0) * 1000.0
    ref = cKDTree(mesh_m.sample(20000, seed=1) * 1000.0)
    diam = np.linalg.norm(mesh_m.extents) * 1000.0
    Rs, ts = symmetry_transforms(info)
    for R, t in zip(Rs, ts):
        d, _ = ref.query(pts @ R.T + t)
        assert d.mean() < tol_frac * diam, (R, t, d.mean())


def test_box_with_three_side_lengths_has_three_flips():
    info = detect_symmetries(box())
    assert "symmetries_continuous" not in info
    Ts = rotations(info)
    assert len(Ts) == 3
    for T in Ts:  # 180 degrees about x, y or z through the centre (origin): diag(+-1)
        assert np.allclose(T[:3, :3], np.diag(np.diag(T[:3, :3])), atol=1e-6)
        assert sorted(np.round(np.diag(T[:3, :3]))) == [-1, -1, 1]
        assert np.allclose(T[:3, 3], 0, atol=0.5) and np.allclose(T[3], [0, 0, 0, 1])
    assert_maps_surface_onto_itself(box(), info)


def test_cube_has_the_rotation_group_of_the_cube():
    info = detect_symmetries(box((0.1, 0.1, 0.1)))
    assert "symmetries_continuous" not in info
    assert len(info["symmetries_discrete"]) == 23  # 24 rotations minus the identity


def test_cylinder_continuous_axis_plus_flip_with_offset_in_mm():
    mesh = cylinder()
    mesh.apply_translation([0.01, -0.02, 0.03])
    info = detect_symmetries(mesh)
    (cont,) = info["symmetries_continuous"]
    assert np.allclose(cont["axis"], [0, 0, 1], atol=1e-6)
    assert np.allclose(cont["offset"], [10, -20, 30], atol=0.5)  # a point on the axis, mm
    (flip,) = rotations(info)
    R = flip[:3, :3]
    assert np.isclose(np.trace(R), -1, atol=1e-6)            # 180 degrees ...
    assert np.isclose(R[2, 2], -1, atol=1e-6)                # ... about an axis normal to z
    assert np.allclose(R @ [10, -20, 30] + flip[:3, 3], [10, -20, 30], atol=1e-3)
    assert describe(info) == "continuous z + 1 discrete"
    assert_maps_surface_onto_itself(mesh, info)


def test_sphere_is_recognisable():
    info = detect_symmetries(trimesh.creation.icosphere(3, radius=0.05))
    assert describe(info) == "sphere"
    axes = np.array([c["axis"] for c in info["symmetries_continuous"]])
    assert np.allclose(np.abs(axes), np.eye(3), atol=1e-6)
    assert "symmetries_discrete" not in info


def test_asymmetric_meshes_have_none():
    rng = np.random.default_rng(3)
    hull = trimesh.PointCloud(rng.normal(size=(40, 3)) * [0.05, 0.03, 0.02]).convex_hull
    assert detect_symmetries(hull) == {}
    parts = [trimesh.creation.box((0.1, 0.04, 0.03)),
             trimesh.creation.box((0.03, 0.06, 0.02)).apply_translation([0.035, 0.05, 0.0]),
             trimesh.creation.box((0.02, 0.02, 0.05)).apply_translation([-0.04, 0.0, 0.035])]
    assert detect_symmetries(trimesh.util.concatenate(parts)) == {}


def test_colour_that_breaks_the_rotation_removes_the_continuous_symmetry():
    mesh = cylinder()
    colors = np.where(mesh.vertices[:, [0]] > 0, [[220, 30, 30, 255]], [[30, 30, 220, 255]])
    mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=colors.astype(np.uint8))
    info = detect_symmetries(mesh)
    assert "symmetries_continuous" not in info
    # ... while geometry alone, or a single colour, keeps it
    assert "symmetries_continuous" in detect_symmetries(mesh, textured_colors=False)
    plain = cylinder()
    plain.visual = trimesh.visual.ColorVisuals(plain, vertex_colors=np.tile(
        np.array([[90, 90, 90, 255]], np.uint8), (len(plain.vertices), 1)))
    assert "symmetries_continuous" in detect_symmetries(plain)


def test_symmetry_transforms_valid_identity_first_and_counts():
    info = detect_symmetries(cylinder())
    Rs, ts = symmetry_transforms(info, continuous_step_deg=10.0)
    assert Rs.shape == (2 * 36, 3, 3) and ts.shape == (72, 3)
    assert np.allclose(Rs[0], np.eye(3)) and np.allclose(ts[0], 0)
    assert np.allclose(np.linalg.det(Rs), 1, atol=1e-9)
    assert np.allclose(Rs @ Rs.transpose(0, 2, 1), np.eye(3), atol=1e-9)
    Rs, ts = symmetry_transforms({"diameter": 100.0})   # no symmetry keys: identity only
    assert Rs.shape == (1, 3, 3) and np.allclose(Rs[0], np.eye(3))
    cube = box((0.1, 0.1, 0.1))
    assert_maps_surface_onto_itself(cube, detect_symmetries(cube))


def test_detection_on_a_16k_triangle_off_centre_mesh():
    mesh = trimesh.creation.cylinder(radius=0.05, height=0.1, sections=4000)
    assert len(mesh.faces) >= 15000
    mesh.apply_translation([0.002, 0.0, 0.0])
    info = detect_symmetries(mesh)
    assert describe(info) == "continuous z + 1 discrete"


def test_overrides_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SIMDATA_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "sym.json"
    flip = [-1, 0, 0, 0, 0, 1, 0, 0, 0, 0, -1, 0, 0, 0, 0, 1]
    path.write_text(json.dumps({"can": "none", "7": {"symmetries_discrete": [flip]}}))
    overrides = load_symmetry_overrides(path)
    can = ObjectModel(obj_id=3, name="can", mesh=cylinder(), source=path)
    other = ObjectModel(obj_id=7, name="other", mesh=cylinder(), source=path)
    detected = ObjectModel(obj_id=8, name="plain", mesh=cylinder(), source=path)
    assert model_symmetries(can, overrides) == {}
    assert model_symmetries(other, overrides) == {"symmetries_discrete": [list(map(float, flip))]}
    assert not (tmp_path / "cache").exists()  # overrides never run detection
    first = model_symmetries(detected, overrides)
    assert "symmetries_continuous" in first
    cached = list((tmp_path / "cache" / "symmetries").glob("*.json"))
    assert len(cached) == 1 and json.loads(cached[0].read_text()) == first
    assert model_symmetries(detected) == first


@pytest.mark.parametrize("text, needle", [
    ("{not json", "cannot read"),
    ('["none"]', "must be a JSON object"),
    ('{"can": "round"}', "'can'"),
    ('{"can": {"symmetries_discrete": [[1, 0, 0]]}}', "16 numbers"),
    ('{"can": {"symmetries_continuous": [{"offset": [0, 0, 0]}]}}', "axis"),
    ('{"can": {"axis": [0, 0, 1]}}', "unknown keys"),
])
def test_bad_override_files_raise_one_line_errors(tmp_path, text, needle):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(SimdataError) as e:
        load_symmetry_overrides(path)
    assert str(path) in str(e.value) and needle in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(SimdataError, match="not found"):
        load_symmetry_overrides(tmp_path / "missing.json")


def test_render_config_validates_the_overrides_file(tmp_path):
    from simdata.config import RenderConfig

    with pytest.raises(SimdataError, match="not found"):
        RenderConfig(symmetries=str(tmp_path / "nope.json")).validate()


def test_rendered_crops_have_models_info_and_points(tmp_path):
    from simdata import CropsDataset
    from simdata.assets import load_models
    from simdata.config import RenderConfig
    from simdata.crop_render import render_crops

    sym = tmp_path / "sym.json"
    sym.write_text(json.dumps({"003_cracker_box": {"symmetries_continuous": [
        {"axis": [0, 0, 1], "offset": [0, 0, 0]}]}}))
    out = render_crops(RenderConfig(meshes=str(ASSETS), out=str(tmp_path / "crops"), seed=1,
                                    symmetries=str(sym)), 4, 32, progress=False)["out"]
    ds = CropsDataset(out)
    models = {m.obj_id: m for m in load_models(ASSETS)}
    assert sorted(ds.models_info) == sorted(models)
    for obj_id, m in models.items():
        info = ds.models_info[obj_id]
        ext_mm = m.extents_m * 1000
        assert np.allclose([info["size_x"], info["size_y"], info["size_z"]], ext_mm, atol=0.01)
        assert np.linalg.norm(ext_mm) * 0.6 < info["diameter"] <= np.linalg.norm(ext_mm) + 0.01
        pts = ds.model_points(obj_id)
        assert pts.shape == (1000, 3) and pts.dtype == np.float32
        lo, hi = np.asarray(m.mesh.bounds)
        assert (pts >= lo - 1e-5).all() and (pts <= hi + 1e-5).all()
        assert np.allclose(pts.max(0) - pts.min(0), hi - lo, rtol=0.1, atol=0.004)
    names = {m.name: i for i, m in models.items()}
    assert ds.models_info[names["003_cracker_box"]]["symmetries_continuous"][0]["axis"] == [0, 0, 1]
    assert "symmetries_continuous" in ds.models_info[names["024_bowl"]]  # detected
    assert len(ds[0]["rgb"].shape) == 3  # items unchanged


def test_bop_models_info_has_symmetries_and_cut_crops_copy_them(small_dataset, tmp_path):
    from simdata import CropsDataset
    from simdata.crops import CropsConfig, crops_from_dataset

    infos = json.loads((small_dataset / "models" / "models_info.json").read_text())
    names = {v["name"]: k for k, v in
             json.loads((small_dataset / "objects.json").read_text()).items()}
    bowl = infos[names["024_bowl"]]  # a lathed bowl with a rotation-invariant texture
    (cont,) = bowl["symmetries_continuous"]
    assert np.allclose(cont["axis"], [0, 0, 1], atol=1e-3)
    assert "symmetries_continuous" not in infos[names["025_mug"]]  # the handle breaks it
    assert "diameter" in bowl
    out = crops_from_dataset(small_dataset, tmp_path / "cut", CropsConfig(size=32),
                             progress=False)
    ds = CropsDataset(out)
    assert ds.models_info[int(names["024_bowl"])]["symmetries_continuous"] == [cont]
    assert np.isclose(ds.models_info[int(names["024_bowl"])]["diameter"], bowl["diameter"],
                      rtol=1e-3)
    pts = ds.model_points(int(names["024_bowl"]))
    assert pts.shape == (1000, 3)
    assert np.allclose(pts.max(0) - pts.min(0), [bowl["size_x"] / 1000, bowl["size_y"] / 1000,
                                                 bowl["size_z"] / 1000], rtol=0.1)
