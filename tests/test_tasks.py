"""The task protocol, exercised for every registered task (with one method that trains it):
one training step with finite losses, evaluation, export with parity; and the pose task's
pieces (translation through the crop's K, symmetry-aware metrics on known poses)."""
import json

import numpy as np
import pytest
import torch

from helpers import ASSETS, small_config
from simdata.crop_render import render_crops
from simdata.grasping.labels import GraspLabelConfig, label_dataset
from simdata.pipeline import RenderConfig, render_dataset
from simdata.types import PRIMESENSE

TINY = {"gen_filters": 8, "gen_blocks": 1, "disc_filters": 8, "task_width": 8, "vgg_weights": "random"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Labelled source and target folders for every task."""
    tmp = tmp_path_factory.mktemp("tasks")
    render_crops(RenderConfig(meshes=str(ASSETS), out=str(tmp / "crops_a"), seed=0), 20, 32, progress=False)
    render_crops(RenderConfig(meshes=str(ASSETS), out=str(tmp / "crops_b"), seed=1), 20, 32, progress=False)
    intr = PRIMESENSE.resized(160, 120)
    render_dataset(small_config(tmp / "scenes_a", intrinsics=intr, scenes=1, views=2), progress=False)
    render_dataset(small_config(tmp / "scenes_b", intrinsics=intr, scenes=1, views=2, seed=3), progress=False)
    for name in ("scenes_a", "scenes_b"):  # grasp labels beside the segmentation ground truth
        label_dataset(tmp / name, GraspLabelConfig(candidates=4), progress=False)
    return {"pose": (tmp / "crops_a", tmp / "crops_b", dict(size=32)),
            "segmentation": (tmp / "scenes_a", tmp / "scenes_b", dict(height=64, crop=64)),
            "grasp": (tmp / "scenes_a", tmp / "scenes_b", dict(height=64, crop=64, channels="rgbh"))}


def pairs():
    """One method per task (the first registered that trains it): the task protocol end to end.
    tests/test_methods.py trains every method on every task it declares."""
    from adapt.methods import METHODS
    from adapt.tasks import TASKS

    return [(next(m for m, cls in METHODS.items() if t in cls.tasks), t) for t in TASKS]


@pytest.mark.parametrize("method, task", pairs())
def test_every_task_trains_evaluates_and_exports(data, tmp_path, method, task):
    from adapt.config import TrainConfig
    from adapt.export import export_run
    from adapt.methods import METHODS
    from adapt.trainer import Trainer, _to

    src, tgt, kw = data[task]
    cfg = TrainConfig(method=method, task=task, source=str(src), target=str(tgt), out=str(tmp_path / "run"),
                      steps=2, batch=2, log_every=1, sample_every=2, ckpt_every=2, eval_data=str(tgt), **kw)
    known = METHODS[method].Config.__dataclass_fields__
    tr = Trainer(cfg, METHODS[method].Config(**{k: v for k, v in TINY.items() if k in known}))
    assert tr.task.name == task
    batch = _to({k: d.batch(4, 2) for k, d in tr.domains.items()}, tr.device)
    losses = tr.method.training_step(batch, 4)
    assert losses and all(np.isfinite(float(v)) for v in losses.values())
    grads = [p.grad for p in tr.method.task_net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    res = tr.fit(progress=False)
    summary = tr.task.summary(res["eval"])
    assert isinstance(summary, str) and summary
    meta = export_run(tmp_path / "run", "task", "onnx", tmp_path / "task.onnx")
    assert meta["task"] == task and meta["parity_max_abs_error"] < 1e-4


def test_a_method_refuses_a_task_it_cannot_train(data, tmp_path):
    from adapt.config import TrainConfig
    from adapt.methods import METHODS
    from adapt.trainer import Trainer
    from simdata.errors import SimdataError

    src, tgt, kw = data["segmentation"]
    cfg = TrainConfig(method="pixelda", task="segmentation", source=str(src), target=str(tgt),
                      out=str(tmp_path / "r"))
    with pytest.raises(SimdataError, match="cannot train the segmentation task"):
        Trainer(cfg, METHODS["pixelda"].Config())


def test_translation_round_trips_through_the_crop_intrinsics():
    from adapt.translation import decode_translation, encode_translation
    from simdata.crops import crop_intrinsics

    K_full = PRIMESENSE.K
    rng = np.random.default_rng(0)
    t = torch.tensor(np.c_[rng.uniform(-0.2, 0.2, (8, 2)), rng.uniform(0.4, 1.5, 8)], dtype=torch.float64)
    boxes = [(int(x), int(y), int(s)) for x, y, s in zip(rng.integers(0, 500, 8), rng.integers(0, 400, 8),
                                                          rng.integers(40, 200, 8))]
    K = torch.tensor(np.stack([crop_intrinsics(K_full, b, 64) for b in boxes]))
    code = encode_translation(t, K, 64)
    assert torch.allclose(decode_translation(code, K, 64), t, atol=1e-9)
    # the projection of t is the same point whether seen in the crop or the full image
    uv_full = (t @ torch.tensor(K_full).T)[:, :2] / t[:, 2:]
    x0 = torch.tensor([b[0] for b in boxes], dtype=torch.float64)
    s = torch.tensor([b[2] for b in boxes], dtype=torch.float64)
    u_crop = code[:, 0] * 64 + 31.5  # offsets from the crop's centre pixel
    assert torch.allclose((u_crop + 0.5) * s / 64 - 0.5 + x0, uv_full[:, 0], atol=1e-9)
    # zeta does not depend on the distance for a box that scales with it
    assert torch.all(code[:, 2] > 0)
