"""CyCADA: cycle-consistent adversarial domain adaptation (Hoffman et al., ICML 2018).

Networks: G_st (sim -> real, ``generator``: what export and translate use) and G_ts (real ->
sim), two ResNet generators; D_t (real target vs G_st(x_s)) and D_s (source vs G_ts(x_t)),
two 70x70 PatchGANs; T, the task net (segmentation, or pose: PoseNet's class logits are its
class scores); with ``--feature-adaptation`` a small discriminator D_f on T's outputs. One
iteration updates G_st and G_ts together, then D_t and D_s, then T (and D_f):

    L_G   = 2 E (D_t(G_st(x_s)) - 1)^2 + E (D_s(G_ts(x_t)) - 1)^2                (LSGAN)
            + 10 (|G_ts(G_st(x_s)) - x_s|_1 + |G_st(G_ts(x_t)) - x_t|_1)          (cycle)
            + 1 * on * [CE(T(G_st(x_s)), argmax T(x_s)) + CE(T(G_ts(x_t)), argmax T(x_t))]
    L_D   = 1/2 [E (D_t(x_t) - 1)^2 + E D_t(pool_t(G_st(x_s)))^2]  + the same for D_s
    L_T   = task(T(x_s), y_s) + task(T(sg G_st(x_s)), y_s)                (pixel-level stage)
            [+ lambda_feat E (D_f(softmax T(x_t)) - 1)^2]               (--feature-adaptation)
    L_D_f = 1/2 [E (D_f(softmax T(sg G_st(x_s))) - 1)^2 + E D_f(softmax T(x_t))^2]

with T frozen in L_G (semantic consistency: T is the fixed judge; its argmax on the input is
the pseudo-label, so G keeps what T sees) and ``on`` = 1 only while a running value (an
exponential average, ``--sem-momentum`` 0.9) of T's source cross-entropy is at most 1.0
(``--sem-threshold``, the issue's rule: a T that has not learnt the source yet gives noise
for pseudo-labels). The gate is a tensor, so no step waits for the GPU; the log says when
it turns on (``semantic_on`` in metrics.jsonl, and a log line at the next log step). pool_t,
pool_s: CycleGAN image pools of 50 (adapt.image_pool: with probability 0.5 a stored past
output is shown instead and replaced), with their RNG checkpointed, so a resumed run equals an
uninterrupted one bit for bit. For the pose task the semantic and feature terms use the class
logits only; the rotation and translation terms use source labels only.

Defaults: lambda_cycle 10, sim -> real GAN weight 2, real -> sim 1, semantic weight 1, no
identity loss (CycleGAN's --lambda_identity, ``--lambda-idt``, is 0 in the CyCADA equations),
Adam lr 2e-4 betas (0.5, 0.999), lr constant then linearly to 0 over the second half of
``--steps`` (CycleGAN's 100 + 100 epochs, per step here), CycleGAN's N(0, 0.02) init of G and
D; batch ``--batch`` (the CycleGAN stage of the paper used 1).

Differences from the official code (jhoffman/cycada_release) and why: the stages run jointly
in one loop instead of one after another (source T pre-training, CycleGAN with semantic loss,
then T on translated source, then ADDA): T is trained on source labels from the first step and
the semantic term waits for it through the 1.0 rule; the feature-level stage (ADDA) is an
option, off by default, and its discriminator sees T's softmax outputs (per-pixel maps for
segmentation, class vectors for pose: a small conv net, ``OutputDiscriminator``) instead of
intermediate features (T's architecture varies with the task) and trains T itself rather than
a copy initialised from it; with ``--channels rgbd|rgbh`` the generators restyle colour only
and depth reaches T as the sensor gave it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..diffaugment import DiffAugment
from ..image_pool import ImagePool
from ..losses import lsgan_d_loss
from ..nets import build
from .base import (Method, TranslationConfig, init_gan_weights, linear_decay_adam, require_colour,
                   restyle, step_optimizer, with_colour)

log = logging.getLogger(__name__)


def class_scores(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """T's class logits: (B,C,H,W) of a segmenter, (B,C) of PoseNet (its first output)."""
    out = net(x)
    return out[0] if isinstance(out, (tuple, list)) else out


def mse_to(pred: torch.Tensor, value: float) -> torch.Tensor:
    """E (pred - value)^2: the official LSGAN generator term (not halved)."""
    return (pred - value).pow(2).mean()


class OutputDiscriminator(nn.Module):
    """D_f of the feature-level stage: T's softmax output, (B,C,H,W) maps or (B,C) vectors
    (taken as 1x1 maps), -> (B,1,H',W') LSGAN scores; 3x3 convs, leaky ReLU 0.2."""

    def __init__(self, classes: int, filters: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(classes, filters, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(filters, 2 * filters, 3, 2, 1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * filters, 2 * filters, 3, 2, 1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * filters, 1, 3, 1, 1))

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        return self.net(p[:, :, None, None] if p.dim() == 2 else p)


@dataclass
class CycadaConfig(TranslationConfig):
    lambda_cycle: float = field(default=10.0, metadata={"help": "weight of the L1 cycle losses"})
    lambda_gan_st: float = field(default=2.0, metadata={"help": "weight of the sim -> real GAN loss"})
    lambda_gan_ts: float = field(default=1.0, metadata={"help": "weight of the real -> sim GAN loss"})
    lambda_idt: float = field(default=0.0, metadata={"help": "CycleGAN identity loss, times --lambda-cycle (0 = off, as in CyCADA)"})
    lambda_sem: float = field(default=1.0, metadata={"help": "weight of the semantic consistency loss"})
    sem_threshold: float = field(default=1.0, metadata={"help": "semantic consistency only while T's running source cross-entropy is at most this"})
    sem_momentum: float = field(default=0.9, metadata={"help": "running value of T's source loss: r = m r + (1 - m) loss"})
    pool_size: int = field(default=50, metadata={"help": "image pool per discriminator (0 = off)"})
    feature_adaptation: bool = field(default=False, metadata={"help": "feature-level stage: ADDA on T's softmax outputs"})
    lambda_feat: float = field(default=1.0, metadata={"help": "with --feature-adaptation: weight of T's adversarial loss"})


class Cycada(Method):
    """CyCADA (Hoffman et al. 2018): CycleGAN both ways with semantic consistency, T on its output."""

    name = "cycada"
    Config = CycadaConfig
    needs = ("source", "target")
    tasks = ("segmentation", "pose")

    def __init__(self, cfg: CycadaConfig, data, device, training: bool = True, task=None,
                 total_steps: int = 0):
        super().__init__(cfg, data, device, task=task, total_steps=total_steps)
        require_colour(self.name, data.channels)
        self.d_augment = DiffAugment(cfg.d_augment, 3)  # the image discriminators' (not D_f's)
        gen = lambda: init_gan_weights(build("resnet-generator", channels=3, filters=cfg.gen_filters,
                                             blocks=cfg.gen_blocks)).to(device)
        disc = lambda: init_gan_weights(build("patch-discriminator", channels=3, filters=cfg.disc_filters,
                                              layers=cfg.disc_layers)).to(device)
        self.nets = {"generator": gen(), "generator_ts": gen(), "discriminator": disc(),
                     "discriminator_s": disc(), "task": self.build_task_net(cfg.task_width, cfg.task_net or None)}
        if cfg.feature_adaptation:
            self.nets["discriminator_feat"] = init_gan_weights(
                OutputDiscriminator(len(data.classes), cfg.disc_filters)).to(device)
        groups = {"g": ("generator", "generator_ts"), "d": ("discriminator", "discriminator_s"),
                  "task": ("task",), "feat": ("discriminator_feat",)}
        self._params = {k: [p for n in names if n in self.nets for p in self.nets[n].parameters()]
                        for k, names in groups.items()}
        for key, params in self._params.items():
            if params:
                self.optimizers[key], self.schedulers[key] = linear_decay_adam(
                    params, cfg.lr, cfg.beta1, total_steps, cfg.decay_start)
        seeds = torch.randint(2 ** 62, (2,)).tolist()  # from the run's seed (set before building)
        self.pools = {"target": ImagePool(cfg.pool_size, seeds[0]), "source": ImagePool(cfg.pool_size, seeds[1])}
        # running value of T's source cross-entropy (inf: not measured yet)
        self.sem_running = torch.tensor(float("inf"), device=device)
        self._sem_logged = False

    # -- checkpoints: the pools and the running value are state too -----------------------------
    def state_dict(self) -> dict:
        return {**super().state_dict(), "pools": {k: p.state_dict() for k, p in self.pools.items()},
                "sem_running": self.sem_running.clone()}

    def load_state_dict(self, state: dict, nets_only: bool = False) -> None:
        super().load_state_dict(state, nets_only)
        if not nets_only:
            for k, p in self.pools.items():
                p.load_state_dict(state["pools"][k])
            self.sem_running = state["sem_running"].to(self.device)

    def _frozen(self, *names):
        for n in names:
            self.nets[n].requires_grad_(False)

    def _unfrozen(self, *names):
        for n in names:
            self.nets[n].requires_grad_(True)

    def training_step(self, batch: dict, step: int) -> dict[str, torch.Tensor | float]:
        cfg, n = self.cfg, self.nets
        G_st, G_ts, D_t, D_s, T = n["generator"], n["generator_ts"], n["discriminator"], n["discriminator_s"], n["task"]
        src, tgt = batch["source"], batch["target"]
        xs, xt = src["x"], tgt["x"]
        cs, ct = xs[:, :3], xt[:, :3]
        # G_st and G_ts (D and T fixed)
        frozen = ("discriminator", "discriminator_s", "task")
        self._frozen(*frozen)
        fake_t, fake_s = G_st(cs), G_ts(ct)
        aug = self.d_augment
        l_gan_st, l_gan_ts = mse_to(D_t(aug(fake_t)), 1), mse_to(D_s(aug(fake_s)), 1)
        l_cyc = (G_ts(fake_t) - cs).abs().mean() + (G_st(fake_s) - ct).abs().mean()
        loss = cfg.lambda_gan_st * l_gan_st + cfg.lambda_gan_ts * l_gan_ts + cfg.lambda_cycle * l_cyc
        logs = {"loss_g_st": l_gan_st.detach(), "loss_g_ts": l_gan_ts.detach(), "loss_cycle": l_cyc.detach()}
        if cfg.lambda_idt > 0:
            l_idt = (G_st(ct) - ct).abs().mean() + (G_ts(cs) - cs).abs().mean()
            loss = loss + cfg.lambda_cycle * cfg.lambda_idt * l_idt
            logs["loss_idt"] = l_idt.detach()
        on = (self.sem_running <= cfg.sem_threshold).float()
        if cfg.lambda_sem > 0:
            with torch.no_grad():
                pseudo_s, pseudo_t = class_scores(T, xs).argmax(1), class_scores(T, xt).argmax(1)
            l_sem = (F.cross_entropy(class_scores(T, with_colour(xs, fake_t)), pseudo_s)
                     + F.cross_entropy(class_scores(T, with_colour(xt, fake_s)), pseudo_t))
            loss = loss + cfg.lambda_sem * on * l_sem
            logs["loss_semantic"] = l_sem.detach()
        step_optimizer(self.optimizers["g"], self.schedulers["g"], loss, self._params["g"], cfg.clip)
        self._unfrozen(*frozen)
        # D_t and D_s on pooled past outputs
        l_dt = lsgan_d_loss(D_t(aug(ct)), D_t(aug(self.pools["target"].query(fake_t.detach()))))
        l_ds = lsgan_d_loss(D_s(aug(cs)), D_s(aug(self.pools["source"].query(fake_s.detach()))))
        step_optimizer(self.optimizers["d"], self.schedulers["d"], l_dt + l_ds, self._params["d"], cfg.clip)
        # T on source and translated source (and, optionally, adversarially on target outputs)
        adapted = with_colour(xs, fake_t.detach())
        l_src, m_src = self.task_loss(src, cfg.pose_weight)
        l_ad, _ = self.task_loss({**src, "x": adapted}, cfg.pose_weight)
        loss_t = l_src + l_ad
        if cfg.feature_adaptation:
            D_f = n["discriminator_feat"]
            D_f.requires_grad_(False)
            p_t = class_scores(T, xt).softmax(1)
            l_fa = mse_to(D_f(p_t), 1)  # target outputs should look like adapted-source ones
            D_f.requires_grad_(True)
            loss_t = loss_t + cfg.lambda_feat * l_fa
            logs["loss_feat_t"] = l_fa.detach()
        step_optimizer(self.optimizers["task"], self.schedulers["task"], loss_t, self._params["task"], cfg.clip)
        if cfg.feature_adaptation:
            with torch.no_grad():
                p_a, p_t = class_scores(T, adapted).softmax(1), class_scores(T, xt).softmax(1)
            l_df = lsgan_d_loss(D_f(p_a), D_f(p_t))
            step_optimizer(self.optimizers["feat"], self.schedulers["feat"], l_df, self._params["feat"], cfg.clip)
            logs["loss_d_feat"] = l_df.detach()
        ce = m_src.get("ce", l_src).detach()
        m = cfg.sem_momentum
        self.sem_running = torch.where(torch.isinf(self.sem_running), ce, m * self.sem_running + (1 - m) * ce)
        logs.update({"loss_d_t": l_dt.detach(), "loss_d_s": l_ds.detach(), "loss_task_src": l_src.detach(),
                     "loss_task_adapted": l_ad.detach(), "task_src_running": self.sem_running.clone(),
                     "semantic_on": on, "lr": self.schedulers["g"].get_last_lr()[0]})
        return logs

    def stop_check(self, history: list[dict]) -> str | None:
        """Never stops; logs (once) the first logged step at which semantic consistency was on."""
        if not self._sem_logged and history and history[-1].get("semantic_on"):
            self._sem_logged = True
            first = next(h for h in history if h.get("semantic_on"))
            log.info("cycada: semantic consistency on by step %d (T's running source loss %.3f <= %g)",
                     first["step"], first.get("task_src_running", float("nan")), self.cfg.sem_threshold)
        return None

    @torch.no_grad()
    def samples(self, batch: dict) -> dict[str, torch.Tensor]:
        xs, xt = batch["source"]["x"], batch["target"]["x"]
        adapted = restyle(self.nets["generator"], xs)
        return {"source": xs[:, :3], "adapted": adapted[:, :3], "target": xt[:, :3],
                "target_as_source": self.nets["generator_ts"](xt[:, :3]),
                "prediction": self.task.predict_images(self.nets["task"], xt)}
