"""CUT and FastCUT: contrastive unpaired translation (Park, Efros, Zhang, Zhu, ECCV 2020), with
a task net trained on the translated source.

Networks: G (ResNet generator, sim -> real, colour), D (70x70 PatchGAN), H (one 2-layer MLP per
NCE layer, Linear(C_l, 256)-ReLU-Linear(256, 256), outputs L2-normalised: the official
``netF mlp_sample``) and T (the task's net: segmentation, pose, or grasp maps on rgbh). One
iteration updates D, then G and H together, then T:

    L_D    = 1/2 [ E (D(y) - 1)^2 + E D(G(x))^2 ]                              (LSGAN)
    L_G,H  = lambda_GAN E (D(G(x)) - 1)^2 + lambda_NCE * NCE
             CUT:     NCE = 1/2 [ PatchNCE(x, G(x)) + PatchNCE(y, G(y)) ]     (identity on target)
             FastCUT: NCE = PatchNCE(x, G(x~)) with x~ = x mirrored with p = 0.5 and the query
                      features mirrored back (flip-equivariance augmentation)
    PatchNCE(a, b) = 1/L sum_l l_NCE( H_l(G^l(b))[P_l], sg H_l(G^l(a))[P_l] )
    L_T    = task(T(x), y_x) + task(T(sg G(x)), y_x)     (pose terms weighted --pose-weight)

x: source (synthetic) image, y: target (real) image, G^l: G's activations at NCE layer l, P_l:
``--num-patches`` (256) positions drawn per layer and used for both the query (translated)
and the key (input) side; l_NCE: adapt.losses.patch_nce, temperature 0.07, the negatives
being the other patches of the same image (official
``nce_includes_all_negatives_from_minibatch=False``); sg: stop-gradient (the official code
detaches the keys). G gets no task loss (CUT has none); T learns from source and translated
source like SPIGAN's T, so the run yields a task net and a generator (export, translate).

Defaults follow the paper and the official code (taesungp/contrastive-unpaired-translation):
CUT lambda_GAN 1, lambda_NCE 1, identity NCE; FastCUT lambda_NCE 10, flip equivariance, no
identity. Adam lr 2e-4, betas (0.5, 0.999) for G+H, D and T; the lr is constant, then falls
linearly to 0: over the second half of ``--steps`` for CUT (official 200 + 200 epochs), over
the last quarter for FastCUT (150 + 50 epochs), per step here (``--decay-start``). The paper
trains with batch 1: that is ``--batch 1`` (the trainer's default is larger).

NCE layers (``--nce-layers``, official numbering "0,4,8,12,16") index the official
generator's ``nn.Sequential`` (anti-aliased: pad, conv7, norm, relu, [conv, norm, relu,
blur-pool] x 2, 9 residual blocks, ...): 0 the reflection-padded input, 4 and 8 the convs
of the two down-sampling stages (2F and 4F channels), 12 and 16 the outputs of the 1st and
5th residual blocks. Ours (adapt.nets.ResnetGenerator.encode prefix lengths) are 0 the
input (unpadded), 4 and 7 the two stride-2 convs, 10 + b the b-th block: 0,4,8,12,16 ->
0,4,7,10,14 (see ``nce_layer_map``). Our down-sampling convs are strided (the official
``--no_antialias`` variant), so layers 4 and 8 sit at half the official resolution with the
same channels. With fewer than 5 blocks (tiny test nets) 16 maps to the last block.

Other differences from the official code, and why: the MLP heads are built in ``__init__``
from the known channel counts (the official code builds them lazily at the first batch), so
optimizers and checkpoints are plain; instance norm is affine (the repository's generator,
shared with SPIGAN); G, D and H are Xavier-initialised with gain 0.02 as officially, T keeps
PyTorch's default; with ``--channels rgbd|rgbh`` G restyles colour only and depth reaches T as
the sensor gave it (D and the NCE see colour).

Options of ours:
- ``--patch-size S [--patch-size-max S2]``: patch-based training as in Imbusch et al. (2022):
  each step G, D and H learn on random S..S2 px patches (multiple of 4) of the source and
  target crops (e.g. 70 to 90), T on the whole crops translated by G without gradient; whole
  images are translated at test. Off by default (0).
- ``--nce-mask-sampling``: PatchNCE positions drawn with the simulator's object masks (the
  source batch's ``mask``, else its labels: objects are classes >= 2, or "object") so that
  ``--nce-mask-share`` (0.5) of each image's patches lie on objects (as many as there are
  when fewer): objects weigh more in the content loss and keep their appearance. Off by
  default (= plain CUT; the identity term keeps uniform sampling, targets have no masks).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from simdata.errors import SimdataError

from ..diffaugment import DiffAugment
from ..losses import lsgan_d_loss, lsgan_g_loss, patch_nce
from ..nets import build
from .base import (Method, TranslationConfig, init_gan_weights, linear_decay_adam, require_colour,
                   restyle, step_optimizer, with_colour)

# official CUT generator index (anti-aliased ResnetGenerator) -> ResnetGenerator.encode prefix
# length; residual blocks (official 12 + b) are handled in nce_layer_map
_OFFICIAL_TO_OURS = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 6, 8: 7, 9: 8, 10: 9, 11: 9}


def nce_layer_map(official: int, blocks: int) -> int:
    """Our ``ResnetGenerator.encode`` layer for an official CUT ``--nce_layers`` index (encoder
    only); residual block b (official 12 + b) -> 10 + b, past our last block the last one."""
    if official in _OFFICIAL_TO_OURS:
        return _OFFICIAL_TO_OURS[official]
    if 12 <= official < 12 + max(blocks, 9):
        return 10 + min(official - 12, blocks - 1)
    raise SimdataError(f"--nce-layers {official}: use encoder layers 0..{11 + max(blocks, 9)} "
                       f"(official CUT numbering)")


def sample_positions(b: int, h: int, w: int, n: int, device, mask: torch.Tensor | None = None,
                     share: float = 0.5) -> torch.Tensor:
    """(B, min(n, h*w)) int64 flat positions into an h x w map, without repeats per image.

    Without ``mask``: one random set for the whole batch, as the official PatchSampleF. With
    ``mask`` (B,h,w) bool: per image, round(share * n) positions on the mask (all of them
    when fewer), the rest off it (more on the mask when too few are off it). Draws from the
    global torch RNG (the trainer seeds it every step)."""
    hw = h * w
    n = min(n, hw)
    if mask is None:
        return torch.randperm(hw)[:n].to(device).expand(b, n)
    m = mask.reshape(b, hw)
    u = torch.rand(b, hw, device=device)
    on_first = torch.argsort(u + 2.0 * (~m).float(), dim=1)  # mask cells in random order first
    off_first = torch.argsort(u + 2.0 * m.float(), dim=1)
    n_on = m.sum(1)
    k_on = torch.clamp(n_on, max=int(round(share * n)))
    k_on = torch.maximum(k_on, n - (hw - n_on))  # too little off the mask: more on it
    j = torch.arange(n, device=device).expand(b, n)
    on = on_first[:, :n]
    off = off_first.gather(1, (j - k_on[:, None]).clamp(min=0))
    return torch.where(j < k_on[:, None], on, off)


def gather_patches(feat: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """(B,C,H,W) features at (B,N) flat positions -> (B,N,C)."""
    b, c = feat.shape[:2]
    return feat.flatten(2).gather(2, ids[:, None, :].expand(b, c, ids.shape[1])).transpose(1, 2)


def object_mask(src: dict, classes: list[str]) -> torch.Tensor:
    """(B,1,H,W) bool: where the simulator put an object in a source batch (its ``mask``, else
    its labels: classes >= 2 of background/table/objects, or the "object" class)."""
    from ..scenes import IGNORE

    if "mask" in src:
        return src["mask"] > 0.5
    lab = src.get("label")
    if lab is not None and lab.dim() == 3:
        if classes[:2] == ["background", "table"]:
            return ((lab >= 2) & (lab != IGNORE))[:, None]
        if "object" in classes:
            return (lab == classes.index("object"))[:, None]
    raise SimdataError("--nce-mask-sampling needs the simulator's object masks or labels in the "
                       "source data")


class PatchMLP(nn.Module):
    """H: one 2-layer MLP per NCE layer (CUT's ``mlp_sample``): (B,N,C_l) -> (B,N,units),
    L2-normalised."""

    def __init__(self, channels: list[int], units: int = 256):
        super().__init__()
        self.heads = nn.ModuleList(nn.Sequential(nn.Linear(c, units), nn.ReLU(inplace=True),
                                                 nn.Linear(units, units)) for c in channels)

    def forward(self, layer: int, patches: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.heads[layer](patches), dim=-1)


def random_patches(x: torch.Tensor, side: int, extra: torch.Tensor | None = None):
    """A random ``side`` x ``side`` window of every image of ``x`` (B,C,H,W) (and the same
    window of ``extra``, e.g. its mask); global torch RNG."""
    h, w = x.shape[-2:]
    ys = torch.randint(h - side + 1, (len(x),)).tolist()
    xs = torch.randint(w - side + 1, (len(x),)).tolist()
    cut = lambda t: torch.stack([t[i, :, y:y + side, x0:x0 + side] for i, (y, x0) in enumerate(zip(ys, xs))])
    return cut(x), (cut(extra) if extra is not None else None)


@dataclass
class CutConfig(TranslationConfig):
    lambda_gan: float = field(default=1.0, metadata={"help": "weight of the GAN loss"})
    lambda_nce: float = field(default=1.0, metadata={"help": "weight of the PatchNCE loss"})
    no_nce_idt: bool = field(default=False, metadata={"help": "no identity PatchNCE on target images (G(y) vs y); FastCUT's setting"})
    flip_equivariance: bool = field(default=False, metadata={"help": "mirror G's input with p=0.5 and its NCE features back (FastCUT)"})
    nce_layers: str = field(default="0,4,8,12,16", metadata={"help": "generator layers of the PatchNCE loss, official CUT numbering (see the description)"})
    num_patches: int = field(default=256, metadata={"help": "PatchNCE patches per layer and image"})
    nce_t: float = field(default=0.07, metadata={"help": "PatchNCE temperature"})
    mlp_units: int = field(default=256, metadata={"help": "units of the per-layer MLP heads"})
    nce_mask_sampling: bool = field(default=False, metadata={"help": "draw PatchNCE positions with the simulator's object masks (ours)"})
    nce_mask_share: float = field(default=0.5, metadata={"help": "with --nce-mask-sampling: share of the patches on objects"})
    patch_size: int = field(default=0, metadata={"help": "patch-based training (Imbusch et al. 2022): G and D learn on random patches of this side (px, e.g. 70; 0 = whole crops)"})
    patch_size_max: int = field(default=0, metadata={"help": "with --patch-size: sides drawn up to this (e.g. 90; 0 = fixed)"})
    lr: float = field(default=2e-4, metadata={"help": "Adam learning rate (G+H, D, T)"})


@dataclass
class FastCutConfig(CutConfig):
    lambda_nce: float = field(default=10.0, metadata={"help": "weight of the PatchNCE loss"})
    no_nce_idt: bool = field(default=True, metadata={"help": "no identity PatchNCE (FastCUT: always)"})
    flip_equivariance: bool = field(default=True, metadata={"help": "flip-equivariance augmentation (FastCUT: always)"})
    decay_start: float = field(default=0.75, metadata={"help": "share of --steps after which the lr falls linearly to 0"})


class Cut(Method):
    """CUT (Park et al. 2020): PatchNCE + GAN image translation, and a task net on its output."""

    name = "cut"
    Config = CutConfig
    needs = ("source", "target")
    tasks = ("segmentation", "pose", "grasp")

    def __init__(self, cfg: CutConfig, data, device, training: bool = True, task=None,
                 total_steps: int = 0):
        super().__init__(cfg, data, device, task=task, total_steps=total_steps)
        require_colour(self.name, data.channels)
        try:
            official = [int(v) for v in cfg.nce_layers.split(",") if v.strip()]
        except ValueError:
            raise SimdataError(f"--nce-layers {cfg.nce_layers!r}: comma-separated integers") from None
        if not official:
            raise SimdataError("--nce-layers: name at least one layer")
        self.layers = [nce_layer_map(k, cfg.gen_blocks) for k in official]
        least = 3 * 2 ** cfg.disc_layers  # the PatchGAN's last maps need more than one pixel
        if cfg.patch_size and cfg.patch_size < least:
            raise SimdataError(f"--patch-size {cfg.patch_size}: at least {least} px for a "
                               f"{cfg.disc_layers}-layer PatchGAN")
        if not 0 <= cfg.nce_mask_share <= 1:
            raise SimdataError(f"--nce-mask-share {cfg.nce_mask_share} must be in [0, 1]")
        self.d_augment = DiffAugment(cfg.d_augment, 3)
        G = build("resnet-generator", channels=3, filters=cfg.gen_filters, blocks=cfg.gen_blocks)
        self.nets = {
            "generator": init_gan_weights(G, "xavier").to(device),
            "discriminator": init_gan_weights(build("patch-discriminator", channels=3, filters=cfg.disc_filters,
                                                    layers=cfg.disc_layers), "xavier").to(device),
            "mlp": init_gan_weights(PatchMLP(G.encode_channels(self.layers), cfg.mlp_units), "xavier").to(device),
            "task": self.build_task_net(cfg.task_width, cfg.task_net or None),
        }
        self._gh = [*self.nets["generator"].parameters(), *self.nets["mlp"].parameters()]
        for key, params in (("g", self._gh), ("d", self.nets["discriminator"].parameters()),
                            ("task", self.nets["task"].parameters())):
            self.optimizers[key], self.schedulers[key] = linear_decay_adam(
                params, cfg.lr, cfg.beta1, total_steps, cfg.decay_start)

    def patch_nce_loss(self, real: torch.Tensor, fake: torch.Tensor, flipped: bool = False,
                       mask: torch.Tensor | None = None) -> torch.Tensor:
        """PatchNCE between ``real`` (keys, no gradient) and ``fake`` = G(real, mirrored when
        ``flipped``) (queries), averaged over the NCE layers; ``mask`` (B,1,H,W) bool: object
        positions of ``real`` for mask-guided sampling."""
        G, H, cfg = self.nets["generator"], self.nets["mlp"], self.cfg
        with torch.no_grad():
            feat_k = G.encode(real, self.layers)
        feat_q = G.encode(fake, self.layers)
        total = 0.0
        for i, (fq, fk) in enumerate(zip(feat_q, feat_k)):
            if flipped:
                fq = fq.flip(3)
            m = None
            if mask is not None:  # a feature cell is "object" when it covers any object pixel
                m = F.adaptive_max_pool2d(mask.float(), fk.shape[-2:])[:, 0] > 0.5
            ids = sample_positions(fk.shape[0], fk.shape[2], fk.shape[3], cfg.num_patches, fk.device,
                                   m, cfg.nce_mask_share)
            k = H(i, gather_patches(fk, ids)).detach()
            q = H(i, gather_patches(fq, ids))
            total = total + patch_nce(q, k, cfg.nce_t)
        return total / len(feat_q)

    def _patch_side(self, h: int, w: int) -> int:
        cfg = self.cfg
        hi = max(cfg.patch_size, cfg.patch_size_max)
        side = int(torch.randint(cfg.patch_size, hi + 1, ()))
        return max(4, min(side, h, w) // 4 * 4)

    def training_step(self, batch: dict, step: int) -> dict[str, torch.Tensor | float]:
        cfg, G, D, T = self.cfg, self.nets["generator"], self.nets["discriminator"], self.nets["task"]
        src, tgt = batch["source"], batch["target"]
        xs, xt = src["x"], tgt["x"]
        xs_c, xt_c = xs[:, :3], xt[:, :3]
        mask = object_mask(src, self.data.classes) if cfg.nce_mask_sampling else None
        if cfg.patch_size:  # G and D learn on patches, T on whole crops
            side = self._patch_side(*xs.shape[-2:])
            side = min(side, xt.shape[-2] // 4 * 4, xt.shape[-1] // 4 * 4)
            xs_c, mask = random_patches(xs_c, side, mask)
            xt_c, _ = random_patches(xt_c, side)
        n = len(xs_c)
        idt = not cfg.no_nce_idt
        real = torch.cat([xs_c, xt_c]) if idt else xs_c  # one pass: instance norm is per image
        flipped = cfg.flip_equivariance and bool(torch.rand(()) < 0.5)
        fake_all = G(real.flip(3) if flipped else real)
        fake = fake_all[:n]
        # D
        aug = self.d_augment
        l_d = lsgan_d_loss(D(aug(xt_c)), D(aug(fake.detach())))
        step_optimizer(self.optimizers["d"], self.schedulers["d"], l_d,
                       list(D.parameters()), cfg.clip)
        # G and H
        D.requires_grad_(False)
        l_gan = 2 * lsgan_g_loss(D(aug(fake)))  # = E (D(G(x)) - 1)^2, the official (unhalved) term
        D.requires_grad_(True)
        l_nce = self.patch_nce_loss(xs_c, fake, flipped, mask)
        logs = {"loss_d": l_d.detach(), "loss_g": l_gan.detach(), "loss_nce": l_nce.detach()}
        if idt:
            l_idt = self.patch_nce_loss(xt_c, fake_all[n:], flipped)
            logs["loss_nce_idt"] = l_idt.detach()
            l_nce = 0.5 * (l_nce + l_idt)
        step_optimizer(self.optimizers["g"], self.schedulers["g"],
                       cfg.lambda_gan * l_gan + cfg.lambda_nce * l_nce, self._gh, cfg.clip)
        # T on source and translated source (aligned with the source labels)
        if cfg.patch_size:
            with torch.no_grad():
                adapted = restyle(G, xs)
        else:
            adapted = with_colour(xs, (fake.flip(3) if flipped else fake).detach())
        l_src, m_src = self.task_loss(src, cfg.pose_weight)
        l_ad, m_ad = self.task_loss({**src, "x": adapted}, cfg.pose_weight)
        step_optimizer(self.optimizers["task"], self.schedulers["task"], l_src + l_ad,
                       list(T.parameters()), cfg.clip)
        logs.update({"loss_task_src": l_src.detach(), "loss_task_adapted": l_ad.detach(),
                     **{f"task_src_{k}": v for k, v in m_src.items()},
                     "lr": self.schedulers["g"].get_last_lr()[0]})
        return logs

    @torch.no_grad()
    def samples(self, batch: dict) -> dict[str, torch.Tensor]:
        xs = batch["source"]["x"]
        adapted = restyle(self.nets["generator"], xs)
        return {"source": xs[:, :3], "adapted": adapted[:, :3], "target": batch["target"]["x"][:, :3],
                "prediction": self.task.predict_images(self.nets["task"], adapted)}


class FastCut(Cut):
    """FastCUT (Park et al. 2020): CUT with lambda_NCE 10, flip equivariance, no identity NCE."""

    name = "fastcut"
    Config = FastCutConfig
