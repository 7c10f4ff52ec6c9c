"""CUT / FastCUT and CyCADA: PatchNCE, the patch sampler (same positions on both sides, mask
guidance), the image pool, the generator's encoder features, and short trainings on tiny scenes
that resume bit for bit."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import synthetic_and_real_scenes
from simdata.errors import SimdataError

TINY = dict(gen_filters=8, gen_blocks=1, disc_filters=8, task_width=8)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return synthetic_and_real_scenes(tmp_path_factory.mktemp("cut"))


def _cut(**kw):
    from adapt.methods.cut import Cut, CutConfig
    from adapt.tasks import DataSpec, SegmentationTask

    torch.manual_seed(0)
    data = DataSpec(kw.pop("channels", 3), 32, ["background", "table", "obj_a"])
    return Cut(CutConfig(**{**TINY, **kw}), data, torch.device("cpu"), task=SegmentationTask())


def _unit(*shape):
    return F.normalize(torch.randn(*shape), dim=-1)


def test_patch_nce_is_lowest_for_matching_keys_and_equals_the_official_form():
    from adapt.losses import patch_nce

    torch.manual_seed(0)
    q = _unit(2, 64, 16)
    match = patch_nce(q, q, 0.07)
    shuffled = patch_nce(q, q[:, torch.randperm(64)], 0.07)
    random = patch_nce(q, _unit(2, 64, 16), 0.07)
    assert match < 0.1 * shuffled and match < 0.1 * random
    # the official PatchNCELoss: positive first, the negatives' diagonal masked to -10
    k = _unit(2, 64, 16)
    l_pos = (q * k).sum(-1).reshape(-1, 1)
    l_neg = torch.bmm(q, k.transpose(1, 2))
    l_neg = l_neg.masked_fill(torch.eye(64, dtype=torch.bool)[None], -10.0).reshape(-1, 64)
    out = torch.cat([l_pos, l_neg], 1) / 0.07
    official = F.cross_entropy(out, torch.zeros(len(out), dtype=torch.long))
    assert patch_nce(q, k, 0.07).item() == pytest.approx(official.item(), rel=1e-5)


def test_the_generator_exposes_encoder_features_without_changing_its_output():
    from adapt.methods.cut import nce_layer_map
    from adapt.nets import ResnetGenerator

    assert [nce_layer_map(k, 9) for k in (0, 4, 8, 12, 16)] == [0, 4, 7, 10, 14]
    assert nce_layer_map(16, 1) == 10  # a one-block test net: the last block
    with pytest.raises(SimdataError, match="nce-layers"):
        nce_layer_map(25, 9)  # a decoder layer
    torch.manual_seed(0)
    g = ResnetGenerator(3, filters=4, blocks=2).eval()
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    y = g(x)
    feats = g.encode(x, [0, 2, 4, 7, 11])
    assert torch.equal(feats[0], x) and torch.equal(g(x), y)
    assert [f.shape[1] for f in feats] == g.encode_channels([0, 2, 4, 7, 11]) == [3, 4, 8, 16, 16]
    assert [f.shape[-1] for f in feats] == [16, 16, 8, 4, 4]
    assert (feats[1] < 0).any()  # taken before the in-place ReLU that follows it


def test_query_and_key_patches_come_from_the_same_positions(monkeypatch):
    import adapt.methods.cut as cut

    calls = []
    gather = cut.gather_patches

    def spy(feat, ids):
        calls.append(ids.clone())
        return gather(feat, ids)
    monkeypatch.setattr(cut, "gather_patches", spy)
    for mask_sampling in (False, True):
        m = _cut(nce_mask_sampling=mask_sampling)
        real, fake = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)  # different feature maps
        mask = torch.zeros(2, 1, 32, 32, dtype=torch.bool)
        mask[0, :, 4:12, 4:12] = mask[1, :, 20:30, 10:20] = True
        calls.clear()
        loss = m.patch_nce_loss(real, fake, mask=mask if mask_sampling else None)
        assert torch.isfinite(loss)
        assert len(calls) == 2 * len(m.layers)  # key, then query, per layer
        for k_ids, q_ids in zip(calls[::2], calls[1::2]):
            assert torch.equal(k_ids, q_ids)
        if mask_sampling:  # per image: the two images' positions differ
            assert not torch.equal(calls[0][0], calls[0][1])


def test_mask_guided_sampling_puts_the_stated_share_on_the_mask():
    from adapt.methods.cut import sample_positions

    torch.manual_seed(0)
    mask = torch.rand(3, 32, 32) < 0.2
    mask[2] = False
    mask[2, 0, :10] = True  # only 10 object cells: all of them, the rest off the mask
    for share in (0.5, 0.25):
        ids = sample_positions(3, 32, 32, 100, "cpu", mask, share)
        assert ids.shape == (3, 100)
        on = mask.reshape(3, -1).gather(1, ids).sum(1).tolist()
        assert on == [round(100 * share)] * 2 + [10]
        assert all(len(set(row.tolist())) == 100 for row in ids)  # no repeats
    full = torch.ones(1, 8, 8, dtype=torch.bool)
    full[0, 0, :3] = False  # 3 cells off the mask: the rest of the 50 on it
    ids = sample_positions(1, 8, 8, 50, "cpu", full, 0.5)
    assert full.reshape(1, -1).gather(1, ids).sum().item() == 47
    plain = sample_positions(2, 4, 4, 256, "cpu")  # fewer cells than patches: all, one set
    assert plain.shape == (2, 16) and torch.equal(plain[0], plain[1])
    assert sorted(plain[0].tolist()) == list(range(16))


def test_object_masks_come_from_the_mask_or_the_labels():
    from adapt.methods.cut import object_mask

    lab = torch.tensor([[[0, 1, 2, 255]]])
    assert object_mask({"label": lab}, ["background", "table", "a"]).tolist() == [[[[False, False, True, False]]]]
    objectness = torch.tensor([[[0, 1, 1, 255]]])
    assert object_mask({"label": objectness}, ["not object", "object"])[0, 0, 0].tolist() == [False, True, True, False]
    assert object_mask({"mask": torch.tensor([[[[0.0, 1.0]]]]), "label": torch.tensor([3])}, []).sum() == 1
    with pytest.raises(SimdataError, match="nce-mask-sampling"):
        object_mask({"label": torch.tensor([3])}, ["a", "b"])  # pose labels without a mask


def test_image_pool_returns_past_images_at_the_stated_rate_and_survives_a_round_trip():
    from adapt.image_pool import ImagePool

    pool = ImagePool(size=5, seed=3)
    first = torch.arange(5.0)[:, None]
    assert torch.equal(pool.query(first), first)  # filling up: images come back as they are
    past, n = 0, 4000
    seen = set(first[:, 0].tolist())
    for i in range(n):
        img = torch.tensor([[100.0 + i]])
        out = pool.query(img)
        if out.item() != img.item():
            past += 1
            assert out.item() in seen  # an image that was queried before
        seen.add(img.item())
    assert abs(past / n - 0.5) < 0.03  # 0.5 +- 4 standard deviations
    state = pool.state_dict()
    copy = ImagePool(size=5, seed=99)
    copy.load_state_dict(state)
    batch = torch.arange(20.0)[:, None] + 1e4
    assert torch.equal(pool.query(batch), copy.query(batch))
    assert all(torch.equal(a, b) for a, b in zip(pool.images, copy.images))
    assert torch.equal(ImagePool(size=0).query(batch), batch)


def test_colour_methods_refuse_inputs_without_colour():
    from adapt.methods.cycada import Cycada, CycadaConfig
    from adapt.tasks import DataSpec, SegmentationTask

    with pytest.raises(SimdataError, match="cut restyles colour"):
        _cut(channels=1)
    with pytest.raises(SimdataError, match="cycada restyles colour"):
        Cycada(CycadaConfig(**TINY), DataSpec(1, 32, ["a", "b"]), torch.device("cpu"), task=SegmentationTask())


def test_linear_decay_reaches_zero_and_replans_on_resume():
    from adapt.methods.base import linear_decay_adam

    p = [torch.nn.Parameter(torch.zeros(1))]
    opt, sched = linear_decay_adam(p, 1.0, 0.5, 8, 0.5)
    lrs = []
    for _ in range(8):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == [1, 1, 1, 1, 1, 0.75, 0.5, 0.25] and opt.param_groups[0]["lr"] == 0
    opt2, sched2 = linear_decay_adam(p, 1.0, 0.5, 16, 0.5)  # resumed with --steps 16
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sched.state_dict())
    assert opt2.param_groups[0]["lr"] == 1.0  # step 8 of 16: not yet decaying


RUNS = [("cut", {}), ("fastcut", {}), ("cycada", {}),
        ("cut", dict(nce_mask_sampling=True, patch_size=24, patch_size_max=28)),
        ("cycada", dict(feature_adaptation=True, sem_threshold=1e9)),
        ("cut", dict(d_augment="color,translation,cutout")), ("cycada", dict(d_augment="translation,cutout"))]


@pytest.mark.parametrize("name, extra", RUNS, ids=["cut", "fastcut", "cycada", "cut-mask-patches",
                                                   "cycada-feature-semantic", "cut-diffaugment",
                                                   "cycada-diffaugment"])
def test_trains_with_finite_losses_and_resumes_bit_for_bit(scenes, tmp_path, name, extra):
    from adapt.config import TrainConfig
    from adapt.methods import METHODS
    from adapt.trainer import Trainer

    syn, real = scenes
    base = dict(method=name, source=str(syn), target=str(real / "train_pbr"), height=48, crop=32,
                batch=2, log_every=1, ckpt_every=2, sample_every=4)
    mcfg = lambda: METHODS[name].Config(**TINY, **extra)
    Trainer(TrainConfig(**base, out=str(tmp_path / "full"), steps=4), mcfg()).fit(progress=False)
    Trainer(TrainConfig(**base, out=str(tmp_path / "part"), steps=2), mcfg()).fit(progress=False)
    Trainer(TrainConfig(**base, out=str(tmp_path / "part"), steps=4), mcfg(), resume=True).fit(progress=False)
    rows = [json.loads(x) for x in (tmp_path / "full/metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all(np.isfinite(v) for r in rows for v in r.values())
    a = torch.load(tmp_path / "full/checkpoints/last.pt", weights_only=False)["method"]
    b = torch.load(tmp_path / "part/checkpoints/last.pt", weights_only=False)["method"]
    for net in a["nets"]:
        for k in a["nets"][net]:
            assert torch.equal(a["nets"][net][k], b["nets"][net][k]), f"{net}.{k}"
    if name == "cycada":
        assert all(torch.equal(x, y) for p in a["pools"] for x, y in zip(a["pools"][p]["images"],
                                                                          b["pools"][p]["images"]))
        assert len(a["pools"]["target"]["images"]) == 8  # 2 images a step, under the pool's 50
        on = [r["semantic_on"] for r in rows]  # off until T's source loss has a running value
        assert on == [0, 1, 1, 1] if "sem_threshold" in extra else on[0] == 0
        if "feature_adaptation" in extra:
            assert "discriminator_feat" in a["nets"] and "loss_feat_t" in rows[0]
    part = [json.loads(x) for x in (tmp_path / "part/metrics.jsonl").read_text().splitlines()]
    assert [r.get("loss_d", r.get("loss_d_t")) for r in part] == [r.get("loss_d", r.get("loss_d_t")) for r in rows]
