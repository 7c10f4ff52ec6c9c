"""A model's texture is a file of the disk cache: it travels to workers as a path, is read
(mapped) only where the model is drawn, is made again if the file is gone, and travels in
memory to other machines."""
import pickle
import shutil

import numpy as np
import pytest
from PIL import Image

from helpers import count_mesh_parses
from simdata.assets import load_models
from simdata.errors import SimdataError
from simdata.texture_image import TextureImage, mesh_with_texture, store_texture


def _mug(assets_dir, tmp_path, name="025_mug"):
    shutil.copytree(assets_dir / name, tmp_path / "m" / name)
    (model,) = load_models(tmp_path / "m")
    stored = np.asarray(Image.open(tmp_path / "m" / name / "texture_map.png").convert("RGBA"))
    return model, stored


def _render(model):
    from simdata.render import SceneRenderer
    from simdata.transforms import look_at
    from simdata.types import Intrinsics, Lighting, PlacedObject, Scene

    light = Lighting(ambient=(0.3, 0.3, 0.3), directions=[(0.2, 0.1, -1.0)], intensities=[3.0])
    with SceneRenderer([model], Intrinsics(120.0, 120.0, 47.5, 47.5, 96, 96)) as r:
        r.set_scene(Scene([PlacedObject(0, np.eye(4))], light))
        return r.render_rgb(look_at([0.0, 0.25, 0.3], [0.0, 0.0, 0.03], up=(0.0, 0.0, 1.0)))


def test_a_textured_model_travels_as_a_path_and_is_read_where_it_is_drawn(assets_dir, tmp_path,
                                                                           monkeypatch):
    monkeypatch.setenv("SIMDATA_CACHE", str(tmp_path / "cache"))
    model, stored = _mug(assets_dir, tmp_path)
    assert model.mesh.visual.material.image is None  # the mesh no longer carries it
    data = pickle.dumps(model)
    assert stored.nbytes > 200_000 and len(data) < pickle.dumps(model.mesh).__len__() + 5_000
    worker = pickle.loads(data)  # what a pool worker gets
    assert worker.texture.path == model.texture.path
    pixels = worker.texture.rgba()  # drawn: mapped from the file, read-only
    assert isinstance(pixels, np.memmap) and not pixels.flags.writeable
    assert np.array_equal(pixels, stored)
    with_image = mesh_with_texture(model.mesh, model.texture)
    assert np.array_equal(np.asarray(with_image.visual.material.image), stored)
    assert model.mesh.visual.material.image is None  # a copy wears it


def test_a_texture_file_gone_is_made_again_from_the_models_files(assets_dir, tmp_path, monkeypatch):
    """The disk cache may be deleted at any time, during a run too: a worker that finds the
    texture file gone reads the model's texture again (the same pixels, the same image), and
    the next load writes the file again."""
    monkeypatch.setenv("SIMDATA_CACHE", str(tmp_path / "cache"))
    model, stored = _mug(assets_dir, tmp_path)
    before = _render(pickle.loads(pickle.dumps(model)))
    worker = pickle.loads(pickle.dumps(model))
    shutil.rmtree(tmp_path / "cache")
    assert np.array_equal(_render(worker), before)
    assert np.array_equal(worker.texture.rgba(), stored)
    assert model.texture.path.is_file()  # written again

    parses = count_mesh_parses(monkeypatch)
    model.texture.path.unlink()  # gone while its mesh stays cached: the load reads it again
    (again,) = load_models(tmp_path / "m")
    assert len(parses) == 1 and again.texture.path.is_file()
    assert np.array_equal(again.texture.rgba(), stored)
    (warm,) = load_models(tmp_path / "m")
    assert len(parses) == 1 and np.array_equal(warm.texture.rgba(), stored)


def test_a_texture_file_that_cannot_be_made_again_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SIMDATA_CACHE", str(tmp_path / "cache"))
    texture = store_texture(np.zeros((4, 6, 4), np.uint8), "k")
    texture.path.unlink()
    with pytest.raises(SimdataError, match="cannot read the texture file .*run the same command"):
        pickle.loads(pickle.dumps(texture)).rgba()
    np.save(texture.path, np.zeros((4, 5, 4), np.uint8))  # replaced by another shape
    with pytest.raises(SimdataError, match=r"uint8 \(4, 5, 4\), not uint8 \(4, 6, 4\)"):
        pickle.loads(pickle.dumps(texture)).rgba()


def test_textures_stay_in_memory_where_they_cannot_be_files(assets_dir, tmp_path, monkeypatch):
    """No writable disk cache: the texture is kept in memory and travels with the model; the
    models Ray ships to other machines carry their pixels the same way."""
    from simdata.pipeline import portable_models

    (tmp_path / "not_a_folder").write_text("")
    monkeypatch.setenv("SIMDATA_CACHE", str(tmp_path / "not_a_folder"))
    model, stored = _mug(assets_dir, tmp_path)
    assert model.texture.path is None
    assert np.array_equal(pickle.loads(pickle.dumps(model)).texture.rgba(), stored)

    monkeypatch.setenv("SIMDATA_CACHE", str(tmp_path / "cache"))
    shutil.rmtree(tmp_path / "m")
    model, stored = _mug(assets_dir, tmp_path)
    (portable,) = portable_models([model])
    data = pickle.dumps(portable)
    shutil.rmtree(tmp_path / "cache")
    shutil.rmtree(tmp_path / "m")  # another machine has neither the cache nor the meshes
    elsewhere = pickle.loads(data)
    assert elsewhere.texture.path is None and np.array_equal(elsewhere.texture.rgba(), stored)


def test_symmetries_of_a_textured_model_see_its_texture(assets_dir, tmp_path, monkeypatch):
    """Symmetry detection reads the model's texture where it is kept apart from the mesh: the
    result is what the mesh as trimesh loads it, texture image included, gives."""
    import trimesh

    from simdata.symmetry import detect_symmetries, model_symmetries

    monkeypatch.setenv("SIMDATA_CACHE", str(tmp_path / "cache"))
    model, _ = _mug(assets_dir, tmp_path, "002_master_chef_can")
    as_loaded = trimesh.load(str(model.source), force="mesh", process=True)
    assert as_loaded.visual.material.image is not None
    # a can: a cylinder, whose label breaks the symmetry about its axis
    assert detect_symmetries(model.mesh) != detect_symmetries(as_loaded)
    assert model_symmetries(model) == detect_symmetries(as_loaded)
    assert detect_symmetries(mesh_with_texture(model.mesh, model.texture)) == detect_symmetries(as_loaded)


def test_a_texture_is_rgba_pixels():
    with pytest.raises(ValueError, match="RGBA"):
        store_texture(np.zeros((4, 4, 3), np.uint8), None)
    with pytest.raises(ValueError):
        TextureImage((4, 4, 4))


def test_textures_in_use_are_not_evicted_however_small_the_budget(assets_dir, tmp_path, monkeypatch):
    """The disk cache's budget never removes a texture file used in the last hour: a run maps
    its models' files when it draws them, after every model was loaded."""
    import os
    import time

    monkeypatch.setenv("SIMDATA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SIMDATA_CACHE_MESHES_MB", "0.001")
    models = [m for m in load_models(assets_dir) if m.texture is not None]
    assert len(models) >= 6 and all(m.texture.path.is_file() for m in models)
    for m in models:
        assert m.texture.is_usable() and m.texture.rgba().shape == m.texture.shape
    old = models[0].texture.path
    hours_ago = time.time() - 7200
    os.utime(old, (hours_ago, hours_ago))  # last used two hours ago: the budget removes it
    store_texture(np.zeros((2, 2, 4), np.uint8), "another")
    assert not old.exists() and models[1].texture.path.is_file()


def test_a_texture_file_others_could_change_is_not_read(assets_dir, tmp_path, monkeypatch):
    """A texture file that others may write is not mapped (it could change under a worker):
    the model's files are read again. A cache where the file's use cannot be recorded (a
    read-only one) is still read."""
    import simdata.texture_image as texture_image

    monkeypatch.setenv("SIMDATA_CACHE", str(tmp_path / "cache"))
    model, stored = _mug(assets_dir, tmp_path)
    parses = count_mesh_parses(monkeypatch)
    model.texture.path.chmod(0o666)
    assert not model.texture.is_usable()
    assert np.array_equal(model.texture.rgba(), stored) and len(parses) == 1  # made again
    assert model.texture.path.stat().st_mode & 0o022 == 0  # and written again, this user's
    model.texture.path.chmod(0o666)
    (again,) = load_models(tmp_path / "m")  # a load does not take it either
    assert len(parses) == 2 and again.texture.path.stat().st_mode & 0o022 == 0

    def no_utime(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(texture_image.os, "utime", no_utime)
    (warm,) = load_models(tmp_path / "m")
    assert len(parses) == 2 and np.array_equal(warm.texture.rgba(), stored)


def test_a_cache_moved_elsewhere_keeps_its_texture_files(assets_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SIMDATA_CACHE", str(tmp_path / "cache"))
    model, stored = _mug(assets_dir, tmp_path)
    shutil.move(tmp_path / "cache", tmp_path / "moved")
    monkeypatch.setenv("SIMDATA_CACHE", str(tmp_path / "moved"))
    parses = count_mesh_parses(monkeypatch)
    (warm,) = load_models(tmp_path / "m")
    assert not parses and warm.texture.path.parent == tmp_path / "moved" / "textures"
    assert np.array_equal(warm.texture.rgba(), stored)
