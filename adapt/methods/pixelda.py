"""PixelDA: unsupervised pixel-level domain adaptation with GANs (Bousmalis et al., CVPR 2017).

G(x_s, z) maps a source image (+ noise) to a target-looking one; D tells target images from
G's outputs; the task net T learns from source images and their adapted versions. One
iteration alternates a D(+T) update and a G update:

    L_D(+T) = alpha * [BCE(D(x_t), 1) + BCE(D(G(x_s, z)), 0)]
              + beta * [CE(T(x_s)) + 0.25 pose(T(x_s)) + CE(T(G)) + 0.125 pose(T(G))]
    L_G     = alpha * BCE(D(G(x_s, z)), 1) + beta * [CE(T(G)) + 0.125 pose(T(G))]
              + gamma * masked_pmse(x_s, G(x_s, z), m_s)

where m_s is the simulator's object mask, so the content loss keeps the object's appearance
and leaves the background free to change. pose(.) is the pose task's loss (adapt.tasks.pose):
the paper's log(eps + 1 - |q . q_hat|) with ``--rot-loss quat --rotation quat``; by default a
symmetry-aware loss on a continuous rotation output, plus the translation.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..losses import gan_d_loss, gan_g_loss, masked_pmse
from ..nets import build
from .base import Method, OptimConfig, step_optimizer


@dataclass
class PixelDAConfig(OptimConfig):
    alpha: float = field(default=0.011, metadata={"help": "weight of the domain (GAN) loss"})
    beta: float = field(default=0.01, metadata={"help": "weight of the task loss"})
    gamma: float = field(default=0.01, metadata={"help": "weight of the masked-PMSE content loss"})
    source_pose_weight: float = field(default=0.25, metadata={"help": "pose loss weight on source"})
    adapted_pose_weight: float = field(default=0.125, metadata={"help": "pose loss weight on G(x_s)"})
    target_pose_weight: float = field(default=0.25, metadata={"help": "pose weight on labelled target (semi-supervised)"})
    noise_dim: int = field(default=10, metadata={"help": "dimension of the noise z ~ U(-1,1)"})
    gen_filters: int = field(default=64, metadata={"help": "generator filters"})
    gen_blocks: int = field(default=6, metadata={"help": "generator residual blocks"})
    disc_filters: int = field(default=64, metadata={"help": "discriminator filters of the first layer"})


class PixelDA(Method):
    """PixelDA (Bousmalis et al. 2017): pixel-level GAN with masked PMSE, a pose net on both."""

    name = "pixelda"
    Config = PixelDAConfig
    needs = ("source", "target")
    optional = ("target_labelled",)  # the semi-supervised setting
    tasks = ("pose",)  # G works on fixed-size crops

    def __init__(self, cfg: PixelDAConfig, data, device, training: bool = True, task=None,
                 total_steps: int = 0):
        super().__init__(cfg, data, device, task=task, total_steps=total_steps)
        c, s = data.channels, data.size
        self.nets = {
            "generator": build("pixelda-generator", channels=c, size=s, noise_dim=cfg.noise_dim,
                               filters=cfg.gen_filters, blocks=cfg.gen_blocks).to(device),
            "discriminator": build("pixelda-discriminator", channels=c, size=s,
                                   filters=cfg.disc_filters).to(device),
            "task": self.build_task_net(cfg.task_width),
        }
        self._dt_params = [*self.nets["discriminator"].parameters(), *self.nets["task"].parameters()]
        self.optimizers["dt"], self.schedulers["dt"] = self.adam(self._dt_params, cfg.lr, cfg.beta1,
                                                                 cfg.decay_steps, cfg.decay)
        self.optimizers["g"], self.schedulers["g"] = self.adam(self.nets["generator"].parameters(),
                                                               cfg.lr, cfg.beta1, cfg.decay_steps, cfg.decay)

    def adapt(self, x: torch.Tensor) -> torch.Tensor:
        g = self.nets["generator"]
        return g(x, g.sample_noise(len(x), x.device))

    def training_step(self, batch: dict, step: int) -> dict[str, torch.Tensor | float]:
        cfg, G, D = self.cfg, self.nets["generator"], self.nets["discriminator"]
        src, tgt = batch["source"], batch["target"]
        xs, xt = src["x"], tgt["x"]
        # D (+T) step on a detached G output
        fake = self.adapt(xs).detach()
        l_d = gan_d_loss(D(xt), D(fake))
        l_ts, ms = self.task_loss(src, cfg.source_pose_weight)
        l_ta, ma = self.task_loss({**src, "x": fake}, cfg.adapted_pose_weight)
        l_t = l_ts + l_ta
        logs = {}
        if "target_labelled" in batch:  # semi-supervised: a few labelled target crops
            tl = batch["target_labelled"]
            l_tl, mtl = self.task_loss(tl, cfg.target_pose_weight)
            l_t = l_t + l_tl
            logs["task_target_acc"] = mtl["acc"]
        step_optimizer(self.optimizers["dt"], self.schedulers["dt"], cfg.alpha * l_d + cfg.beta * l_t,
                       self._dt_params, cfg.clip)
        # G step
        fake = self.adapt(xs)
        l_g = gan_g_loss(D(fake))
        l_tg, _ = self.task_loss({**src, "x": fake}, cfg.adapted_pose_weight)
        l_c = masked_pmse(xs, fake, src["mask"])
        step_optimizer(self.optimizers["g"], self.schedulers["g"],
                       cfg.alpha * l_g + cfg.beta * l_tg + cfg.gamma * l_c,
                       list(G.parameters()), cfg.clip)
        return {"loss_d": l_d.detach(), "loss_g": l_g.detach(), "loss_task": l_t.detach(),
                "loss_content": l_c.detach(), "task_source_acc": ms["acc"],
                "task_adapted_acc": ma["acc"], "pose_source": ms["pose"], "trans_source": ms["trans"], **logs,
                "lr": self.schedulers["g"].get_last_lr()[0]}

    @torch.no_grad()
    def samples(self, batch: dict) -> dict[str, torch.Tensor]:
        was = self.nets["generator"].training
        self.nets["generator"].eval()
        out = {"source": batch["source"]["x"], "adapted": self.adapt(batch["source"]["x"]),
               "target": batch["target"]["x"]}
        self.nets["generator"].train(was)
        return out
