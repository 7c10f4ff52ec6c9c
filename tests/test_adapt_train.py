"""The trainer end to end on CPU: every method, resume, export, eval, translate, CLI errors."""
import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from helpers import ASSETS
from simdata.crop_render import render_crops
from simdata.pipeline import RenderConfig
from simdata.randomize import RandomizationConfig

TINY = {"gen_filters": 8, "gen_blocks": 1, "disc_filters": 8, "task_width": 8}


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("adapt")
    render_crops(RenderConfig(meshes=str(ASSETS), out=str(tmp / "syn"), seed=0), 40, 32, progress=False)
    target = RenderConfig(meshes=str(ASSETS), out=str(tmp / "real"), seed=1, sensor="primesense",
                          randomize=RandomizationConfig(materials=True, lights=True, backgrounds=True))
    render_crops(target, 30, 32, progress=False)
    return tmp / "syn", tmp / "real"


def train_cfg(crops, out, method="pixelda", **kw):
    from adapt.config import TrainConfig

    syn, real = crops
    base = dict(method=method, source=str(syn), target=str(real), out=str(out), steps=4, batch=4,
                size=32, log_every=1, sample_every=2, ckpt_every=2)
    return TrainConfig(**{**base, **kw})


def method_cfg(name, **kw):
    from adapt.methods import METHODS

    cls = METHODS[name].Config
    names = {f for f in cls.__dataclass_fields__}
    return cls(**{k: v for k, v in {**TINY, **kw}.items() if k in names})


@pytest.mark.parametrize("name", ["pixelda", "source-only", "target-only"])
def test_every_method_trains_a_step_with_finite_losses_and_gradients(crops, tmp_path, name):
    from adapt.trainer import Trainer, _to

    tr = Trainer(train_cfg(crops, tmp_path / name, name, channels="rgbd"), method_cfg(name))
    batch = _to({k: d.batch(0, 4) for k, d in tr.domains.items()}, tr.device)
    losses = tr.method.training_step(batch, 0)
    assert losses and all(np.isfinite(float(v)) for v in losses.values())
    for net_name, net in tr.method.nets.items():
        for p_name, p in net.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), f"{net_name}.{p_name}"
            assert p.grad.abs().sum() > 0 or "bias" in p_name, f"{net_name}.{p_name} got no gradient"


def test_resume_gives_the_weights_of_an_uninterrupted_run(crops, tmp_path):
    from adapt.trainer import Trainer

    Trainer(train_cfg(crops, tmp_path / "full"), method_cfg("pixelda")).fit(progress=False)
    Trainer(train_cfg(crops, tmp_path / "part", steps=2), method_cfg("pixelda")).fit(progress=False)
    Trainer(train_cfg(crops, tmp_path / "part"), method_cfg("pixelda"), resume=True).fit(progress=False)
    a = torch.load(tmp_path / "full/checkpoints/last.pt", weights_only=False)
    b = torch.load(tmp_path / "part/checkpoints/last.pt", weights_only=False)
    assert a["step"] == b["step"] == 4
    for net in a["method"]["nets"]:
        for k, v in a["method"]["nets"][net].items():
            assert torch.equal(v, b["method"]["nets"][net][k]), f"{net}.{k}"
    lines = [json.loads(x) for x in (tmp_path / "part/metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3, 4]
    full = [json.loads(x) for x in (tmp_path / "full/metrics.jsonl").read_text().splitlines()]
    assert [x["loss_g"] for x in lines] == [x["loss_g"] for x in full]  # same training curve


def cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "adapt.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def test_train_export_eval_translate_from_the_command_line(crops, tmp_path):
    import onnxruntime as ort

    syn, real = crops
    run = tmp_path / "run"
    tiny = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    r = cli("train", "pixelda", "--source", syn, "--target", real, "--out", run, "--steps", 4,
            "--batch", 4, "--size", 32, "--sample-every", 2, "--eval-data", real, "--no-progress", *tiny)
    assert r.returncode == 0, r.stderr
    assert "eval on" in r.stdout and (run / "samples/step_0000004.png").exists()
    assert list((run / "tb").iterdir())  # TensorBoard events
    conf = json.loads((run / "config.json").read_text())
    assert conf["changed"]["method"]["gen_blocks"] == 1 and conf["train"]["steps"] == 4
    r = cli("export", run, "--net", "task", "--format", "onnx", "--out", tmp_path / "pose.onnx")
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "pose.onnx.json").read_text())
    assert meta["parity_max_abs_error"] < 1e-4 and len(meta["classes"]) == 10
    assert meta["task"] == "pose" and set(meta["outputs"]) == {"logits", "rotation", "translation_code"}
    sess = ort.InferenceSession(str(tmp_path / "pose.onnx"))
    logits, R, code = sess.run(None, {"image": np.zeros((5, 3, 32, 32), np.float32)})
    assert logits.shape == (5, 10) and code.shape == (5, 3)
    assert np.allclose(R @ R.transpose(0, 2, 1), np.eye(3), atol=1e-5)
    for net in ("task", "generator"):
        r = cli("export", run, "--net", net, "--format", "torchscript", "--out", tmp_path / f"{net}.pt")
        assert r.returncode == 0, r.stderr
        assert (tmp_path / f"{net}.pt").exists()
    r = cli("eval", run, "--data", real)
    assert r.returncode == 0, r.stderr
    res = json.loads((run / f"eval_{real.name}.json").read_text())
    assert 0 <= res["accuracy"] <= 1 and 0 <= res["mean_rot_err_deg"] <= 180
    assert res["add_s_recall_10"] is not None and res["median_trans_err_mm"] >= 0
    r = cli("predict", run, "--input", real, "--out", tmp_path / "pred")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "pred/poses.png").exists()
    assert (tmp_path / "pred/predictions.jsonl").read_text().count("\n") == 30
    r = cli("translate", run, "--input", syn, "--out", tmp_path / "adapted")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "adapted/labels.jsonl").read_text().count("\n") == 40
    a = [json.loads(x)["quat_wxyz"] for x in (tmp_path / "adapted/labels.jsonl").read_text().splitlines()]
    b = [json.loads(x)["quat_wxyz"] for x in (syn / "labels.jsonl").read_text().splitlines()]
    assert a == b  # labels kept
    assert (tmp_path / "adapted/models_info.json").read_bytes() == (syn / "models_info.json").read_bytes()
    r = cli("train", "pixelda", "--source", syn, "--target", real, "--out", run, "--steps", 6,
            "--batch", 4, "--size", 32, "--no-progress", "--resume", *tiny)
    assert r.returncode == 0 and "to step 6" in r.stdout, r.stderr


@pytest.mark.parametrize("args, message", [
    (["train", "pixelda", "--out", "X", "--source", "S"], "needs --target"),
    (["train", "source-only", "--out", "X", "--source", "/nope"], "does not exist"),
    (["train", "source-only", "--out", "X", "--source", "S", "--device", "tpu"], "--device 'tpu'"),
    (["train", "source-only", "--out", "X", "--source", "S", "--steps", "0"], "--steps 0 must be"),
    (["train", "source-only", "--out", "X", "--source", "S", "--size", "64"], "are 32x32 but --size is 64"),
    (["export", "/nope", "--out", "x.onnx"], "holds no checkpoint"),
    (["train", "source-only", "--out", "X", "--source", "S", "--task", "segmentation",
      "--rotation", "quat"], "option(s) of the pose task"),
    (["train", "source-only", "--out", "X", "--source", "S", "--rot-loss", "bogus"], "--rot-loss 'bogus'"),
    (["train", "pixelda", "--out", "X", "--source", "S", "--target", "S", "--task", "segmentation"],
     "cannot train the segmentation task"),
])
def test_bad_input_gives_one_clear_line(crops, tmp_path, args, message):
    syn, _ = crops
    args = [str(syn) if a == "S" else str(tmp_path / "run") if a == "X" else a for a in args]
    if "--size" not in args and args[0] == "train":
        args += ["--size", "32"]
    r = cli(*args)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_existing_run_needs_resume(crops, tmp_path):
    from adapt.trainer import Trainer
    from simdata.errors import SimdataError

    Trainer(train_cfg(crops, tmp_path / "r", "source-only", steps=2), method_cfg("source-only")).fit(progress=False)
    with pytest.raises(SimdataError, match="pass --resume"):
        Trainer(train_cfg(crops, tmp_path / "r", "source-only"), method_cfg("source-only"))


@pytest.mark.parametrize("cmd", [[], ["train"], ["train", "pixelda"], ["train", "source-only"],
                                 ["eval"], ["translate"], ["export"], ["view"], ["ensemble"]])
def test_every_adapt_command_has_help(cmd):
    r = cli(*cmd, "--help")
    assert r.returncode == 0 and "usage: adapt" in r.stdout


@pytest.mark.parametrize("flag", ["amp", "cudnn_benchmark"])
def test_cuda_only_options_are_refused_on_a_cpu(crops, tmp_path, flag):
    from adapt.trainer import Trainer
    from simdata.errors import SimdataError

    with pytest.raises(SimdataError, match=f"--{flag.replace('_', '-')} needs CUDA"):
        Trainer(train_cfg(crops, tmp_path / flag, "source-only", device="cpu", **{flag: True}),
                method_cfg("source-only"))


def test_weight_average_is_the_mean_it_claims():
    """update_ema is decay*ema + (1-decay)*net for weights and batch-norm statistics; early
    steps use a lower decay so the random start is soon forgotten."""
    from adapt.ema import ema_decay, make_ema, update_ema

    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3))
    ema = make_ema(net)
    assert not any(p.requires_grad for p in ema.parameters())
    before = {k: v.clone() for k, v in ema.state_dict().items()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
        net[1].running_mean.fill_(2.0)
        net[1].num_batches_tracked.fill_(7)
    update_ema(ema, net, 0.9)
    for k, v in ema.state_dict().items():
        live = net.state_dict()[k]
        want = live if not v.is_floating_point() else 0.9 * before[k] + 0.1 * live
        assert torch.allclose(v, want.to(v.dtype)), k
    assert ema_decay(0.999, 0) == pytest.approx(0.1) and ema_decay(0.999, 10 ** 6) == 0.999
    assert ema_decay(0.5, 3) == pytest.approx(4 / 13) and ema_decay(0.5, 20) == 0.5


def test_averaged_weights_are_checkpointed_resumed_and_deployed(crops, tmp_path):
    """--ema: the average is kept in the checkpoint, a resumed run's equals an uninterrupted
    one's, and eval/export/predict (load_run) get it as the task net; a bad decay is refused."""
    from adapt.ema import EMA_NET
    from adapt.trainer import Trainer, load_run
    from simdata.errors import SimdataError

    cfg = dict(method="source-only", ema=0.5)
    Trainer(train_cfg(crops, tmp_path / "full", **cfg), method_cfg("source-only")).fit(progress=False)
    Trainer(train_cfg(crops, tmp_path / "part", steps=2, **cfg), method_cfg("source-only")).fit(progress=False)
    Trainer(train_cfg(crops, tmp_path / "part", **cfg), method_cfg("source-only"),
            resume=True).fit(progress=False)
    a = torch.load(tmp_path / "full/checkpoints/last.pt", weights_only=False)["method"]["nets"]
    b = torch.load(tmp_path / "part/checkpoints/last.pt", weights_only=False)["method"]["nets"]
    assert set(a) == {"task", EMA_NET}
    for k, v in a[EMA_NET].items():
        assert torch.equal(v, b[EMA_NET][k]), k
    floats = [k for k, v in a["task"].items() if v.is_floating_point()]
    assert any(not torch.equal(a["task"][k], a[EMA_NET][k]) for k in floats)  # an average, not a copy
    method, _ = load_run(tmp_path / "full", "cpu")
    for k, v in method.task_net.state_dict().items():
        assert torch.equal(v, a[EMA_NET][k]), k
    with pytest.raises(SimdataError, match="--ema"):
        Trainer(train_cfg(crops, tmp_path / "bad", method="source-only", ema=1.0), method_cfg("source-only"))
