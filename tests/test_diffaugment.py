"""DiffAugment (adapt.diffaugment): the transforms' geometry, the policy parser's refusals, and
SPIGAN with --d-augment: used, deterministic, resumable."""
import pytest
import torch

from adapt.diffaugment import cutout, diff_augment, parse_policy, translate
from helpers import synthetic_and_real_scenes
from simdata.errors import SimdataError


def test_translation_shifts_whole_images_by_whole_pixels_and_fills_zeros():
    torch.manual_seed(0)
    b, c, h, w = 6, 2, 16, 24
    x = (torch.arange(b * c * h * w, dtype=torch.float32) + 1).view(b, c, h, w)
    y = translate(x, ratio=0.25)
    shifts = set()
    for i in range(b):
        for ch in range(c):
            hit = y[i, ch] != 0
            rows, cols = torch.nonzero(hit, as_tuple=True)
            # every kept value comes from the same offset: out[r, c] = in[r + dy, c + dx]
            flat = x[i, ch].flatten()
            where = torch.searchsorted(flat, y[i, ch][hit])
            dy = where // w - rows
            dx = where % w - cols
            assert len(set(dy.tolist())) == 1 and len(set(dx.tolist())) == 1
            dy, dx = int(dy[0]), int(dx[0])
            assert abs(dy) <= 4 and abs(dx) <= 6  # a quarter of each side
            # exactly the pixels whose source lies inside the image are kept
            assert int(hit.sum()) == (h - abs(dy)) * (w - abs(dx))
            shifts.add((dy, dx))
    assert len(shifts) > 1  # drawn per image


def test_cutout_zeroes_one_box_and_keeps_the_rest():
    torch.manual_seed(1)
    x = torch.rand(8, 3, 20, 30) + 1  # no zeros of its own
    y = cutout(x, ratio=0.5)
    for i in range(8):
        cut = (y[i] == 0)
        assert torch.equal(cut[0], cut[1]) and torch.equal(cut[0], cut[2])  # all channels alike
        rows, cols = torch.nonzero(cut[0], as_tuple=True)
        assert 0 < len(rows)
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert int(box) == len(rows)  # one filled rectangle
        assert rows.max() - rows.min() + 1 <= 11 and cols.max() - cols.min() + 1 <= 15
        inner = (0 < rows.min()) & (rows.max() < 19) & (0 < cols.min()) & (cols.max() < 29)
        if inner:  # away from the edges the box is whole: 2 * (10 // 2) + 1 by 2 * (15 // 2) + 1
            assert len(rows) == 11 * 15
        assert torch.equal(y[i][~cut], x[i][~cut])


def test_gradients_reach_the_images_and_no_policy_is_the_identity():
    torch.manual_seed(2)
    x = torch.randn(4, 3, 32, 32, requires_grad=True)
    diff_augment(x, ("color", "translation", "cutout")).square().sum().backward()
    assert x.grad.abs().sum() > 0
    assert diff_augment(x, ()) is x


def test_policy_parser_refuses_what_it_cannot_do():
    assert parse_policy("translation,cutout", 1) == ("translation", "cutout")
    assert parse_policy("", 3) == () and parse_policy("none", 1) == ()
    assert parse_policy("color,translation", 3) == ("color", "translation")
    with pytest.raises(SimdataError, match="color"):
        parse_policy("color", 1)  # brightness of a height map would be a height offset
    with pytest.raises(SimdataError, match="'flip' is not one of"):
        parse_policy("translation,flip", 3)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return synthetic_and_real_scenes(tmp_path_factory.mktemp("diffaug"), syn_scenes=2, real_views=3)


def test_spigan_with_d_augment_trains_differently_and_resumes_to_the_same_weights(scenes, tmp_path):
    from adapt.config import TrainConfig
    from adapt.methods.spigan import SpiganConfig
    from adapt.trainer import Trainer

    syn, real = scenes
    base = dict(method="spigan", source=str(syn), target=str(real / "train_pbr"), height=64, crop=64,
                batch=2, ckpt_every=2, log_every=1)
    tiny = dict(gen_filters=8, gen_blocks=1, disc_filters=8, task_width=8, vgg_weights="random")
    aug = dict(tiny, d_augment="translation,cutout")
    Trainer(TrainConfig(**base, out=str(tmp_path / "plain"), steps=4), SpiganConfig(**tiny)).fit(progress=False)
    Trainer(TrainConfig(**base, out=str(tmp_path / "full"), steps=4), SpiganConfig(**aug)).fit(progress=False)
    Trainer(TrainConfig(**base, out=str(tmp_path / "part"), steps=2), SpiganConfig(**aug)).fit(progress=False)
    Trainer(TrainConfig(**base, out=str(tmp_path / "part"), steps=4), SpiganConfig(**aug),
            resume=True).fit(progress=False)

    def nets(run):
        return torch.load(tmp_path / run / "checkpoints/last.pt", weights_only=False)["method"]["nets"]

    full, part, plain = nets("full"), nets("part"), nets("plain")
    for net in full:
        for k in full[net]:
            assert torch.equal(full[net][k], part[net][k]), f"{net}.{k}"
    d = "discriminator"
    assert any(not torch.equal(full[d][k], plain[d][k]) for k in full[d])  # the option is used
    with pytest.raises(SimdataError, match="color"):
        Trainer(TrainConfig(**{**base, "channels": "height"}, out=str(tmp_path / "h"), steps=1),
                SpiganConfig(**dict(tiny, d_augment="color")))


@pytest.mark.parametrize("name, calls", [("cut", 3), ("cycada", 6)])
def test_cut_and_cycada_show_every_image_discriminator_augmented_images(scenes, tmp_path, monkeypatch,
                                                                         name, calls):
    from adapt.config import TrainConfig
    from adapt.methods import METHODS
    from adapt.trainer import Trainer

    import adapt.diffaugment

    seen = []

    def spy(x, policy):
        seen.append(policy)
        return diff_augment(x, policy)

    monkeypatch.setattr(adapt.diffaugment, "diff_augment", spy)
    syn, real = scenes
    cfg = METHODS[name].Config(gen_filters=8, gen_blocks=1, disc_filters=8, task_width=8,
                               d_augment="color,cutout")
    Trainer(TrainConfig(method=name, source=str(syn), target=str(real / "train_pbr"), height=48, crop=32,
                        batch=2, out=str(tmp_path), steps=1), cfg).fit(progress=False)
    # CUT: D on target and fake, then on fake for G; CyCADA: both D's for G, then both on real and pooled fake
    assert seen == [("color", "cutout")] * calls
