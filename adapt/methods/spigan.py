"""SPIGAN: simulator-privileged-information GAN (Lee et al., ICLR 2019).

Four networks learn jointly from labelled synthetic scenes with privileged information (PI)
and unlabelled real images: G (sim -> real, no cycle), D (PatchGAN), T (the task net:
segmentation, or GG-CNN2 grasp maps with ``--task grasp``) and P (the PI network, an FCN,
regressing the simulator's z-buffer depth):

    min_{G,T,P} max_D  alpha L_GAN + beta L_T + gamma L_P + delta L_perc
    L_T    = CE(T(x_s), y_s) + CE(T(G(x_s)), y_s)    (the grasp task: its smooth-L1 map loss)
    L_P    = |P(x_s) - z_s|_1 + |P(G(x_s)) - z_s|_1          (where the simulator has depth)
    L_perc = |phi(x_s) - phi(G(x_s))|_1, phi = VGG19 conv1_2..conv5_2 activations
             (``--perceptual task``: the features of the task net SPIGAN starts from, frozen)

with a least-squares GAN loss. With colour and depth (``--channels rgbd|rgbh``) G restyles the
colour channels only and the depth channel reaches T as the sensor gave it; D, P and the
perceptual loss see colour (P regresses the simulator's depth from colour alone, so it keeps
pushing G to preserve geometry). With depth alone (``--channels depth|height``) G restyles
that channel: sim -> real depth, the unlabelled real frames teaching it the real sensor's
noise and what stands around the objects; D and P see G's depth (P regresses the clean
z-buffer from it), and the perceptual loss sees it repeated into three channels. The PI is
pluggable (``--pi depth|normals``). G is updated every iteration, D, T and P every
``g_steps``-th. Training stops early (keeping the best checkpoint) when D's loss is
significantly and consistently below G's. ``--no-pi`` sets gamma = 0 (SPIGAN-no-PI),
``--base`` sets gamma = delta = 0 (SPIGAN-base). ``--d-augment translation,cutout`` (off by
default, as in the paper) shows D the real and the adapted images through the same random
shifts and cut-outs (DiffAugment, adapt.diffaugment), so that D cannot learn a few target
frames by heart.

Two defaults differ from the paper, on measurements (benchmarks/results/adapt_spigan_*.json;
``--paper`` restores both): D, T and P are updated at every step (the paper: every fifth,
which leaves T a fifth of the updates of a source-only net in the same steps), and G adds a
change to its input, starting as the identity (``--plain-g``: it outputs its image directly),
so that T, trained on G's images from the first step, never sees an untrained G's noise.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from simdata.errors import SimdataError

from ..diffaugment import DiffAugment
from ..losses import lsgan_d_loss, lsgan_g_loss, masked_l1, perceptual_l1
from ..nets import build
from ..nets.frozen import TaskFeatures
from ..nets.vgg import load_vgg19
from ..stopping import discriminator_wins
from .base import GanNetsConfig, Method, restyle, step_optimizer

# Features the perceptual loss can compare (SpiganConfig.perceptual)
PERCEPTUAL_FEATURES = ("vgg", "task")

# Privileged information P can regress: name -> channels. Valid pixels are those where the
# simulator saw a surface (depth > 0; a non-zero normal).
PI_SOURCES = {"depth": 1, "normals": 3}


# The paper's schedule: five G updates for every update of D, T and P.
PAPER_G_STEPS = 5


def updates_others(step: int, g_steps: int) -> bool:
    """Whether D, T and P are updated at ``step`` (G is updated at every step)."""
    return step % g_steps == g_steps - 1


def restyled_channels(channels: int) -> int:
    """How many leading input channels G restyles: the colour (3) of rgb, rgbd and rgbh
    inputs, the one channel of depth or height alone."""
    return 3 if channels >= 3 else channels


@dataclass
class SpiganConfig(GanNetsConfig):
    alpha: float = field(default=1.0, metadata={"help": "weight of the GAN loss"})
    beta: float = field(default=0.5, metadata={"help": "weight of the task loss"})
    gamma: float = field(default=0.1, metadata={"help": "weight of the privileged (depth) loss"})
    delta: float = field(default=0.33, metadata={"help": "weight of the perceptual loss"})
    perceptual: str = field(default="vgg", metadata={"help": "features of the perceptual loss: vgg (VGG19, see --vgg-weights) or task (the features of the task net this run starts from, a frozen copy: needs --init-task RUN; offline, and about the objects the task sees)"})
    no_pi: bool = field(default=False, metadata={"help": "SPIGAN-no-PI ablation: gamma = 0"})
    base: bool = field(default=False, metadata={"help": "SPIGAN-base ablation: gamma = delta = 0"})
    lr: float = field(default=2e-4, metadata={"help": "Adam learning rate"})
    decay_steps: int = field(default=100000, metadata={"help": "staircase learning-rate decay period"})
    decay: float = field(default=1.0, metadata={"help": "learning-rate factor per period"})
    clip: float = field(default=0.0, metadata={"help": "gradient norm clip (0 = off)"})
    g_steps: int = field(default=1, metadata={"help": "G updates for every update of D, T, P (the paper: 5)"})
    plain_g: bool = field(default=False, metadata={"help": "G outputs its image directly, as in the paper, instead of adding a change to its input, starting as the identity"})
    paper: bool = field(default=False, metadata={"help": "the paper's schedule and generator: --g-steps 5 --plain-g (our defaults differ where benchmarks/results/adapt_spigan_*.json says they do better)"})
    pi_net: str = field(default="fcn", metadata={"help": "PI net architecture (registry name)"})
    pi: str = field(default="depth", metadata={"help": "privileged information P regresses: depth (m) or normals"})
    vgg_weights: str = field(default="auto", metadata={"help": "VGG19 ImageNet weights: a .pth path, auto (torch hub cache) or random (logged, weaker)"})
    vgg_weights_used: str = field(default="", metadata={"help": "set by the run: which VGG19 features were used", "cli": False})
    early_stop_window: int = field(default=40, metadata={"help": "logged points in the early-stopping window (0 = off)"})
    early_stop_margin: float = field(default=0.5, metadata={"help": "stop when loss_d < margin * loss_g ..."})
    early_stop_fraction: float = field(default=0.9, metadata={"help": "... in this share of the window"})

    def __post_init__(self):
        if self.paper:
            if self.g_steps not in (1, PAPER_G_STEPS):
                raise SimdataError(f"--paper sets --g-steps {PAPER_G_STEPS}; drop --g-steps {self.g_steps}")
            self.g_steps, self.plain_g = PAPER_G_STEPS, True


class Spigan(Method):
    """SPIGAN (Lee et al. 2019): GAN translation guided by the simulator's privileged depth."""

    name = "spigan"
    Config = SpiganConfig
    saved_defaults = {"plain_g": True}  # G was plain before it could start as the identity
    needs = ("source", "target")
    tasks = ("segmentation", "grasp")

    def __init__(self, cfg: SpiganConfig, data, device, training: bool = True, task=None,
                 total_steps: int = 0):
        super().__init__(cfg, data, device, task=task, total_steps=total_steps)
        # G restyles the colour where there is colour, else the depth channel (restyled_channels)
        self.k = k = restyled_channels(data.channels)
        self.d_augment = DiffAugment(cfg.d_augment, k)
        self.gamma = 0.0 if cfg.no_pi or cfg.base else cfg.gamma
        self.delta = 0.0 if cfg.base else cfg.delta
        self.nets = {
            "generator": build("resnet-generator", channels=k, filters=cfg.gen_filters,
                               blocks=cfg.gen_blocks, residual=not cfg.plain_g).to(device),
            "discriminator": build("patch-discriminator", channels=k, filters=cfg.disc_filters,
                                   layers=cfg.disc_layers).to(device),
            "task": self.build_task_net(cfg.task_width, cfg.task_net or None),
        }
        if cfg.pi not in PI_SOURCES:
            raise SimdataError(f"--pi {cfg.pi!r}: choose from {', '.join(PI_SOURCES)}")
        if self.gamma > 0:
            self.nets["privileged"] = build(cfg.pi_net, channels=k, out=PI_SOURCES[cfg.pi],
                                            width=cfg.task_width).to(device)
        if cfg.perceptual not in PERCEPTUAL_FEATURES:
            raise SimdataError(f"--perceptual {cfg.perceptual!r}: choose from "
                               f"{', '.join(PERCEPTUAL_FEATURES)}")
        self.vgg = None
        if self.delta > 0 and cfg.perceptual == "task":
            # a frozen copy, saved with the run: a resumed run compares with the same net
            self.nets["features"] = TaskFeatures(self.nets["task"])
        elif self.delta > 0 and training:
            self.vgg = load_vgg19(cfg.vgg_weights).to(device)
            cfg.vgg_weights_used = self.vgg.weights_source
        others = [p for name, net in self.nets.items() if name not in ("generator", "features")
                  for p in net.parameters()]
        self._others = others
        self.optimizers["g"], self.schedulers["g"] = self.adam(
            self.nets["generator"].parameters(), cfg.lr, cfg.beta1, cfg.decay_steps, cfg.decay)
        self.optimizers["dtp"], self.schedulers["dtp"] = self.adam(
            others, cfg.lr, cfg.beta1, cfg.decay_steps, cfg.decay)
        self._last_others: dict[str, torch.Tensor | float] = {"loss_d": 0.0, "loss_task_src": 0.0, "loss_pi": 0.0}

    def _pi_loss(self, x, source: dict):
        if self.cfg.pi not in source:
            raise SimdataError(f"the source data have no {self.cfg.pi} (render them with "
                               f"--extras normals,depth_m)")
        target = source[self.cfg.pi]
        valid = target.abs().sum(1, keepdim=True) > 0
        return masked_l1(self.nets["privileged"](x[:, :self.k]), target, valid.expand_as(target))

    def restyle(self, x: torch.Tensor) -> torch.Tensor:
        """(B,C,H,W) -> the same with G's version of the first ``self.k`` channels (the colour,
        or depth alone); channels after them (depth) are kept."""
        return restyle(self.nets["generator"], x, self.k)

    def task_started(self, from_run: bool) -> None:
        if "features" not in self.nets:
            return
        if not from_run:
            raise SimdataError("--perceptual task compares the features of the task net SPIGAN "
                               "starts from: pass --init-task RUN (a finished source-only run), "
                               "or use --perceptual vgg")
        self.nets["features"].load_from(self.task_net)

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The perceptual loss's features of x (B,C,H,W): VGG's of the restyled channels (a
        depth channel repeated to three), or the starting task net's of its whole input."""
        if "features" in self.nets:
            return self.nets["features"](x)
        x = x[:, :self.k]
        return self.vgg(x if self.k == 3 else x.expand(-1, 3, -1, -1))

    def _judge(self, x: torch.Tensor) -> torch.Tensor:
        """D's patch scores of x's restyled channels, through --d-augment's transforms."""
        return self.nets["discriminator"](self.d_augment(x[:, :self.k]))

    def training_step(self, batch: dict, step: int) -> dict[str, torch.Tensor | float]:
        cfg, G = self.cfg, self.nets["generator"]
        src, tgt = batch["source"], batch["target"]
        xs, xt = src["x"], tgt["x"]
        # G step
        fake = self.restyle(xs)
        l_gan = lsgan_g_loss(self._judge(fake))
        l_task, _ = self.task_loss({**src, "x": fake})
        loss = cfg.alpha * l_gan + cfg.beta * l_task
        logs = {"loss_g": l_gan.detach(), "loss_task_adapted": l_task.detach()}
        if self.gamma > 0:
            l_pi = self._pi_loss(fake, src)
            loss = loss + self.gamma * l_pi
            logs["loss_pi_adapted"] = l_pi.detach()
        if self.delta > 0:
            with torch.no_grad():
                real_feats = self._features(xs)
            l_perc = perceptual_l1(real_feats, self._features(fake))
            loss = loss + self.delta * l_perc
            logs["loss_perceptual"] = l_perc.detach()
        step_optimizer(self.optimizers["g"], self.schedulers["g"], loss, list(G.parameters()), cfg.clip)
        # D, T, P step
        if updates_others(step, cfg.g_steps):
            fake = fake.detach()
            l_d = lsgan_d_loss(self._judge(xt), self._judge(fake))
            l_t = self.task_loss(src)[0] + self.task_loss({**src, "x": fake})[0]
            loss = cfg.alpha * l_d + cfg.beta * l_t
            self._last_others = {"loss_d": l_d.detach(), "loss_task_src": l_t.detach(), "loss_pi": 0.0}
            if self.gamma > 0:
                l_p = self._pi_loss(xs, src) + self._pi_loss(fake, src)
                loss = loss + self.gamma * l_p
                self._last_others["loss_pi"] = l_p.detach()
            step_optimizer(self.optimizers["dtp"], self.schedulers["dtp"], loss, self._others, cfg.clip)
        return {**logs, **self._last_others}

    def stop_check(self, history: list[dict]) -> str | None:
        cfg = self.cfg
        d = [h["loss_d"] for h in history if "loss_d" in h]
        g = [h["loss_g"] for h in history if "loss_g" in h]
        if cfg.early_stop_window and discriminator_wins(d, g, cfg.early_stop_window,
                                                        cfg.early_stop_margin, cfg.early_stop_fraction):
            return (f"discriminator loss below {cfg.early_stop_margin} x generator loss in "
                    f"{cfg.early_stop_fraction:.0%} of the last {cfg.early_stop_window} logged steps")
        return None

    @torch.no_grad()
    def samples(self, batch: dict) -> dict[str, torch.Tensor]:
        from ..visual import colorize_depth

        xs = batch["source"]["x"]
        fake = self.restyle(xs)
        k = self.k
        out = {"source": xs[:, :k], "adapted": fake[:, :k], "target": batch["target"]["x"][:, :k],
               "prediction": self.task.predict_images(self.nets["task"], fake)}
        if "privileged" in self.nets:
            p = self.nets["privileged"](fake[:, :k])
            out["privileged"] = colorize_depth(p) if self.cfg.pi == "depth" else p.clamp(-1, 1)
        return out
