"""SPIGAN and the segmentation path: losses, schedule, early stopping, VGG loading, training,
resume, evaluation with negative transfer, export, predict, translate."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers import synthetic_and_real_scenes
from simdata.errors import SimdataError

TINY = ["--height", "64", "--crop", "64", "--gen-filters", "8", "--gen-blocks", "1",
        "--disc-filters", "8", "--task-width", "8", "--vgg-weights", "random", "--batch", "2"]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return synthetic_and_real_scenes(tmp_path_factory.mktemp("spigan"), syn_scenes=2, real_views=3)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "adapt.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=600)


def test_losses_on_known_inputs():
    from adapt.losses import lsgan_d_loss, lsgan_g_loss, masked_l1, perceptual_l1

    a = [torch.ones(1, 2, 2, 2), torch.zeros(1, 1, 4, 4)]
    b = [torch.zeros(1, 2, 2, 2), torch.zeros(1, 1, 4, 4)]
    assert perceptual_l1(a, a).item() == 0
    assert perceptual_l1(a, b).item() == pytest.approx(8 / 24)  # 8 differing of 24 elements
    pred, target = torch.tensor([[[[1.0, 2.0]]]]), torch.tensor([[[[0.0, 0.0]]]])
    assert masked_l1(pred, target, torch.tensor([[[[True, False]]]])).item() == 1.0
    assert lsgan_d_loss(torch.ones(4), torch.zeros(4)).item() == 0
    assert lsgan_d_loss(torch.zeros(4), torch.ones(4)).item() == pytest.approx(1.0)
    assert lsgan_g_loss(torch.ones(3)).item() == 0 and lsgan_g_loss(torch.zeros(3)).item() == 0.5


def test_five_g_steps_for_every_other_step():
    from adapt.methods.spigan import updates_others

    assert [updates_others(s, 5) for s in range(10)] == [False] * 4 + [True] + [False] * 4 + [True]


def test_residual_generator_starts_as_the_identity_and_learns():
    from adapt.nets import build

    torch.manual_seed(0)
    g = build("resnet-generator", channels=3, filters=8, blocks=1, residual=True)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.equal(g(x), x)
    opt = torch.optim.Adam(g.parameters(), 1e-2)
    for _ in range(3):  # pull towards a darker image: the output moves off the input
        opt.zero_grad()
        (g(x) - (x - 0.5)).abs().mean().backward()
        opt.step()
    assert (g(x) - x).abs().mean() > 1e-3
    plain = build("resnet-generator", channels=3, filters=8, blocks=1)
    assert not torch.allclose(plain(x), x, atol=0.1)


def test_paper_settings_and_our_defaults():
    from adapt.methods.spigan import SpiganConfig

    ours, paper = SpiganConfig(), SpiganConfig(paper=True)
    assert (ours.g_steps, ours.plain_g) == (1, False)
    assert (paper.g_steps, paper.plain_g) == (5, True)
    assert SpiganConfig(**{**vars(paper)}).g_steps == 5  # as a saved run's config reloads
    with pytest.raises(SimdataError, match="--paper sets --g-steps 5"):
        SpiganConfig(paper=True, g_steps=3)


def test_early_stopping_rule_on_synthetic_curves():
    from adapt.stopping import discriminator_wins

    g = [1.0] * 50
    assert discriminator_wins([0.2] * 50, g, window=20, margin=0.5)  # D consistently far ahead
    assert not discriminator_wins([0.6] * 50, g, window=20, margin=0.5)  # not significant
    crossing = [0.2 if i % 2 else 0.8 for i in range(50)]  # not consistent
    assert not discriminator_wins(crossing, g, window=20, margin=0.5)
    assert not discriminator_wins([0.1] * 5, g[:5], window=20, margin=0.5)  # too early to tell
    late = [0.8] * 30 + [0.1] * 20  # only the recent window counts
    assert discriminator_wins(late, g, window=20, margin=0.5)


def test_vgg19_loads_torchvision_style_weights_and_never_falls_back_silently(tmp_path, monkeypatch):
    from adapt.nets.vgg import PERCEPTUAL_LAYERS, VGG19Features, load_vgg19

    src = load_vgg19("random")
    assert "random" in src.weights_source
    state = {f"features.{k}": v for k, v in src.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # a full torchvision file has these too
    torch.save(state, tmp_path / "vgg19.pth")
    loaded = load_vgg19(str(tmp_path / "vgg19.pth"))
    assert loaded.weights_source == str(tmp_path / "vgg19.pth")
    for k, v in src.features.state_dict().items():
        assert torch.equal(v, loaded.features.state_dict()[k])
    feats = loaded(torch.zeros(1, 3, 32, 32))
    assert len(feats) == len(PERCEPTUAL_LAYERS) and feats[0].shape[1] == 64
    assert not any(p.requires_grad for p in loaded.parameters())
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_hub"))
    with pytest.raises(SimdataError, match="--vgg-weights"):
        load_vgg19("auto")
    torch.save({"foo": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(SimdataError, match="not a torchvision VGG19"):
        load_vgg19(str(tmp_path / "bad.pth"))
    assert isinstance(VGG19Features(), torch.nn.Module)


def test_labels_follow_the_masks(scenes):
    from adapt.scenes import SceneDomain, label_map

    syn, _ = scenes
    d = SceneDomain(syn, 120, 96, stream=1, seed=0)
    s = d.ds[0]
    labels = label_map(s, d.obj_ids, agnostic=False)
    for mask, oid in zip(s["masks_visib"], s["obj_ids"].tolist()):
        assert (labels[mask] == 2 + d.obj_ids.index(oid)).all()
    assert (labels[s["depth"][0] == 0] == 0).all()  # nothing hit: background
    assert (labels == 1).sum() > 1000  # the table top
    assert d.names[:2] == ["background", "table"] and len(d.names) == 12


@pytest.mark.parametrize("name, pi", [("spigan", "depth"), ("spigan", "normals"),
                                      ("seg-source-only", None)])
def test_scene_methods_train_with_finite_losses_and_gradients(scenes, tmp_path, name, pi):
    from adapt.config import TrainConfig
    from adapt.methods import METHODS
    from adapt.trainer import Trainer, _to

    syn, real = scenes
    cfg = TrainConfig(method=name, source=str(syn), target=str(real / "train_pbr"), out=str(tmp_path),
                      height=64, crop=64, batch=2)
    kw = dict(gen_filters=8, gen_blocks=1, disc_filters=8, task_width=8, vgg_weights="random", pi=pi)
    mcfg = METHODS[name].Config(**{k: v for k, v in kw.items() if k in METHODS[name].Config.__dataclass_fields__})
    tr = Trainer(cfg, mcfg)
    batch = _to({k: d.batch(4, 2) for k, d in tr.domains.items()}, tr.device)
    losses = tr.method.training_step(batch, 4)  # step 4: G and the others are both updated
    assert all(np.isfinite(float(v)) for v in losses.values())
    for net_name, net in tr.method.nets.items():
        for p_name, p in net.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), f"{net_name}.{p_name}"


def test_spigan_end_to_end_from_the_command_line(scenes, tmp_path):
    import onnxruntime as ort

    syn, real = scenes
    target = real / "train_pbr"
    src, run = tmp_path / "src", tmp_path / "spigan"
    r = cli("train", "seg-source-only", "--source", syn, "--out", src, "--steps", 5, "--height", 64,
            "--crop", 64, "--task-width", 8, "--batch", 2, "--no-progress")
    assert r.returncode == 0, r.stderr
    r = cli("train", "spigan", "--source", syn, "--target", target, "--out", run, "--steps", 10,
            "--sample-every", 5, "--log-every", 1, "--eval-data", real, "--no-progress", "--paper", *TINY)
    assert r.returncode == 0, r.stderr
    assert "mIoU" in r.stdout and "random" in r.stderr  # loud about random VGG features
    conf = json.loads((run / "config.json").read_text())
    assert "random" in conf["method"]["vgg_weights_used"]
    state = torch.load(run / "checkpoints/last.pt", weights_only=False)
    steps = {k: max(s["step"].item() for s in v["state"].values())
             for k, v in state["method"]["optimizers"].items()}
    assert steps == {"g": 10, "dtp": 2}  # --paper: five G steps for every step of D, T and P
    assert conf["method"]["g_steps"] == 5 and conf["method"]["plain_g"]
    r = cli("eval", run, "--data", real, "--baseline", src)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert 0 <= res["miou"] <= 1 and 0 <= res["negative_transfer"] <= 1
    assert set(res["per_class_iou"]) >= {"background", "table"}
    for net in ("task", "generator"):
        for fmt in ("onnx", "torchscript"):
            r = cli("export", run, "--net", net, "--format", fmt, "--out", tmp_path / f"{net}.{fmt}")
            assert r.returncode == 0, r.stderr
    sess = ort.InferenceSession(str(tmp_path / "task.onnx"))
    assert sess.run(None, {"image": np.zeros((1, 3, 48, 80), np.float32)})[0].shape == (1, 12, 48, 80)
    r = cli("predict", run, "--input", target, "--out", tmp_path / "pred")
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "pred").glob("*_labels.png"))) == 3
    r = cli("translate", run, "--input", syn, "--out", tmp_path / "adapted")
    assert r.returncode == 0, r.stderr
    from simdata.info import dataset_info
    assert dataset_info(tmp_path / "adapted")["problems"] == []
    gt = (syn / "train_pbr/000000/scene_gt.json").read_text()
    assert (tmp_path / "adapted/train_pbr/000000/scene_gt.json").read_text() == gt  # labels kept


def test_ablation_flags_and_early_stop(scenes, tmp_path):
    from adapt.config import TrainConfig
    from adapt.methods.spigan import SpiganConfig
    from adapt.trainer import Trainer

    syn, real = scenes
    base = dict(method="spigan", source=str(syn), target=str(real / "train_pbr"), height=64, crop=64,
                batch=2, log_every=1, ckpt_every=2)
    tiny = dict(gen_filters=8, gen_blocks=1, disc_filters=8, task_width=8, vgg_weights="random")
    no_pi = Trainer(TrainConfig(**base, out=str(tmp_path / "a"), steps=1), SpiganConfig(no_pi=True, **tiny))
    assert "privileged" not in no_pi.method.nets and no_pi.method.delta > 0
    b = Trainer(TrainConfig(**base, out=str(tmp_path / "b"), steps=1), SpiganConfig(base=True, **tiny))
    assert "privileged" not in b.method.nets and b.method.vgg is None
    # a margin no generator can meet: the rule fires as soon as its window is full
    t = Trainer(TrainConfig(**base, out=str(tmp_path / "c"), steps=50),
                SpiganConfig(early_stop_window=6, early_stop_margin=1e6, **tiny))
    res = t.fit(progress=False)
    assert res["steps"] == 6 and "discriminator loss" in res["early_stop"]
    assert (tmp_path / "c/checkpoints/best.pt").is_file()
    best = torch.load(tmp_path / "c/checkpoints/best.pt", weights_only=False)
    assert best["step"] == 4  # the last checkpoint before the rule fired
    lines = [json.loads(x) for x in (tmp_path / "c/metrics.jsonl").read_text().splitlines()]
    assert any("early_stop" in x for x in lines)
    # --resume of a run that stopped early trains nothing and keeps its result
    files = {f: (tmp_path / "c" / f).read_bytes() for f in ("checkpoints/best.pt", "checkpoints/last.pt",
                                                            "metrics.jsonl")}
    again = Trainer(TrainConfig(**base, out=str(tmp_path / "c"), steps=50),
                    SpiganConfig(early_stop_window=6, early_stop_margin=1e6, **tiny), resume=True)
    res = again.fit(progress=False)
    assert res["steps"] == 6 and "discriminator loss" in res["early_stop"]
    assert all((tmp_path / "c" / f).read_bytes() == b for f, b in files.items())


def test_a_run_saved_before_the_identity_start_loads_with_a_plain_generator(scenes, tmp_path):
    from adapt.config import TrainConfig
    from adapt.methods.spigan import SpiganConfig
    from adapt.trainer import Trainer, load_run

    syn, real = scenes
    tiny = dict(gen_filters=8, gen_blocks=1, disc_filters=8, task_width=8, vgg_weights="random")
    Trainer(TrainConfig(method="spigan", source=str(syn), target=str(real / "train_pbr"), height=64,
                        crop=64, batch=2, out=str(tmp_path), steps=1), SpiganConfig(**tiny)).fit(progress=False)
    assert load_run(tmp_path, "cpu")[0].nets["generator"].residual
    ckpt = tmp_path / "checkpoints/last.pt"
    state = torch.load(ckpt, weights_only=False)
    del state["config"]["method"]["plain_g"]  # as runs of earlier versions were saved
    torch.save(state, ckpt)
    assert not load_run(tmp_path, "cpu")[0].nets["generator"].residual


def test_spigan_resume_equals_uninterrupted(scenes, tmp_path):
    from adapt.config import TrainConfig
    from adapt.methods.spigan import SpiganConfig
    from adapt.trainer import Trainer

    syn, real = scenes
    base = dict(method="spigan", source=str(syn), target=str(real / "train_pbr"), height=64, crop=64,
                batch=2, ckpt_every=3)
    tiny = dict(gen_filters=8, gen_blocks=1, disc_filters=8, task_width=8, vgg_weights="random")
    Trainer(TrainConfig(**base, out=str(tmp_path / "full"), steps=6), SpiganConfig(**tiny)).fit(progress=False)
    Trainer(TrainConfig(**base, out=str(tmp_path / "part"), steps=3), SpiganConfig(**tiny)).fit(progress=False)
    Trainer(TrainConfig(**base, out=str(tmp_path / "part"), steps=6), SpiganConfig(**tiny),
            resume=True).fit(progress=False)
    a = torch.load(tmp_path / "full/checkpoints/last.pt", weights_only=False)["method"]["nets"]
    b = torch.load(tmp_path / "part/checkpoints/last.pt", weights_only=False)["method"]["nets"]
    for net in a:
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k}"


def test_folder_of_images_with_label_masks_evaluates(scenes, tmp_path):
    """The evaluation layout: photos + NAME_labels.png + classes.json."""
    import cv2

    from adapt.scenes import SceneDomain

    syn, _ = scenes
    src = SceneDomain(syn, 120, 96, stream=1, seed=0, agnostic=True)
    folder = tmp_path / "labelled"
    folder.mkdir()
    for i in range(2):
        s = src.sample(i, None)
        rgb = ((s["x"] + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
        cv2.imwrite(str(folder / f"img{i}.png"), rgb[..., ::-1])
        cv2.imwrite(str(folder / f"img{i}_labels.png"), s["label"].numpy().astype(np.uint8))
    (folder / "classes.json").write_text(json.dumps(src.names))
    d = SceneDomain(folder, 120, 96, stream=1, seed=0)
    assert d.labelled and len(d) == 2 and d.names == src.names
    assert torch.equal(d.sample(0, None)["label"], src.sample(0, None)["label"])


def test_init_task_starts_from_a_source_only_run_and_refuses_another_net(scenes, tmp_path):
    """--init-task: SPIGAN's task net starts as the source-only run's deployed net (its
    averaged weights with --ema), the other nets as they would anyway; a run of other inputs or
    another net width is refused in one line; a resumed run keeps its own weights."""
    from adapt.config import TrainConfig
    from adapt.methods.baselines import SegSourceOnlyConfig
    from adapt.methods.spigan import SpiganConfig
    from adapt.trainer import Trainer

    syn, real = scenes
    common = dict(source=str(syn), height=64, crop=64, batch=2)
    tiny = dict(gen_filters=8, gen_blocks=1, disc_filters=8, task_width=8, vgg_weights="random")
    src = tmp_path / "src"
    Trainer(TrainConfig(method="seg-source-only", out=str(src), steps=3, ema=0.5, **common),
            SegSourceOnlyConfig(task_width=8)).fit(progress=False)
    trained = torch.load(src / "checkpoints/last.pt", weights_only=False)["method"]["nets"]["task_ema"]
    spigan = dict(method="spigan", target=str(real / "train_pbr"), **common)
    warm = Trainer(TrainConfig(**spigan, out=str(tmp_path / "warm"), steps=2, init_task=str(src)),
                   SpiganConfig(**tiny))
    cold = Trainer(TrainConfig(**spigan, out=str(tmp_path / "cold"), steps=2), SpiganConfig(**tiny))
    for k, v in warm.method.task_net.state_dict().items():
        assert torch.equal(v, trained[k]), k
        assert not torch.equal(v, cold.method.task_net.state_dict()[k]) or v.dtype == torch.long, k
    for k, v in warm.method.nets["generator"].state_dict().items():
        assert torch.equal(v, cold.method.nets["generator"].state_dict()[k]), k
    warm.fit(progress=False)
    assert json.loads((tmp_path / "warm/config.json").read_text())["train"]["init_task"] == str(src)
    # resumed: the checkpoint's weights, not the initial run's again
    after = torch.load(tmp_path / "warm/checkpoints/last.pt", weights_only=False)["method"]["nets"]["task"]
    resumed = Trainer(TrainConfig(**spigan, out=str(tmp_path / "warm"), steps=4, init_task=str(src)),
                      SpiganConfig(**tiny), resume=True)
    for k, v in resumed.method.task_net.state_dict().items():
        assert torch.equal(v, after[k]), k
    with pytest.raises(SimdataError, match=r"--init-task .*input channels 'rgb' there, 'rgbd' here"):
        Trainer(TrainConfig(**spigan, out=str(tmp_path / "d"), steps=1, init_task=str(src),
                            channels="rgbd"), SpiganConfig(**tiny))
    with pytest.raises(SimdataError, match=r"--init-task .*another architecture.*--task-width"):
        Trainer(TrainConfig(**spigan, out=str(tmp_path / "w"), steps=1, init_task=str(src)),
                SpiganConfig(**{**tiny, "task_width": 16}))
    with pytest.raises(SimdataError, match="--init-task .*no such run folder"):
        Trainer(TrainConfig(**spigan, out=str(tmp_path / "n"), steps=1, init_task=str(tmp_path / "none")),
                SpiganConfig(**tiny))


def test_perceptual_task_compares_the_starting_task_net_frozen_and_resumes_with_it(scenes, tmp_path):
    """--perceptual task: the perceptual loss reads a frozen copy of the task net SPIGAN starts
    from (--init-task); T trains, the copy does not move, a resumed run keeps the copy it saved;
    the option without --init-task, or an unknown choice, is refused in one line."""
    from adapt.config import TrainConfig
    from adapt.methods.baselines import SegSourceOnlyConfig
    from adapt.methods.spigan import SpiganConfig
    from adapt.trainer import Trainer, load_run

    syn, real = scenes
    common = dict(source=str(syn), height=64, crop=64, batch=2)
    tiny = dict(gen_filters=8, gen_blocks=1, disc_filters=8, task_width=8, perceptual="task")
    src = tmp_path / "src"
    Trainer(TrainConfig(method="seg-source-only", out=str(src), steps=3, **common),
            SegSourceOnlyConfig(task_width=8)).fit(progress=False)
    start = torch.load(src / "checkpoints/last.pt", weights_only=False)["method"]["nets"]["task"]
    spigan = dict(method="spigan", target=str(real / "train_pbr"), **common)
    t = Trainer(TrainConfig(**spigan, out=str(tmp_path / "run"), steps=3, init_task=str(src)),
                SpiganConfig(**tiny))
    assert t.method.vgg is None  # no VGG19 is loaded for it
    t.fit(progress=False)
    saved = torch.load(tmp_path / "run/checkpoints/last.pt", weights_only=False)["method"]["nets"]
    assert bool(saved["features"]["ready"])
    for k, v in start.items():
        assert torch.equal(saved["features"][f"net.{k}"], v), k  # frozen: batch-norm stats too
    assert any(not torch.equal(saved["task"][k], v) for k, v in start.items() if v.is_floating_point())
    hist = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert any(h.get("loss_perceptual", 0) > 0 for h in hist)
    resumed = Trainer(TrainConfig(**spigan, out=str(tmp_path / "run"), steps=4, init_task=str(src)),
                      SpiganConfig(**tiny), resume=True)
    for k, v in resumed.method.nets["features"].state_dict().items():
        assert torch.equal(v, saved["features"][k]), k
    method, _ = load_run(tmp_path / "run", "cpu")  # eval, export and predict rebuild it
    for k, v in method.task_net.state_dict().items():
        assert torch.equal(v, saved["task"][k]), k
    with pytest.raises(SimdataError, match="--perceptual task .*--init-task RUN"):
        Trainer(TrainConfig(**spigan, out=str(tmp_path / "cold"), steps=1), SpiganConfig(**tiny))
    with pytest.raises(SimdataError, match="--perceptual 'imagenet': choose from vgg, task"):
        Trainer(TrainConfig(**spigan, out=str(tmp_path / "bad"), steps=1),
                SpiganConfig(**{**tiny, "perceptual": "imagenet"}))
