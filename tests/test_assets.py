import logging
import shutil

import numpy as np
import pytest
import trimesh

from helpers import count_mesh_parses
from simdata.assets import (detect_unit, discover_models, load_models, missing_textures,
                            read_urdf_inertial)
from simdata.errors import SimdataError


def test_bundled_proxies_load_in_metres_with_textures_collision_and_mass(assets_dir):
    models = load_models(assets_dir)
    names = [m.name for m in models]
    assert len(models) >= 8
    for must in ("003_cracker_box", "004_sugar_box", "005_tomato_soup_can", "006_mustard_bottle",
                 "010_potted_meat_can", "011_banana", "024_bowl", "025_mug"):
        assert must in names
    cracker = models[names.index("003_cracker_box")]
    assert np.allclose(sorted(cracker.extents_m), sorted([0.060, 0.158, 0.210]), atol=1e-3)
    for m in models:
        assert m.unit == "m" and m.textured and m.collision_path is not None
        assert m.mass_kg and 0.01 < m.mass_kg < 2 and not m.warnings
        assert m.mesh.visual.uv is not None
    assert [m.obj_id for m in models] == list(range(1, len(models) + 1))


def test_urdf_inertial_is_read_in_the_visual_mesh_frame(tmp_path):
    """A URDF gives the centre of mass and inertia in its link frame; the object's frame here
    is the visual mesh's, which <visual><origin> places in the link (turned 90 deg about z and
    moved 1 cm along x)."""
    def urdf(visual_origin):
        path = tmp_path / "model.urdf"
        path.write_text(f"""<robot name="m"><link name="base">
  <inertial><origin rpy="0 0 0" xyz="0.02 0.03 0.04"/><mass value="0.5"/>
    <inertia ixx="1e-3" ixy="0" ixz="0" iyy="2e-3" iyz="0" izz="3e-3"/></inertial>
  <visual>{visual_origin}<geometry><mesh filename="m.obj"/></geometry></visual>
</link></robot>""")
        return read_urdf_inertial(path)

    mass, com, inertia = urdf('<origin rpy="0 0 1.5707963267948966" xyz="0.01 0 0"/>')
    assert mass == 0.5
    assert np.allclose(com, [0.03, -0.01, 0.04], atol=1e-12)  # Rz(-90) (com - t)
    assert np.allclose(inertia, [2e-3, 1e-3, 3e-3], atol=1e-15)  # x and y swap
    _, com, inertia = urdf("")  # no visual origin: the link frame is the mesh's, bit for bit
    assert com.tolist() == [0.02, 0.03, 0.04] and inertia.tolist() == [1e-3, 2e-3, 3e-3]


def test_urdf_inertia_the_object_cannot_have_is_replaced_by_the_mesh(tmp_path, caplog):
    """YCB's URDFs give every object 1e-3 kg m^2 about each axis; for a 30 g brick of 7.5 cm
    that is impossible, so the physics takes the mesh's inertia at the URDF's mass (and says
    so, naming the file); a plausible inertia is kept as given."""
    from simdata.physics import mass_properties

    def brick(folder, inertia):
        d = tmp_path / folder
        d.mkdir()
        trimesh.creation.box((0.075, 0.05, 0.05)).export(d / "brick.obj")
        (d / "model.urdf").write_text(f"""<robot name="b"><link name="base">
  <inertial><origin xyz="0 0 0"/><mass value="0.03"/>
    <inertia ixx="{inertia}" ixy="0" ixz="0" iyy="{inertia}" iyz="0" izz="{inertia}"/></inertial>
  <visual><geometry><mesh filename="brick.obj"/></geometry></visual></link></robot>""")
        return d

    placeholder, plausible = brick("placeholder", "1e-3"), brick("plausible", "1.2e-5")
    with caplog.at_level(logging.WARNING, logger="simdata"):
        models = {m.name: m for m in load_models(tmp_path)}
    bad, good = models["placeholder"], models["plausible"]
    assert bad.mass_kg == 0.03 and bad.inertia_diag is None
    assert str(placeholder / "model.urdf") in bad.warnings[0] and "inertia" in bad.warnings[0]
    assert any("placeholder" in r.getMessage() and "mesh's inertia" in r.getMessage()
               for r in caplog.records)
    mass, _, inertia = mass_properties(bad, 500.0)
    assert mass == 0.03
    assert np.allclose(inertia, 0.03 / 12 * np.array([0.005, 0.008125, 0.008125]), rtol=1e-6)
    assert good.inertia_diag.tolist() == [1.2e-5] * 3 and not good.warnings
    assert str(plausible) not in caplog.text


def test_loose_mesh_folder_in_any_format_and_units(tmp_path):
    box = trimesh.creation.box((0.1, 0.05, 0.04))
    box.export(tmp_path / "box_m.obj")
    mm = box.copy()
    mm.apply_scale(1000)
    mm.export(tmp_path / "box_mm.ply")
    trimesh.creation.cylinder(0.03, 0.1).export(tmp_path / "cyl.stl")
    trimesh.creation.icosphere(radius=0.04).export(tmp_path / "ball.glb")
    models = {m.name: m for m in load_models(tmp_path)}
    assert set(models) == {"box_m", "box_mm", "cyl", "ball"}
    assert models["box_mm"].unit == "mm" and models["box_m"].unit == "m"
    assert np.allclose(models["box_mm"].extents_m, [0.1, 0.05, 0.04], atol=1e-6)
    assert np.allclose(models["ball"].extents_m, 0.08, atol=2e-3)


def test_ycb_google16k_layout(tmp_path):
    d = tmp_path / "003_cracker_box" / "google_16k"
    d.mkdir(parents=True)
    trimesh.creation.box((0.06, 0.158, 0.21)).export(d / "textured.obj")
    (src,) = discover_models(tmp_path)
    assert src.name == "003_cracker_box" and src.visual == d / "textured.obj"


def test_shared_ycb_layout_warns_on_missing_textures(shared_ycb, caplog):
    with caplog.at_level(logging.WARNING, logger="simdata"):
        models = {m.name: m for m in load_models(shared_ycb)}
    assert len(models) == 10
    assert models["YcbBanana"].textured and models["YcbScissors"].textured
    assert not models["YcbCrackerBox"].textured
    assert "texture" in models["YcbCrackerBox"].warnings[0]
    assert any("YcbCrackerBox" in r.getMessage() and "missing" in r.getMessage() for r in caplog.records)
    assert models["YcbCrackerBox"].mass_kg == pytest.approx(0.411)
    assert models["YcbCrackerBox"].collision_path.name == "collision_vhacd.obj"
    # every URDF there gives 1e-3 kg m^2 about each axis: impossible for the light ones
    assert models["YcbFoamBrick"].inertia_diag is None and "inertia" in models["YcbFoamBrick"].warnings[-1]
    assert models["YcbPowerDrill"].inertia_diag.tolist() == [1e-3] * 3
    assert all(m.unit == "m" for m in models.values())


def test_missing_texture_in_copied_proxy_falls_back(assets_dir, tmp_path, caplog):
    d = tmp_path / "mug"
    shutil.copytree(assets_dir / "025_mug", d)
    (d / "texture_map.png").unlink()
    assert missing_textures(d / "textured.obj") == [d / "texture_map.png"]
    with caplog.at_level(logging.WARNING, logger="simdata"):
        (m,) = load_models(tmp_path)
    assert not m.textured and m.warnings
    assert any("texture_map.png" in r.getMessage() for r in caplog.records)


def test_bop_models_folder_keeps_ids_and_millimetres(small_dataset, assets_dir):
    models = load_models(small_dataset / "models")
    src = load_models(assets_dir)
    assert [m.obj_id for m in models] == [m.obj_id for m in src]
    for a, b in zip(models, src):
        assert a.unit == "mm"
        assert np.allclose(a.extents_m, b.extents_m, atol=1e-5)


@pytest.mark.parametrize("scale", [1e-5, 1e5])
def test_absurd_scale_is_refused(tmp_path, scale):
    trimesh.creation.box((scale, scale, scale)).export(tmp_path / "odd.obj")
    with pytest.raises(SimdataError, match=r"odd\.obj is absurdly scaled"):
        load_models(tmp_path)


def test_corrupt_mesh_is_named(tmp_path):
    (tmp_path / "broken.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 99\ngarbage")
    with pytest.raises(SimdataError, match=r"cannot read mesh .*broken\.ply"):
        load_models(tmp_path)


def test_degenerate_mesh_is_refused(tmp_path):
    (tmp_path / "flat.obj").write_text("v 0 0 0\nv 0.1 0 0\nv 0.2 0 0\nf 1 2 3\n")
    with pytest.raises(SimdataError, match=r"flat\.obj.*(degenerate|no triangles|cannot read)"):
        load_models(tmp_path)


def test_no_meshes_and_missing_folder(tmp_path):
    with pytest.raises(SimdataError, match="no meshes found"):
        discover_models(tmp_path)
    with pytest.raises(SimdataError, match="does not exist"):
        discover_models(tmp_path / "nope")


def test_unit_detection_bounds(tmp_path):
    assert detect_unit(0.2, tmp_path) == "m"
    assert detect_unit(200.0, tmp_path) == "mm"
    with pytest.raises(SimdataError):
        detect_unit(4.0, tmp_path)  # 4 m is no tabletop object, 4 mm a crumb


def test_loaded_meshes_are_cached_by_content(assets_dir, tmp_path, monkeypatch, caplog):
    """A second load reads the mesh back from the cache (no parse): the same vertices, faces,
    UVs and texture image, the same warnings told again; a changed texture is loaded afresh."""
    monkeypatch.setenv("SIMDATA_CACHE", str(tmp_path / "cache"))
    d = tmp_path / "meshes"
    for name in ("025_mug", "011_banana"):
        shutil.copytree(assets_dir / name, d / name)
    (d / "011_banana" / "texture_map.png").unlink()
    parses = count_mesh_parses(monkeypatch)

    def load():
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="simdata"):
            models = load_models(d)
        return models, [r.getMessage() for r in caplog.records]

    cold, cold_log = load()
    assert len(parses) == 2 and len(list((tmp_path / "cache" / "meshes").iterdir())) == 2
    warm, warm_log = load()
    assert len(parses) == 2  # nothing parsed again
    assert warm_log == cold_log and any("011_banana" in m and "missing" in m for m in warm_log)
    for a, b in zip(cold, warm):
        assert (a.name, a.textured, a.warnings, a.unit) == (b.name, b.textured, b.warnings, b.unit)
        assert a.content_key and a.content_key == b.content_key
        assert np.array_equal(a.vertex_colors, b.vertex_colors)
        assert np.array_equal(a.mesh.vertices, b.mesh.vertices)
        assert np.array_equal(a.mesh.faces, b.mesh.faces)
        assert np.array_equal(a.mesh.vertex_normals, b.mesh.vertex_normals)
    mug_a, mug_b = cold[1].mesh.visual, warm[1].mesh.visual
    assert np.array_equal(mug_a.uv, mug_b.uv)
    # the texture is a file of the cache, the image as stored (RGBA), not part of the mesh
    from PIL import Image
    stored = np.asarray(Image.open(d / "025_mug" / "texture_map.png").convert("RGBA"))
    assert mug_a.material.image is None and mug_b.material.image is None
    assert cold[1].texture.path == warm[1].texture.path
    assert cold[1].texture.path.parent == tmp_path / "cache" / "textures"
    assert np.array_equal(cold[1].texture.rgba(), stored)
    assert np.array_equal(warm[1].texture.rgba(), stored)
    assert cold[0].texture is None  # its texture is missing: a plain material
    assert np.array_equal(cold[0].mesh.visual.vertex_colors, warm[0].mesh.visual.vertex_colors)

    img = stored[..., :3].copy()
    img[:8] = 0
    Image.fromarray(img).save(d / "025_mug" / "texture_map.png")
    changed, _ = load()
    assert len(parses) == 3 and np.array_equal(changed[1].texture.rgba()[..., :3], img)
    assert changed[1].content_key != cold[1].content_key
    # the look at the vertices is the texture's, as trimesh samples it
    from simdata.texture_image import mesh_with_texture
    assert np.array_equal(changed[1].vertex_colors, np.asarray(
        mesh_with_texture(changed[1].mesh, changed[1].texture).visual.to_color().vertex_colors,
        np.uint8))


def test_mesh_cache_follows_the_files_not_their_place(assets_dir, tmp_path, monkeypatch, caplog):
    """The same files under another folder and name share the cached mesh, yet every warning
    names the object and the path being loaded; a PLY's texture (comment TextureFile, as BOP
    models carry it) is part of the key: changing it loads the mesh afresh."""
    from PIL import Image

    monkeypatch.setenv("SIMDATA_CACHE", str(tmp_path / "cache"))
    for name in ("011_banana", "099_other"):
        shutil.copytree(assets_dir / "011_banana", tmp_path / name / name)
        (tmp_path / name / name / "texture_map.png").unlink()
    for name in ("011_banana", "099_other"):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="simdata"):
            (m,) = load_models(tmp_path / name)
        assert m.warnings == [f"texture {tmp_path / name / name / 'texture_map.png'} is missing"]
        assert any(r.getMessage().startswith(f"{name}: texture {tmp_path / name / name}")
                   for r in caplog.records)
    assert len(list((tmp_path / "cache" / "meshes").iterdir())) == 1  # one mesh, two places

    d = tmp_path / "ply" / "cube"
    d.mkdir(parents=True)
    box = trimesh.creation.box(extents=(0.05, 0.05, 0.05))
    uv = box.vertices[:, :2] / 0.05 + 0.5
    header = ["ply", "format ascii 1.0", "comment TextureFile tex.png",
              f"element vertex {len(box.vertices)}", *(f"property float {c}" for c in "xyzst"),
              f"element face {len(box.faces)}", "property list uchar int vertex_indices", "end_header"]
    (d / "cube.ply").write_text("\n".join(
        header + [" ".join(map(str, [*p, *t])) for p, t in zip(box.vertices, uv)]
        + [f"3 {a} {b} {c}" for a, b, c in box.faces]) + "\n")
    colours = []
    for level in (200, 10):
        Image.fromarray(np.full((8, 8, 3), level, np.uint8)).save(d / "tex.png")
        (m,) = load_models(tmp_path / "ply", units="m")
        assert m.textured
        colours.append(int(m.vertex_colors[0, 0]))
    assert colours == [200, 10]


def test_mesh_cache_reads_only_private_files_and_survives_a_truncated_one(assets_dir, tmp_path,
                                                                         monkeypatch, caplog):
    """A cached mesh is a pickle, and unpickling runs code: one that others may write is not
    read (the mesh is loaded from its files, with a warning); a truncated one is recomputed."""
    import os

    monkeypatch.setenv("SIMDATA_CACHE", str(tmp_path / "cache"))
    shutil.copytree(assets_dir / "025_mug", tmp_path / "m" / "025_mug")
    (first,) = load_models(tmp_path / "m")
    (entry,) = (tmp_path / "cache" / "meshes").iterdir()
    parses = count_mesh_parses(monkeypatch)
    os.chmod(entry, 0o666)
    with caplog.at_level(logging.WARNING, logger="simdata"):
        (m,) = load_models(tmp_path / "m")
    assert len(parses) == 1 and any("not read" in r.getMessage() for r in caplog.records)
    assert np.array_equal(m.mesh.vertices, first.mesh.vertices)
    os.chmod(entry, 0o644)
    entry.write_bytes(entry.read_bytes()[:100])
    (m,) = load_models(tmp_path / "m")
    assert len(parses) == 2 and np.array_equal(m.mesh.vertices, first.mesh.vertices)
    (m,) = load_models(tmp_path / "m")  # the truncated entry was replaced
    assert len(parses) == 2


def test_pickle_cache_evicts_the_least_recently_used(tmp_path, monkeypatch):
    """Beyond its size the pickle cache removes the entries used longest ago; a read counts as
    a use, and the entry just written stays."""
    import os

    from simdata.diskcache import cached_pickle

    monkeypatch.setenv("SIMDATA_CACHE", str(tmp_path))
    blob = lambda k: lambda: bytes([k]) * 1000  # noqa: E731
    for k in range(3):
        cached_pickle("t", f"k{k}", blob(k), max_bytes=3500)
        os.utime(tmp_path / "t" / f"k{k}.pickle", (1000 + k, 1000 + k))  # distinct ages
    assert cached_pickle("t", "k0", blob(9)) == bytes([0]) * 1000  # read back: k0 used now
    cached_pickle("t", "k3", blob(3), max_bytes=3500)
    assert sorted(p.stem for p in (tmp_path / "t").iterdir()) == ["k0", "k2", "k3"]
    cached_pickle("t", "k4", blob(4), max_bytes=500)  # larger than the cap alone: kept
    assert [p.stem for p in (tmp_path / "t").iterdir()] == ["k4"]


def test_large_textures_are_capped_on_load_without_changing_the_look(assets_dir, tmp_path,
                                                                     monkeypatch):
    """--max-texture: a texture wider than the cap is area-averaged down on load (and cached
    apart from the full one); the BOP look at the vertices still comes from the full texture,
    and a render where the object spans few pixels is the same, as the mipmaps it reads are."""
    from simdata.render import SceneRenderer
    from simdata.transforms import look_at
    from simdata.types import Intrinsics, Lighting, PlacedObject, Scene

    monkeypatch.setenv("SIMDATA_CACHE", str(tmp_path / "cache"))
    shutil.copytree(assets_dir / "025_mug", tmp_path / "m" / "025_mug")
    (full,) = load_models(tmp_path / "m", max_texture=0)
    (capped,) = load_models(tmp_path / "m", max_texture=64)
    assert full.texture.shape == (256, 256, 4) and capped.texture.shape == (64, 64, 4)
    assert len(list((tmp_path / "cache" / "meshes").iterdir())) == 2
    assert len(list((tmp_path / "cache" / "textures").iterdir())) == 2
    img = np.asarray(full.texture.rgba(), float)
    assert np.allclose(np.asarray(capped.texture.rgba(), float),
                       img.reshape(64, 4, 64, 4, -1).mean((1, 3)), atol=1)
    assert np.array_equal(full.vertex_colors, capped.vertex_colors)
    K = Intrinsics(80.0, 80.0, 31.5, 31.5, 64, 64)
    light = Lighting(ambient=(0.3, 0.3, 0.3), directions=[(0.0, 0.0, -1.0)], intensities=[3.0])
    T_cam = look_at([0.0, 0.3, 0.5], [0.0, 0.0, 0.0], up=(0.0, 0.0, 1.0))
    frames = []
    for model in (full, capped):
        with SceneRenderer([model], K) as r:
            r.set_scene(Scene([PlacedObject(0, np.eye(4))], light))
            frames.append(r.render(T_cam, normals=False))
    assert frames[0].masks_visib[0].sum() > 50
    assert np.array_equal(frames[0].masks, frames[1].masks)
    assert np.abs(frames[0].rgb.astype(int) - frames[1].rgb.astype(int)).mean() < 0.5
    with pytest.raises(SimdataError, match="--max-texture"):
        load_models(tmp_path / "m", max_texture=-1)


def test_an_objs_material_libraries_are_its_mtllib_lines_wherever_they_are(tmp_path):
    """material_files reads the mtllib statements of an OBJ: the line's first word, the rest of
    the line stripped (tabs, CRLF, at the end of the file without a newline); not in comments,
    not inside other words, not without a name (the line regex it replaced took a bare
    "mtllib" followed by another line for a library named after that line)."""
    from simdata.assets import material_files

    obj = tmp_path / "m.obj"
    obj.write_bytes(b"# mtllib commented.mtl\r\nmtllib\ta b.mtl \r\nv 0 0 0\nusemtl x\n"
                    b"  mtllib indented.mtl\nxmtllib no.mtl\nmtllib\nmtllib   \nf 1 1 1\nmtllib last.mtl")
    (tmp_path / "last.mtl").write_text("newmtl x\nmap_Kd tex.png\n")
    assert material_files(obj) == [tmp_path / "a b.mtl", tmp_path / "indented.mtl",
                                   tmp_path / "last.mtl", tmp_path / "tex.png"]


def test_a_cached_mesh_comes_back_with_its_normals_hull_and_mass_properties(assets_dir, tmp_path, monkeypatch):
    """What every process asks of a mesh is computed once, when it is loaded, and read back
    with it from the disk cache: the same values as computed from the mesh afresh; what
    trimesh computed on the way (per-face triangles, edges) is not kept."""
    from simdata.assets import _TRANSIENT

    monkeypatch.setenv("SIMDATA_CACHE", str(tmp_path / "cache"))
    load_models(assets_dir)  # fills the cache
    for m in load_models(assets_dir):  # read back
        cached = m.mesh._cache.cache
        assert {"vertex_normals", "convex_hull", "is_volume"} <= set(cached), m.name
        assert not set(_TRANSIENT) & set(cached), m.name
        fresh = trimesh.Trimesh(m.mesh.vertices.copy(), m.mesh.faces.copy(), process=False)
        assert np.allclose(cached["vertex_normals"], fresh.vertex_normals)
        assert cached["is_volume"] == fresh.is_volume
        hull = cached["convex_hull"]
        assert "mass_properties" in hull._cache.cache
        assert np.isclose(hull.volume, fresh.convex_hull.volume)
