"""Every registered method on every task it declares (adapt.methods.METHODS, so a new method is
covered without editing this file): finite losses, a gradient for every parameter of every net
within the first steps, resume after a kill equal to an uninterrupted run, export with parity.
Then DANN's and SimGAN's pieces: gradient reversal, DANN's schedules, the task nets' feature /
head split, SimGAN's phases and history buffer."""
import io
import math
import shutil

import numpy as np
import pytest
import torch

from test_tasks import data  # noqa: F401  (fixture: labelled source and target data per task)

# tiny nets; SimGAN's pre-training phases cut to one step each and one R update per D update,
# SPIGAN's D, T, P updated every second step, so four steps reach every phase of both
TINY = {"gen_filters": 8, "gen_blocks": 1, "disc_filters": 8, "disc_hidden": 16, "task_width": 8,
        "vgg_weights": "random", "refiner_pretrain": 1, "disc_pretrain": 1, "k_g": 1, "history": 2,
        "g_steps": 2, "disc_layers": 2, "num_patches": 16, "mlp_units": 16}
# the inputs a task's data are tried with, in order: a method that refuses one (grasp nets on
# height alone, for a method that restyles colour) gets the next
CHANNELS = {"pose": ("rgb",), "segmentation": ("rgb",), "grasp": ("height", "rgbh")}
STEPS = 4  # killed after STEPS // 2
SCENE_CROP = 32  # px: scenes (segmentation, grasp) are cut into crops of this side


def pairs():
    from adapt.methods import METHODS

    return [(m, t) for m, cls in METHODS.items() for t in cls.tasks]


def _trainer(data, method, task, out, resume=False):
    from adapt.config import TrainConfig
    from adapt.methods import METHODS
    from adapt.trainer import Trainer
    from simdata.errors import SimdataError

    src, tgt, kw = data[task]
    kw = {k: v for k, v in kw.items() if k != "channels"}
    if "crop" in kw:
        kw["crop"] = SCENE_CROP
    cls = METHODS[method].Config
    mcfg = cls(**{k: v for k, v in TINY.items() if k in cls.__dataclass_fields__})
    refused = []
    for channels in CHANNELS[task]:
        cfg = TrainConfig(method=method, task=task, source=str(src), target=str(tgt), out=str(out),
                          steps=STEPS, batch=2, log_every=1, sample_every=STEPS // 2,
                          ckpt_every=STEPS // 2, channels=channels, **kw)
        try:
            return Trainer(cfg, mcfg, resume=resume)
        except SimdataError as e:  # the method's word: it cannot read these inputs
            refused.append(f"{channels}: {e}")
    pytest.skip(f"{method} refuses every input of the {task} data: {'; '.join(refused)}")


def _assert_same(a, b, where="state"):
    assert type(a) is type(b), where
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), where
    else:
        assert a == b, where


@pytest.mark.parametrize("method, task", pairs())
def test_method_trains_resumes_and_exports(data, tmp_path, method, task):
    from adapt.export import export_run

    # 1. an uninterrupted run; after every step: finite losses, and which parameters got a
    # gradient (the optimizers clear them with set_to_none, so a gradient seen was this step's).
    # Just before step STEPS // 2 (after the checkpoint of the steps before it) the run folder
    # is copied: what a run killed there leaves behind (runs are deterministic, so a second run
    # killed there would leave the same bytes)
    full = _trainer(data, method, task, tmp_path / "full")
    m = full.method
    params = {f"{n}.{p}": t for n, net in m.nets.items() for p, t in net.named_parameters() if t.requires_grad}
    got, nonzero = set(), set()
    step_of = m.training_step

    def watched(batch, step):
        if step == STEPS // 2:
            (tmp_path / "part").mkdir()
            for name in ("checkpoints", "metrics.jsonl", "config.json"):
                copy = shutil.copytree if (tmp_path / "full" / name).is_dir() else shutil.copy2
                copy(tmp_path / "full" / name, tmp_path / "part" / name)
        losses = step_of(batch, step)
        bad = {k: float(v) for k, v in losses.items() if not np.isfinite(float(v))}
        assert not bad, f"step {step}: {bad}"
        for name, t in params.items():
            if t.grad is not None:
                assert torch.isfinite(t.grad).all(), f"step {step}: {name}"
                got.add(name)
                if t.grad.abs().sum() > 0:
                    nonzero.add(name)
        return losses
    m.training_step = watched
    full.fit(progress=False)
    assert not set(params) - got, f"no gradient in {STEPS} steps: {sorted(set(params) - got)}"
    # biases in front of a normalisation get an exactly zero gradient
    zero = sorted(n for n in set(params) - nonzero if not n.endswith("bias"))
    assert not zero, f"only zero gradients in {STEPS} steps: {zero}"

    # 2. the killed run resumed: the same state as the uninterrupted one, bit for bit
    resumed = _trainer(data, method, task, tmp_path / "part", resume=True)
    assert resumed.start == STEPS // 2
    resumed.fit(progress=False)
    a = torch.load(tmp_path / "full/checkpoints/last.pt", weights_only=False)
    b = torch.load(tmp_path / "part/checkpoints/last.pt", weights_only=False)
    assert a["step"] == b["step"] == STEPS
    # weights, and the optimizer, scheduler and any state of the method's own
    _assert_same(a["method"], b["method"], "method")

    # 3. export: the task net, and the generator where the method has one, match PyTorch
    nets = ["task"] + (["generator"] if m.generator is not None else [])
    for net in nets:
        meta = export_run(tmp_path / "full", net, "onnx", tmp_path / f"{net}.onnx")
        assert meta["parity_max_abs_error"] < 1e-4 and meta["method"] == method


# -- DANN ---------------------------------------------------------------------------------------
def test_gradient_reversal_is_the_identity_forward_and_flips_and_scales_the_gradient():
    from adapt.nets.domain import grad_reverse

    x = torch.randn(3, 4, requires_grad=True)
    w = torch.randn(3, 4)
    y = grad_reverse(x, 0.3)
    assert torch.equal(y, x)
    (y * w).sum().backward()
    assert torch.allclose(x.grad, -0.3 * w)
    x.grad = None
    (grad_reverse(x) * w).sum().backward()  # lambda = 1 by default
    assert torch.allclose(x.grad, -w)


def test_dann_lambda_and_learning_rate_schedules():
    from adapt.methods.dann import Dann, DannConfig, dann_lambda, dann_lr_factor
    from adapt.tasks import DataSpec, SegmentationTask

    assert dann_lambda(0.0) == 0.0
    assert dann_lambda(0.5) == pytest.approx(2 / (1 + math.exp(-5)) - 1) == pytest.approx(0.98661, abs=1e-5)
    assert dann_lambda(1.0) == pytest.approx(0.9999092, abs=1e-7)
    assert dann_lr_factor(0.0) == 1.0
    assert dann_lr_factor(0.5) == pytest.approx(6 ** -0.75)
    assert dann_lr_factor(1.0) == pytest.approx(11 ** -0.75)
    # the method's scheduler follows mu_0 / (1 + 10 p)^0.75 over the run's total_steps
    m = Dann(DannConfig(task_width=8, disc_filters=8), DataSpec(3, 32, ["a", "b"]), torch.device("cpu"),
             task=SegmentationTask(), total_steps=10)
    opt, sched = m.optimizers["sgd"], m.schedulers["sgd"]
    lrs = []
    for _ in range(11):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.01) and lrs[5] == pytest.approx(0.01 * 6 ** -0.75)
    assert lrs[10] == pytest.approx(0.01 * 11 ** -0.75)
    assert type(m.nets["domain"]).__name__ == "ConvDomainClassifier"  # dense features: per patch


def test_task_nets_split_into_features_and_head_without_changing_outputs():
    from adapt.methods.dann import Dann, DannConfig
    from adapt.nets import build
    from adapt.tasks import DataSpec, PoseTask

    torch.manual_seed(0)
    for name, kw in [("pose-net", dict(channels=4, size=32, classes=3, width=8)),
                     ("fcn", dict(channels=3, out=3, width=8)), ("fcn-context", dict(channels=3, out=3, width=8)),
                     ("ggcnn2", dict(channels=1, width=8))]:
        net = build(name, **kw).eval()
        x = torch.rand(2, kw["channels"], 32, 32) * 2 - 1
        h = net.encode(x)
        out, split = net(x), net.decode(h)
        for o, s in zip(*(t if isinstance(t, tuple) else (t,) for t in (out, split))):
            assert torch.equal(o, s), name
        if name == "pose-net":
            assert h.shape == (2, 256)
            for o, s in zip(net.heads(x), net.decode_heads(h)):
                assert torch.equal(o, s)
        else:
            assert h.dim() == 4
    # the domain classifier follows the features: an MLP on PoseNet's vector
    m = Dann(DannConfig(task_width=8, disc_hidden=16), DataSpec(3, 32, ["a", "b"]), torch.device("cpu"),
             task=PoseTask(), total_steps=10)
    assert type(m.nets["domain"]).__name__ == "MLPDomainClassifier"


# -- SimGAN -------------------------------------------------------------------------------------
def test_simgan_phases():
    from adapt.methods.simgan import simgan_phase

    phases = [simgan_phase(s, 1000, 200, 2, 1) for s in (0, 999, 1000, 1199, 1200, 1201, 1202, 1203, 1205)]
    assert phases == ["refiner_pretrain"] * 2 + ["disc_pretrain"] * 2 + \
        ["refiner", "refiner", "discriminator", "refiner", "discriminator"]


def test_history_buffer_gives_half_past_images_and_survives_a_state_round_trip():
    from adapt.methods.simgan import ImageHistory

    def batch(step):  # 4 images, each a constant an 8-bit image holds exactly: 10 * step + i
        v = torch.tensor([10.0 * step + i for i in range(4)]) / 127.5 - 1
        return v[:, None, None, None].expand(4, 3, 2, 2).clone()

    h = ImageHistory(batches=2, seed=0)  # 2 batches of 4: 8 images
    seen = []
    for step in range(8):
        cur = batch(step)
        out = h.mix(cur)
        assert out.shape == cur.shape
        if step == 0:
            assert torch.equal(out, cur)  # nothing stored yet
        else:
            assert torch.equal(out[:2], cur[:2])  # half the current images ...
            past = set(((out[2:, 0, 0, 0] + 1) * 127.5).round().int().tolist())
            assert len(past) == 2 and past <= set(seen)  # ... half earlier ones, never the current
        seen += [10 * step + 2, 10 * step + 3]  # the newest half is stored
        assert h.count == min(2 * (step + 1), 8) and h.capacity == 8
    stored = set(((h.images[:, 0, 0, 0].float() + 1) * 127.5).round().int().tolist())
    assert len(stored) == 8 and stored != set(seen[:8])  # random replacement once full
    # a round trip through torch.save: the copy draws and stores exactly as the original
    buf = io.BytesIO()
    torch.save(h.state_dict(), buf)
    buf.seek(0)
    g = ImageHistory(batches=2, seed=123)
    g.load_state_dict(torch.load(buf, weights_only=False))
    for step in range(8, 12):
        assert torch.equal(h.mix(batch(step)), g.mix(batch(step)))
    _assert_same(h.state_dict(), g.state_dict())


def test_simgan_refuses_inputs_without_colour_and_refines_colour_only():
    from adapt.methods.simgan import Simgan, SimganConfig
    from adapt.tasks import DataSpec, SegmentationTask
    from simdata.errors import SimdataError

    cfg = SimganConfig(gen_filters=8, gen_blocks=1, disc_filters=8, task_width=8)
    with pytest.raises(SimdataError, match="simgan restyles colour"):
        Simgan(cfg, DataSpec(1, 32, ["a", "b"]), torch.device("cpu"), task=SegmentationTask())
    m = Simgan(cfg, DataSpec(4, 32, ["a", "b"]), torch.device("cpu"), task=SegmentationTask())
    x = torch.rand(2, 4, 32, 32) * 2 - 1
    cols = m.samples({"source": {"x": x}, "target": {"x": x}})
    assert list(cols) == ["source", "refined", "target", "prediction"]
    assert cols["refined"].shape == (2, 3, 32, 32)
