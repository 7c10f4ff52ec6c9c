"""Random training objects (simdata shapes) and meshes from several folders rendered together."""
import json

import numpy as np
import pytest

from helpers import run_cli, tiny
from simdata.assets import discover_models, load_models
from simdata.errors import SimdataError
from simdata.shapes import KINDS, ShapeConfig, write_shapes


def test_shapes_are_convex_sized_deterministic_and_load(tmp_path):
    cfg = ShapeConfig(count=12, seed=3, min_size_m=0.02, max_size_m=0.16)
    records = write_shapes(tmp_path / "a", cfg)
    write_shapes(tmp_path / "b", cfg)
    for r in records:  # the same seed writes the same files
        assert (tmp_path / "a" / r["name"] / "textured.obj").read_bytes() == \
            (tmp_path / "b" / r["name"] / "textured.obj").read_bytes()
    assert {r["kind"] for r in records} <= set(KINDS) and len({r["kind"] for r in records}) > 1
    models = load_models(tmp_path / "a")
    assert [m.name for m in models] == [f"shape_{i:03d}" for i in range(12)]
    for m, r in zip(models, records):
        assert m.unit == "m" and m.mesh.is_watertight and m.mesh.is_convex
        ext = np.asarray(m.mesh.extents)
        assert ext == pytest.approx(np.array(r["extents_mm"]) / 1000, abs=1e-4)
        assert 0.02 - 1e-6 <= ext.min() and ext.max() <= 0.16 + 1e-6
        assert np.allclose(m.mesh.bounds.mean(0), 0, atol=1e-6)  # centred
        colours = np.asarray(m.mesh.visual.vertex_colors)
        assert (colours == colours[0]).all()  # one colour, no texture to miss
    other = write_shapes(tmp_path / "c", ShapeConfig(count=12, seed=4))
    assert [r["extents_mm"] for r in other] != [r["extents_mm"] for r in records]
    write_shapes(tmp_path / "a", cfg)  # a rerun with the same settings is fine ...
    with pytest.raises(SimdataError, match="other settings"):  # ... other settings are refused
        write_shapes(tmp_path / "a", ShapeConfig(count=13, seed=3))


def test_cli_refuses_bad_values(tmp_path):
    for args, words in ((["--count", "0"], "--count"), (["--kinds", "cone"], "--kinds"),
                        (["--sizes", "5"], "--sizes"), (["--sizes", "20:10"], "--sizes")):
        r = run_cli("shapes", "--out", str(tmp_path / "s"), *args)
        assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "s").exists()
    r = run_cli("shapes", "--out", str(tmp_path / "s"), "--count", "3")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "s" / "shapes.json").read_text())["settings"]["count"] == 3


def test_several_mesh_folders_render_together(tmp_path, assets_dir):
    write_shapes(tmp_path / "shapes", ShapeConfig(count=3, seed=0))
    both = f"{assets_dir},{tmp_path / 'shapes'}"
    names = [s.name for s in discover_models(both)]
    assert names == sorted(s.name for s in discover_models(assets_dir)) + ["shape_000", "shape_001", "shape_002"]
    with pytest.raises(SimdataError, match="occur in several"):
        discover_models(f"{assets_dir},{assets_dir}")
    with pytest.raises(SimdataError, match="does not exist"):
        discover_models(f"{assets_dir},{tmp_path / 'nothing'}")
    from simdata.pipeline import render_dataset

    render_dataset(tiny(tmp_path / "ds", meshes=both, objects=(3, 3), scenes=1), progress=False)
    objects = json.loads((tmp_path / "ds" / "objects.json").read_text())
    assert {"shape_000", "shape_001", "shape_002"} <= {o["name"] for o in objects.values()}
