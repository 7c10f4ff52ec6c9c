"""COCO beside BOP (`--format bop,coco`): pycocotools reads it, its masks and boxes are BOP's,
COCOeval accepts it, and it stays consistent across workers and resume."""
import json
import shutil

import cv2
import numpy as np
import pytest

from helpers import ASSETS, TINY_ARGS, file_hashes, run_cli_without, small_config
from simdata.pipeline import SETTINGS_FILE, render_dataset
from simdata.randomize import RandomizationConfig

coco_api = pytest.importorskip("pycocotools.coco")
COCO_FILE = "coco/instances_train_pbr.json"


def coco_config(out, **kw):
    # crowded (5-7 objects, 2-3 distractors): with seed 0 one instance is hidden in a view
    return small_config(out, **{"objects": (5, 7), "seed": 0, "formats": ("bop", "coco"),
                                "randomize": RandomizationConfig(distractors=(2, 3)), **kw})


@pytest.fixture(scope="module")
def coco_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("coco") / "ds"
    render_dataset(coco_config(out), progress=False)
    return out


def read(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def test_pycocotools_masks_and_boxes_equal_bop(coco_dataset):
    from pycocotools import mask as mask_utils

    coco = coco_api.COCO(str(coco_dataset / COCO_FILE))
    names = {int(k): v["name"] for k, v in
             json.loads((coco_dataset / "objects.json").read_text()).items()}
    assert {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())} == names
    assert len(coco.getImgIds()) == 4
    checked = hidden = 0
    for img in coco.loadImgs(coco.getImgIds()):
        assert (coco_dataset / img["file_name"]).is_file()
        scene = coco_dataset / "train_pbr" / f"{img['bop_scene_id']:06d}"
        im = img["bop_im_id"]
        gts = json.loads((scene / "scene_gt.json").read_text())[str(im)]
        infos = json.loads((scene / "scene_gt_info.json").read_text())[str(im)]
        anns = {a["bop_gt_id"]: a for a in coco.loadAnns(coco.getAnnIds(imgIds=img["id"]))}
        # one annotation per instance with a visible pixel (COCO has no box for hidden ones)
        assert set(anns) == {k for k, info in enumerate(infos) if info["px_count_visib"] > 0}
        hidden += len(infos) - len(anns)
        for k, a in anns.items():
            visib = read(scene / "mask_visib" / f"{im:06d}_{k:06d}.png") > 0
            full = read(scene / "mask" / f"{im:06d}_{k:06d}.png") > 0
            assert np.array_equal(coco.annToMask(a) > 0, visib)
            assert np.array_equal(mask_utils.decode(a["segmentation_amodal"]) > 0, full)
            assert a["bbox"] == infos[k]["bbox_visib"]
            assert a["area"] == infos[k]["px_count_visib"] and a["iscrowd"] == 0
            assert a["category_id"] == gts[k]["obj_id"] and a["image_id"] == img["id"]
            checked += 1
    assert checked >= 12 and hidden >= 1 and len(coco.getAnnIds()) == checked


def test_cocoeval_scores_the_ground_truth_as_perfect(coco_dataset):
    from pycocotools.cocoeval import COCOeval

    gt = coco_api.COCO(str(coco_dataset / COCO_FILE))
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"],
             "segmentation": a["segmentation"], "score": 1.0} for a in gt.loadAnns(gt.getAnnIds())]
    ev = COCOeval(gt, gt.loadRes(dets), "segm")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)  # AP@[.5:.95]


def test_resume_and_workers_give_the_same_coco(coco_dataset, tmp_path):
    out = tmp_path / "partial"
    shutil.copytree(coco_dataset, out)
    shutil.rmtree(out / "train_pbr" / "000001")            # BOP lacks scene 1
    (out / "coco" / "parts" / "000000.json").unlink()       # COCO lacks scene 0
    (out / COCO_FILE).write_text("stale")
    summary = render_dataset(coco_config(out, workers=2), progress=False)
    assert (summary.scenes_done, summary.scenes_skipped) == (2, 0)
    assert file_hashes(out) == file_hashes(coco_dataset)


def test_datasets_made_before_format_existed_resume(coco_dataset, tmp_path):
    out = tmp_path / "old"
    shutil.copytree(coco_dataset, out, ignore=shutil.ignore_patterns("coco"))
    settings = json.loads((out / SETTINGS_FILE).read_text())
    del settings["config"]["formats"]  # as written before --format
    (out / SETTINGS_FILE).write_text(json.dumps(settings))
    summary = render_dataset(coco_config(out, formats=("bop",)), progress=False)
    assert (summary.scenes_done, summary.scenes_skipped) == (0, 2)


def test_missing_pycocotools_names_the_extra_and_writes_nothing(tmp_path):
    r = run_cli_without("pycocotools", "render", "--meshes", ASSETS, "--out", tmp_path / "x",
                        *TINY_ARGS, "--format", "bop,coco")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "pip install 'simdata-adapt[coco]'" in r.stderr
    assert not (tmp_path / "x").exists()
