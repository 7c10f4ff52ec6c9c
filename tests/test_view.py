"""`simdata view` and `adapt view`: recordings saved as .rrd, read back with rerun's RRD reader
and checked for their entities and geometry (meshes on the depth, boxes around the object)."""
import json

import numpy as np
import pytest

pytest.importorskip("rerun", reason="the viewer extra (pip install '.[viewer]') is not installed")

from simdata.errors import SimdataError  # noqa: E402
from simdata.view import ViewConfig, view_dataset  # noqa: E402


def read_rrd(path) -> dict[str, dict[str, list]]:
    """entity path -> component column ("Archetype:field") -> values, one per logged row, in
    the order logged (matrices flat and column-major, as Rerun stores them)."""
    from rerun.chunk import RrdReader

    out: dict[str, dict[str, list]] = {}
    for chunk in RrdReader(path).stream().to_chunks():
        batch = chunk.to_record_batch()
        cols = out.setdefault(chunk.entity_path, {})
        for name in batch.schema.names:
            if ":" in name:
                cols.setdefault(name, []).extend(batch.column(name).to_pylist())
    return out


def matrix(flat) -> np.ndarray:
    return np.reshape(flat, (3, 3)).T  # Rerun's Mat3x3 is column-major


def image(entity: dict, archetype: str, row: int, dtype) -> np.ndarray:
    """The (H,W) image logged in ``row`` of an Image-like archetype."""
    fmt = entity[f"{archetype}:format"][row][0]
    return np.frombuffer(bytes(entity[f"{archetype}:buffer"][row][0]), dtype).reshape(fmt["height"], fmt["width"])


def surface_distance(points: np.ndarray, meshes: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Distance (m) of each point to the nearest triangle of the (vertices, triangles) meshes."""
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    for v, f in meshes:
        scene.add_triangles(o3d.core.Tensor(v.astype(np.float32)), o3d.core.Tensor(f.astype(np.uint32)))
    return scene.compute_distance(o3d.core.Tensor(points.astype(np.float32))).numpy()


def test_simdata_view_logs_cameras_images_masks_meshes_and_grasps(grasp_dataset, tmp_path, capsys):
    from simdata.cli import main

    rrd = tmp_path / "scene.rrd"
    assert main(["view", str(grasp_dataset), "--scene", "0", "--save", str(rrd), "--max-faces", "800"]) == 0
    assert "logged 2 images" in capsys.readouterr().out
    e = read_rrd(rrd)
    for entity, component in [("/world/camera", "Transform3D:mat3x3"),
                              ("/world/camera/image", "Pinhole:image_from_camera"),
                              ("/world/camera/image/rgb", "Image:buffer"),
                              ("/world/camera/image/depth", "DepthImage:meter"),
                              ("/world/camera/image/masks", "SegmentationImage:buffer"),
                              ("/world/camera/points", "Points3D:positions")]:
        assert len(e[entity][component]) == 2, entity  # one per image
    assert len(e["/world/grasps"]["LineStrips3D:strips"]) == 1  # once per scene, in its world
    cam = json.loads((grasp_dataset / "train_pbr/000000/scene_camera.json").read_text())["0"]
    K = matrix(e["/world/camera/image"]["Pinhole:image_from_camera"][0])
    assert np.allclose(K.ravel(), cam["cam_K"], atol=1e-3)
    gt = json.loads((grasp_dataset / "train_pbr/000000/scene_gt.json").read_text())["0"]
    objects = sorted(p for p in e if p.startswith("/world/objects/"))
    assert len(objects) == len(gt) and all(len(e[p]["Mesh3D:triangle_indices"]) == 1 for p in objects)
    assert all(len(e[p]["Mesh3D:triangle_indices"][0]) <= 800 for p in objects)  # --max-faces
    # the meshes at their logged poses lie on the points of the depth inside the masks (world frame)
    posed = []
    for p in objects:
        v, f = np.array(e[p]["Mesh3D:vertex_positions"][0]), np.array(e[p]["Mesh3D:triangle_indices"][0])
        R, t = matrix(e[p]["Transform3D:mat3x3"][0]), np.array(e[p]["Transform3D:translation"][0])
        posed.append((v @ R.T + t, f))
    depth = image(e["/world/camera/image/depth"], "DepthImage", 0, np.float32)
    masks = image(e["/world/camera/image/masks"], "SegmentationImage", 0, np.uint16)
    sampled = np.zeros(depth.shape, bool)
    sampled[::2, ::2] = True  # --points-stride 2: the points are these pixels, row by row
    on_objects = masks[sampled & (depth > 0)] > 0
    points = np.array(e["/world/camera/points"]["Points3D:positions"][0])
    assert len(points) == (sampled & (depth > 0)).sum() and on_objects.sum() > 50
    cam = e["/world/camera"]
    in_world = points @ matrix(cam["Transform3D:mat3x3"][0]).T + np.array(cam["Transform3D:translation"][0])
    assert np.median(surface_distance(in_world[on_objects], posed)) < 0.004  # sensor noise, decimation
    assert np.median(surface_distance(points[on_objects], posed)) > 0.1  # the camera's pose matters
    # held grasps close on an object: their centres (mid-fingertips) lie within 4 cm of a surface
    glyphs = e["/world/grasps"]["LineStrips3D:strips"][0]
    colours = e["/world/grasps"]["LineStrips3D:colors"][0]
    held = [np.mean(np.array(g)[[0, 3]], 0) for g, c in zip(glyphs[::2], colours[::2]) if c == 0x28DC28FF]
    assert held and surface_distance(np.array(held), posed).max() < 0.04
    with pytest.raises(SimdataError, match="--save FILE.rrd"):
        view_dataset(grasp_dataset, ViewConfig())
    with pytest.raises(SimdataError, match="has no scene 7"):
        view_dataset(grasp_dataset, ViewConfig(save=str(tmp_path / "x.rrd")), scene=7)
    assert not list(tmp_path.glob(".*"))  # nothing half-written


def _bag_of(dataset, path):
    """A bag of the dataset's first two images, one second apart."""
    from helpers import write_test_bag
    from simdata import BopDataset
    from simdata.bags import BagFrame

    ds = BopDataset(dataset, load_full_masks=False, load_normals=False)
    frames = []
    for i in range(2):
        rgb = (ds[i]["rgb"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        frames.append(BagFrame((i + 1) * 10**9, "cam", rgb, ds[i]["depth"][0].numpy(), ds[i]["K"].double().numpy()))
    return write_test_bag(path, frames)


def test_adapt_view_logs_segmentation_and_grasp_predictions(grasp_dataset, tmp_path):
    from adapt.cli import main

    common = ["--source", str(grasp_dataset), "--steps", "1", "--batch", "2", "--height", "64", "--crop", "32",
              "--task-width", "8", "--no-progress", "--sample-every", "10", "--ckpt-every", "10"]
    assert main(["-q", "train", "source-only", "--task", "segmentation", "--out", str(tmp_path / "seg"),
                 *common]) == 0
    bag = _bag_of(grasp_dataset, tmp_path / "frames")
    rrd = tmp_path / "seg.rrd"
    assert main(["view", str(tmp_path / "seg"), "--input", str(bag), "--save", str(rrd),
                 "--depth-topic", "none"]) == 0
    e = read_rrd(rrd)
    assert len(e["/world/camera/image/prediction"]["SegmentationImage:buffer"]) == 2
    assert len(e["/world/camera/image/rgb"]["Image:buffer"]) == 2
    assert "DepthImage:buffer" not in e["/world/camera/image/depth"]  # --depth-topic none: cleared
    context = json.dumps(e["/world/camera/image/prediction"]["AnnotationContext:context"][0])
    assert "background" not in context and "table" not in context and "banana" in context.lower()

    assert main(["-q", "train", "grasp-source-only", "--channels", "height", "--sim-trials", "0",
                 "--out", str(tmp_path / "grasp"), *common]) == 0
    rrd = tmp_path / "grasp.rrd"
    assert main(["view", str(tmp_path / "grasp"), "--input", str(grasp_dataset), "--save", str(rrd),
                 "--images", "2"]) == 0
    e = read_rrd(rrd)
    assert len(e["/quality"]["Image:buffer"]) == 2
    assert len(e["/world/camera/image/depth"]["DepthImage:buffer"]) == 2
    assert main(["predict", str(tmp_path / "grasp"), "--input", str(grasp_dataset),
                 "--out", str(tmp_path / "pred")]) == 0
    lines = (tmp_path / "pred/grasps.jsonl").read_text().splitlines()
    predicted = [json.loads(line)["grasps"] for line in lines]
    rects = e["/world/camera/image/grasps"]["LineStrips2D:strips"]
    assert len(rects) == 2 and len(predicted) == 4
    for logged, want in zip(rects, (predicted[0], predicted[3])):  # --images 2 of 4: the first and last
        assert len(logged) == len(want)  # a step-1 net may find none above the quality threshold
        for strip, g in zip(logged, want):
            assert len(strip) == 5 and np.allclose(np.mean(strip[:4], 0), [g["u"], g["v"]], atol=0.01)
    from adapt.view import view_run
    from simdata.bags import BagTopics

    with pytest.raises(SimdataError, match="has no depth"):  # a grasp net on colour only
        view_run(tmp_path / "grasp", bag, ViewConfig(save=str(tmp_path / "y.rrd")), topics=BagTopics(depth="none"))
    assert not (tmp_path / "y.rrd").exists() and not list(tmp_path.glob(".y.rrd*"))


def test_adapt_view_puts_the_true_box_around_the_crop(tmp_path):
    from adapt.cli import main
    from adapt.view import view_run
    from helpers import ASSETS
    from simdata.crop_render import render_crops
    from simdata.pipeline import RenderConfig

    render_crops(RenderConfig(meshes=str(ASSETS), out=str(tmp_path / "crops"), seed=0), 12, 32, progress=False)
    assert main(["-q", "train", "source-only", "--source", str(tmp_path / "crops"), "--out", str(tmp_path / "run"),
                 "--steps", "1", "--batch", "4", "--size", "32", "--task-width", "8", "--no-progress"]) == 0
    rrd = tmp_path / "pose.rrd"
    assert view_run(tmp_path / "run", tmp_path / "crops", ViewConfig(save=str(rrd), images=3, points_stride=1)) == 3
    e = read_rrd(rrd)
    assert len(e["/world/camera/prediction"]["Boxes3D:half_sizes"]) == 3
    assert len(e["/world/camera/prediction/points"]["Points3D:positions"]) == 3
    truth = e["/world/camera/truth"]
    for i in range(3):  # the object's depth points, taken into the model frame, fill its box
        R, t = matrix(truth["Transform3D:mat3x3"][i]), np.array(truth["Transform3D:translation"][i])
        local = (np.array(e["/world/camera/points"]["Points3D:positions"][i]) - t) @ R
        centre, half = np.array(truth["Boxes3D:centers"][i][0]), np.array(truth["Boxes3D:half_sizes"][i][0])
        inside = (np.abs(local - centre) <= half + 0.005).all(1)
        assert inside.mean() > 0.9 and 0.01 < half.min() < 0.3
    with pytest.raises(SimdataError, match="is no crops folder"):
        view_run(tmp_path / "run", tmp_path, ViewConfig(save=str(tmp_path / "x.rrd")))


def test_view_to_an_unwritable_file_fails_in_one_line(grasp_dataset, tmp_path, capsys):
    from simdata.cli import main

    (tmp_path / "notes.txt").write_text("a file, not a folder")
    for rrd in (tmp_path / "notes.txt" / "scene.rrd", "/proc/simdata-nope/scene.rrd"):
        assert main(["view", str(grasp_dataset), "--scene", "0", "--save", str(rrd)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"cannot write {rrd}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def _screen() -> bool:
    import os
    import shutil

    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or shutil.which("xvfb-run"))


@pytest.mark.skipif(not _screen(), reason="no display and no Xvfb (scripts/setup_env.sh installs xvfb)")
def test_screenshot_is_the_viewer_drawing_the_recording(grasp_dataset, tmp_path, capsys):
    """The Rerun viewer itself draws the recording: the image view (the right 2/5) shows the
    frame's RGB, the 3D view (the left 3/5) the points and meshes; nothing else is left behind."""
    from simdata.cli import main
    from simdata.datasets import BopDataset
    from simdata.fileio import read_image

    shot = tmp_path / "view.png"
    assert main(["view", str(grasp_dataset), "--scene", "0", "--images", "1", "--screenshot", str(shot),
                 "--screenshot-size", "800x450"]) == 0
    assert "picture of it in" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["view.png"]  # no recording kept
    picture = read_image(shot).astype(float)
    assert picture.shape == (450, 800, 3)
    rgb = BopDataset(grasp_dataset, load_full_masks=False, load_normals=False)[0]["rgb"].permute(1, 2, 0).numpy() * 255
    body = picture[40:420]  # below the top bar, above the time bar
    image_view, view_3d = body[:, 500:], body[:, :460]
    drawn = np.abs(image_view - image_view[0, -5]).sum(-1) > 30  # off the view's background
    assert 0.3 < drawn.mean() < 0.95
    assert np.abs(image_view[drawn].mean(0) - rgb.reshape(-1, 3).mean(0)).max() < 25
    assert (np.abs(view_3d - view_3d[5, 5]).sum(-1) > 30).mean() > 0.2


def test_screenshot_refusals_are_one_line_and_leave_nothing(grasp_dataset, tmp_path, capsys, monkeypatch):
    from simdata.cli import main

    for args, message in [(["--screenshot", str(tmp_path / "view.gif")], "name the picture FILE.png or FILE.jpg"),
                          (["--screenshot", str(tmp_path / "v.png"), "--screenshot-size", "big"], "give WxH"),
                          (["--screenshot", str(tmp_path / "v.png"), "--screenshot-size", "10x10"], "64 to 8192")]:
        assert main(["view", str(grasp_dataset), "--scene", "0", *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no xvfb-run
    assert main(["view", str(grasp_dataset), "--scene", "0", "--screenshot", str(tmp_path / "v.png"),
                 "--save", str(tmp_path / "v.rrd")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "apt-get install xvfb" in err
    assert list(tmp_path.iterdir()) == []
