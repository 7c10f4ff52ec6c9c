"""The written ground truth against the written models: projection, depth, masks, normals."""
import json

import cv2
import numpy as np
import pytest

from helpers import check_dataset_geometry, load_image_gt


def test_model_points_land_on_masks_and_depth_matches_surface(small_dataset):
    assert check_dataset_geometry(small_dataset) >= 6


def test_visible_masks_are_inside_full_masks_and_counts_match(small_dataset):
    for scene in ("000000", "000001"):
        for im_id in (0, 1):
            d, cam, gts, infos, depth_mm = load_image_gt(small_dataset, scene, im_id)
            owner = np.zeros(depth_mm.shape, int)
            for k, info in enumerate(infos):
                full = cv2.imread(str(d / "mask" / f"{im_id:06d}_{k:06d}.png"), 0)
                visib = cv2.imread(str(d / "mask_visib" / f"{im_id:06d}_{k:06d}.png"), 0)
                assert set(np.unique(full)) <= {0, 255} and set(np.unique(visib)) <= {0, 255}
                full, visib = full > 0, visib > 0
                assert not (visib & ~full).any()
                assert info["px_count_all"] == full.sum()
                assert info["px_count_visib"] == visib.sum()
                assert info["px_count_valid"] == (full & (depth_mm > 0)).sum()
                assert info["visib_fract"] == pytest.approx(visib.sum() / max(full.sum(), 1))
                if visib.any():
                    ys, xs = np.nonzero(visib)
                    assert info["bbox_visib"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1,
                                                  ys.max() - ys.min() + 1]
                assert not (owner[visib] > 0).any()  # visible masks never overlap
                owner[visib] = k + 1
            # every object pixel has depth
            assert (depth_mm[owner > 0] > 0).all()


def test_table_normals_point_up_and_depth_extras_agree(small_dataset):
    d, cam, gts, infos, depth_mm = load_image_gt(small_dataset, "000000", 0)
    R_w2c = np.array(cam["cam_R_w2c"]).reshape(3, 3)
    enc = cv2.imread(str(d / "normals" / "000000.png"))[..., ::-1].astype(float)
    n = enc / 127.5 - 1
    objects = np.zeros(depth_mm.shape, bool)
    for k in range(len(gts)):
        objects |= cv2.imread(str(d / "mask" / f"000000_{k:06d}.png"), 0) > 0
    K = np.array(cam["cam_K"]).reshape(3, 3)
    v, u = np.indices(depth_mm.shape)
    P = np.stack([(u - K[0, 2]) * depth_mm / K[0, 0], (v - K[1, 2]) * depth_mm / K[1, 1], depth_mm], -1)
    z_world_mm = ((P - np.array(cam["cam_t_w2c"])) @ R_w2c)[..., 2]
    top = np.abs(z_world_mm) < 2.0  # the table top (its sides are visible too)
    # away from silhouette edges, where one-pixel rasterisation differences between passes live
    top = cv2.erode((top & (depth_mm > 0)).astype(np.uint8), np.ones((5, 5))).astype(bool)
    table = top & ~cv2.dilate(objects.astype(np.uint8), np.ones((5, 5))).astype(bool)
    assert table.sum() > 1000
    up_cam = R_w2c @ [0, 0, 1]
    cos = (n[table] / np.linalg.norm(n[table], axis=1, keepdims=True)) @ up_cam
    assert np.median(cos) > 0.999 and cos.min() > 0.99
    # background (no surface) has no normal; depth_m extra equals the PNG depth to its unit
    assert not enc[depth_mm == 0].any()
    depth_m = np.load(d / "depth_m" / "000000.npy")
    assert depth_m.dtype == np.float32
    assert np.abs(depth_m * 1000 - depth_mm).max() <= cam["depth_scale"] / 2 + 1e-3


def test_real_ycb_meshes_render_with_correct_geometry(shared_ycb, tmp_path):
    from helpers import small_config
    from simdata.pipeline import render_dataset

    out = tmp_path / "shared"
    summary = render_dataset(small_config(out, meshes=str(shared_ycb), scenes=1, views=2,
                                          objects=(4, 4)), progress=False)
    assert summary.images == 2
    objects = json.loads((out / "objects.json").read_text())
    warnings = [w for o in objects.values() for w in o["warnings"]]
    assert sum("texture" in w for w in warnings) == 8  # eight textures missing
    assert sum("inertia" in w for w in warnings) == 5  # five URDF inertias no such body can have
    assert check_dataset_geometry(out) >= 2


def test_table_textures_are_procedural_and_deterministic():
    from simdata.render import table_texture_image
    from simdata.types import Table

    def table(kind):
        return Table((1.0, 1.0), (0.2, 0.4, 0.6), texture={"kind": kind, "tile_m": 0.1,
                                                           "color2_rgb": [0.9, 0.8, 0.1], "seed": 3})
    plain, checker = table_texture_image(table("plain")), table_texture_image(table("checker"))
    assert len(np.unique(plain.reshape(-1, 3), axis=0)) == 1
    assert len(np.unique(checker.reshape(-1, 3), axis=0)) == 2
    noise = table_texture_image(table("noise"))
    assert noise.std() > 10 and np.array_equal(noise, table_texture_image(table("noise")))
    assert not np.array_equal(table_texture_image(table("stripes")), checker)


def test_renderer_keeps_a_models_gl_buffers_while_scenes_do_without_it(assets_dir, monkeypatch):
    """pyrender frees what leaves the scene; the renderer keeps every model it uploaded (hidden),
    so a model that comes back is not uploaded again, and hidden models change no pixel."""
    from pyrender.primitive import Primitive

    from simdata.assets import load_models
    from simdata.render import SceneRenderer
    from simdata.transforms import look_at
    from simdata.types import Intrinsics, Lighting, PlacedObject, Scene

    uploads = []  # count the uploads pyrender makes (and still make them)
    upload = Primitive._add_to_context
    monkeypatch.setattr(Primitive, "_add_to_context", lambda p: (uploads.append(p), upload(p)))
    models = load_models(assets_dir)[:2]
    K = Intrinsics(80.0, 80.0, 31.5, 31.5, 64, 64)
    light = Lighting(ambient=(0.3, 0.3, 0.3), directions=[(0.0, 0.0, -1.0)], intensities=[3.0])
    T_cam = look_at([0.0, 0.0, 0.5], [0.0, 0.0, 0.0], up=(0.0, 1.0, 0.0))
    with SceneRenderer(models, K) as r:
        def frame(index):
            r.set_scene(Scene([PlacedObject(index, np.eye(4))], light))
            return r.render(T_cam, normals=True)

        first = frame(0)
        n0 = len(uploads)
        other = frame(1)
        n1 = len(uploads)
        again = frame(0)
        frame(1)
        assert n0 >= 1 and n1 > n0 and len(uploads) == n1  # each model uploaded once
        assert not r._mesh(0).is_visible
    with SceneRenderer(models, K, keep_models=1) as r:  # bounded: the older model is let go
        frame(0)
        frame(1)
        frame(0)
        assert list(r._meshes) == [0]
    assert first.masks_visib[0].sum() > 100 and not np.array_equal(first.rgb, other.rgb)
    for a, b in zip((first.rgb, first.depth_m, first.masks, first.masks_visib, first.normals),
                    (again.rgb, again.depth_m, again.masks, again.masks_visib, again.normals)):
        assert np.array_equal(a, b)
    assert np.array_equal(first.masks, first.masks_visib)  # alone: silhouette = visible mask


def test_silhouettes_of_many_objects_in_one_pass_equal_each_object_drawn_alone(assets_dir):
    """26 overlapping objects (two groups of the 24-bit pass) on a table: every full mask
    equals a segmentation pass of that object alone, pixel for pixel."""
    import pyrender

    from simdata.assets import load_models
    from simdata.render import SceneRenderer, _id_color
    from simdata.transforms import look_at, make_transform, random_rotation
    from simdata.types import Intrinsics, Lighting, PlacedObject, Scene, Table

    models = load_models(assets_dir)
    rng = np.random.default_rng(0)
    placed = [PlacedObject(i % len(models), make_transform(
        random_rotation(rng), [*rng.uniform(-0.12, 0.12, 2), 0.05])) for i in range(26)]
    light = Lighting(ambient=(0.3, 0.3, 0.3), directions=[(0.0, 0.0, -1.0)], intensities=[3.0])
    with SceneRenderer(models, Intrinsics(300.0, 300.0, 159.5, 119.5, 320, 240)) as r:
        r.set_scene(Scene(placed, light, Table((1.0, 1.0), (0.5, 0.5, 0.5))))
        frame = r.render(look_at([0.05, 0.0, 0.6], [0.0, 0.0, 0.0], up=(0.0, 1.0, 0.0)),
                         normals=False)
        alone = np.stack([r._renderer.render(r._scene, flags=pyrender.RenderFlags.SEG,
                                             seg_node_map={node: _id_color(1)})[0][..., 0] > 0
                          for node in r._object_nodes])
    assert frame.masks.shape == (26, 240, 320) and np.array_equal(frame.masks, alone)
    assert (frame.masks.sum(0) >= 2).sum() > 500  # silhouettes overlap: the bits are ORed
    assert not (frame.masks_visib & ~frame.masks).any()
    assert (frame.masks.sum((1, 2)) > frame.masks_visib.sum((1, 2))).any()


def test_a_scene_of_more_objects_than_the_ids_can_label_is_refused(assets_dir):
    """Object ids are 8-bit (254 is clutter, 255 the table): 254 objects are refused in one
    line before anything is drawn, where they would have been labelled clutter."""
    from simdata.assets import load_models
    from simdata.errors import SimdataError
    from simdata.render import MAX_OBJECTS, SceneRenderer
    from simdata.types import Intrinsics, Lighting, PlacedObject, Scene

    models = load_models(assets_dir)[:1]
    light = Lighting(ambient=(0.3, 0.3, 0.3), directions=[(0.0, 0.0, -1.0)], intensities=[3.0])
    with SceneRenderer(models, Intrinsics(100.0, 100.0, 31.5, 23.5, 64, 48)) as r:
        with pytest.raises(SimdataError, match="at most 253"):
            r.set_scene(Scene([PlacedObject(0, np.eye(4))] * (MAX_OBJECTS + 1), light, None))


def test_geometry_pass_gives_the_ids_and_depth_of_pyrenders_segmentation_pass(assets_dir):
    """Ids, normals and depth come from one pass with our shader, read back without the colour
    pass's depth: its ids and depth equal pyrender's own segmentation pass, pixel for pixel,
    and its normals are unit vectors exactly where something was hit."""
    import pyrender

    from simdata.assets import load_models
    from simdata.render import SceneRenderer, _id_color
    from simdata.transforms import look_at, make_transform, random_rotation
    from simdata.types import Intrinsics, Lighting, PlacedObject, Scene, Table

    models = load_models(assets_dir)
    rng = np.random.default_rng(1)
    placed = [PlacedObject(i, make_transform(random_rotation(rng), [*rng.uniform(-0.1, 0.1, 2), 0.04]))
              for i in range(6)]
    light = Lighting(ambient=(0.3, 0.3, 0.3), directions=[(0.0, 0.0, -1.0)], intensities=[3.0])
    with SceneRenderer(models, Intrinsics(300.0, 300.0, 159.5, 119.5, 320, 240)) as r:
        r.set_scene(Scene(placed, light, Table((2.0, 2.0), (0.5, 0.5, 0.5))))
        frame = r.render(look_at([0.1, -0.3, 0.5], [0.0, 0.0, 0.0], up=(0.0, 0.0, 1.0)))
        seg_map = {node: _id_color(i + 1) for i, node in enumerate(r._object_nodes)}
        seg_map[r._table_node] = _id_color(255)
        ids, depth = r._renderer.render(r._scene, flags=pyrender.RenderFlags.SEG, seg_node_map=seg_map)
        colour = r._renderer.render(r._scene)[0]  # pyrender's own reading of the colour pass
    assert np.array_equal(frame.rgb, colour)
    assert np.array_equal(frame.depth_m, depth)
    assert np.array_equal(frame.masks_visib, np.stack([ids[..., 0] == i + 1 for i in range(6)]))
    assert all(m.sum() > 50 for m in frame.masks_visib)
    hit = depth > 0
    assert hit.all()  # the table fills the view
    assert np.allclose(np.linalg.norm(frame.normals, axis=-1), 1.0, atol=1e-5)


def test_scene_nodes_iterate_in_the_order_they_were_added():
    """pyrender's sets iterate by memory address: lights bound in another order summed to
    another colour in another process. Nodes made in one order and added in the reverse order
    come back in the order they were added."""
    import pyrender

    from simdata.render import _ordered_scene_class

    lights = [pyrender.Node(light=pyrender.PointLight(intensity=float(i + 1))) for i in range(12)]
    meshes = [pyrender.Node(mesh=pyrender.Mesh.from_points(np.zeros((1, 3)))) for _ in range(12)]
    scene = _ordered_scene_class()()
    for node in reversed(lights + meshes):
        scene.add_node(node)
    assert list(scene.light_nodes) == lights[::-1]
    assert list(scene.mesh_nodes) == meshes[::-1]
    assert set(scene.light_nodes) == set(pyrender.Scene.light_nodes.fget(scene))


def test_colour_pass_with_light_counts_compiled_in_equals_pyrenders_own(assets_dir):
    """The colour pass runs pyrender's lit shaders with the number of lights compiled in (twice
    as fast on llvmpipe): for 0 to 5 lights of each kind (pyrender binds at most 4), kept,
    plain, textured and vertex-coloured materials, its image equals pyrender's own to the bit."""
    import pyrender

    from simdata.assets import load_models
    from simdata.randomize import RandomizationConfig, draw_material
    from simdata.render import SceneRenderer
    from simdata.transforms import look_at, make_transform, random_rotation
    from simdata.types import Intrinsics, Lighting, PlacedObject, Scene, Table

    models = load_models(assets_dir)
    rng = np.random.default_rng(2)
    placed = [PlacedObject(i, make_transform(random_rotation(rng), [*rng.uniform(-0.1, 0.1, 2), 0.04]))
              for i in range(6)]
    cfg = RandomizationConfig(materials=True, material_prob=0.8)
    materials = [draw_material(rng, cfg, []) for _ in placed]
    assert len({m["kind"] for m in materials}) >= 3
    T = look_at([0.1, -0.3, 0.5], [0.0, 0.0, 0.0], up=(0.0, 0.0, 1.0))
    with SceneRenderer(models, Intrinsics(300.0, 300.0, 159.5, 119.5, 320, 240)) as r:
        for n_sun, n_point in [(1, 0), (0, 2), (3, 1), (5, 5)]:
            suns = [rng.normal(size=3) * [1, 1, 0] - [0, 0, 2] for _ in range(n_sun)]
            light = Lighting(ambient=(0.2, 0.2, 0.2), directions=suns, intensities=[2.0] * n_sun,
                             points=[{"position": [*rng.uniform(-0.5, 0.5, 2), 0.8], "color": [1.0, 0.9, 0.8],
                                      "intensity": 3.0} for _ in range(n_point)])
            r.set_scene(Scene(placed, light, Table((2.0, 2.0), (0.5, 0.5, 0.5)), materials=materials))
            rgb = r.render_rgb(T)
            own = r._renderer.render(r._scene, flags=pyrender.RenderFlags.NONE)[0]
            assert np.array_equal(rgb, own), (n_sun, n_point)
            assert rgb.std() > 10  # lit, not black
        assert r._colour_cache._programs  # the pass used the compiled-in counts


def test_light_counts_are_refused_in_a_shader_that_no_longer_loops_over_them():
    from simdata.errors import SimdataError
    from simdata.render import fix_light_counts

    source = "uniform int n_point_lights;\nvoid main() { for (int i = 0; i < n_point_lights; i++) {} }"
    fixed = fix_light_counts(source, {"n_point_lights": 3})
    assert "uniform int n_point_lights" not in fixed and "i < 3;" in fixed
    with pytest.raises(SimdataError, match="pyrender version"):
        fix_light_counts(source.replace("i < n_point_lights", "i < 4"), {"n_point_lights": 3})


def test_texture_images_are_formatted_once_as_pyrender_formats_them():
    """rgba_of_image gives the very array pyrender's format_texture_source(image, "RGBA")
    makes, for the modes it takes; other modes are left to pyrender."""
    from PIL import Image
    from pyrender.utils import format_texture_source

    from simdata.texture_image import rgba_of_image as _rgba_texture

    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (37, 23, 3), dtype=np.uint8))
    rgba = Image.fromarray(rng.integers(0, 256, (37, 23, 4), dtype=np.uint8))
    for image in (rgb, rgba, rgb.convert("L"), rgb.convert("P"), rgba.convert("P")):
        ours = _rgba_texture(image)
        assert ours.shape == (37, 23, 4) and ours.dtype == np.uint8, image.mode
        assert np.array_equal(ours, format_texture_source(image, "RGBA")), image.mode
    assert _rgba_texture(rgb.convert("LA")) is None
    assert _rgba_texture(Image.fromarray(np.zeros((4, 4), np.uint16))) is None


def test_textured_models_render_as_from_their_pyrender_meshes(assets_dir, monkeypatch):
    """The renderer builds a textured OBJ model's pyrender mesh itself, from the model's texture
    file: the same arrays and material as pyrender.Mesh.from_trimesh makes of the mesh wearing
    its texture image, and scenes of textured models render to the bit as with from_trimesh's
    meshes."""
    import pyrender

    import simdata.render as render
    from simdata.assets import load_models
    from simdata.texture_image import mesh_with_texture
    from simdata.transforms import look_at, make_transform, random_rotation
    from simdata.types import Intrinsics, Lighting, PlacedObject, Scene, Table

    models = load_models(assets_dir)
    textured = [i for i, m in enumerate(models) if m.textured]
    assert len(textured) >= 6

    def from_trimesh(model):
        return pyrender.Mesh.from_trimesh(mesh_with_texture(model.mesh, model.texture), smooth=True)

    import trimesh
    from pyrender.utils import format_texture_source

    for i in textured:
        ours = render._model_mesh(models[i]).primitives[0]
        own = from_trimesh(models[i]).primitives[0]
        for name in ("positions", "normals", "texcoord_0", "indices"):
            assert np.array_equal(getattr(ours, name), getattr(own, name)), name
        for name in ("alphaMode", "roughnessFactor", "metallicFactor", "doubleSided", "wireframe"):
            assert getattr(ours.material, name) == getattr(own.material, name), name
        assert np.array_equal(ours.material.baseColorFactor, own.material.baseColorFactor)
        assert np.array_equal(ours.material.baseColorTexture.source, own.material.baseColorTexture.source)
        # the pixels of the texture as trimesh reads it from the model's files
        as_read = trimesh.load(str(models[i].source), force="mesh").visual.material.image
        assert np.array_equal(ours.material.baseColorTexture.source,
                              format_texture_source(as_read, "RGBA"))
        assert ours.material.baseColorTexture.source_channels == "RGBA"
    rng = np.random.default_rng(4)
    placed = [PlacedObject(i, make_transform(random_rotation(rng), [*rng.uniform(-0.1, 0.1, 2), 0.04]))
              for i in textured[:6]]
    scene = Scene(placed, Lighting(ambient=(0.3, 0.3, 0.3), directions=[np.array([0.3, 0.2, -1.0])],
                                   intensities=[3.0]), Table((2.0, 2.0), (0.5, 0.5, 0.5)))
    T = look_at([0.1, -0.3, 0.5], [0.0, 0.0, 0.0], up=(0.0, 0.0, 1.0))
    images = []
    for make in (render._model_mesh, from_trimesh):
        monkeypatch.setattr(render, "_model_mesh", make)
        with render.SceneRenderer(models, Intrinsics(300.0, 300.0, 159.5, 119.5, 320, 240)) as r:
            r.set_scene(scene)
            images.append(r.render_rgb(T))
    assert images[0].std() > 10
    assert np.array_equal(images[0], images[1])
