"""SimGAN: learning from simulated and unsupervised images through adversarial training
(Shrivastava et al., CVPR 2017).

A refiner R makes synthetic images look real while keeping their annotations; a local
discriminator D outputs, for each patch of an image, the logit that it is real. With x a
synthetic (source) image, y a real (target) one, x~ = R(x) and D's logits averaged over the
patches and the batch:

    L_R = BCE(D(x~), real) + lambda |x~ - x|_1           (self-regularisation, per-pixel mean)
    L_D = BCE(D(y), real) + BCE(D(h), refined)           h: half current x~, half history

The task net T (the pose net, the segmenter, or GG-CNN2 on rgbh) learns from labelled source images and their
refined versions, CE(T(x)) + CE(T(x~)) with the task's loss (adapt.tasks), at every step, so
a run yields a task net; R is trained by L_R alone, as in the paper.

Training, by step number (each step one update of R or of D, on a fresh batch, plus T's):
R alone with the self-regularisation for ``refiner_pretrain`` steps (1000, the paper's), then
D alone for ``disc_pretrain`` steps (200), then cycles of ``k_g`` R updates and ``k_d`` D
updates. The paper's text says R is updated twice for each D update (K_d = 1, K_g = 2, our
default), though the same sentence also gives K_g = 50. D's refined half of every batch
comes from a history buffer: once it holds b/2 images, b/2 of D's b refined images are drawn
at random from earlier refined images and the newest b/2 then replace random buffer entries
(the buffer fills first). The buffer holds ``history`` x b images (100 batches, as in the
public reimplementations: the paper gives no size), stored as 8-bit images (the real images
D compares them with are 8-bit too), and the buffer and its random generator (seeded from the
run's --seed) are checkpointed, so a resumed run equals an uninterrupted one.

With --channels rgbd or rgbh R refines the colour channels and the depth channel reaches T as
the sensor gave it; D and the self-regularisation see colour only. Depth or height alone are
refused.

Differences from the paper: one logit per patch and BCE instead of a two-way softmax (the same
loss); both terms are means (over patches, over pixels) instead of sums, so lambda does not
depend on the image size: public reimplementations weigh a sum over the pixels by 1e-4 to
2e-4, and 1e-4 x the 1925 pixels of the paper's 55x35 eye images gives our default 0.2. Adam (2e-4, beta1 0.5) for R
and D instead of plain SGD at 1e-3, the project's Adam for T; the refiner is the paper's
(3x3 conv of 64, 4 ResNet blocks, 1x1 conv, tanh on our [-1,1] images), the discriminator the
paper's eye-gaze one (adapt.nets). The paper's hand-pose variant (feature-space
self-regularisation) is not implemented.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch

from simdata.errors import SimdataError

from ..losses import gan_d_loss, gan_g_loss
from ..nets import build
from .base import Method, OptimConfig, require_colour, restyle, step_optimizer

log = logging.getLogger(__name__)
PHASES = ("refiner_pretrain", "disc_pretrain", "refiner", "discriminator")


def simgan_phase(step: int, refiner_pretrain: int, disc_pretrain: int, k_g: int, k_d: int) -> str:
    """Which net ``step`` updates (one of PHASES): R's pre-training, D's, then cycles of
    ``k_g`` R steps and ``k_d`` D steps."""
    if step < refiner_pretrain:
        return "refiner_pretrain"
    if step < refiner_pretrain + disc_pretrain:
        return "disc_pretrain"
    s = (step - refiner_pretrain - disc_pretrain) % (k_g + k_d)
    return "refiner" if s < k_g else "discriminator"


class ImageHistory:
    """SimGAN's buffer of earlier refined images (Shrivastava et al. 2017, section 2.3).

    ``mix(refined)`` (b,C,H,W) -> the b images D sees: the first b - k of ``refined`` and k =
    min(b // 2, stored) images drawn without replacement from the buffer; then the last b // 2
    of ``refined`` go into the buffer (into empty slots while it fills, then over entries chosen
    at random). The buffer holds ``batches`` x b images once it knows b, as 8-bit images;
    draws use its own CPU generator. ``state_dict`` holds the images and the generator state.
    """

    def __init__(self, batches: int, seed: int):
        self.batches, self.capacity, self.count = batches, 0, 0
        self.images: torch.Tensor | None = None  # (capacity, C, H, W) uint8
        self.rng = torch.Generator().manual_seed(seed)

    @staticmethod
    def _encode(x: torch.Tensor) -> torch.Tensor:
        return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)

    @staticmethod
    def _decode(q: torch.Tensor, dtype) -> torch.Tensor:
        return (q.float() / 127.5 - 1.0).to(dtype)

    def sample(self, n: int) -> torch.Tensor | None:
        """Up to ``n`` stored images, drawn without replacement; None when empty."""
        k = min(n, self.count)
        if k == 0:
            return None
        idx = torch.randperm(self.count, generator=self.rng)[:k]
        return self.images[idx.to(self.images.device)]

    def push(self, x: torch.Tensor) -> None:
        q = self._encode(x)
        if self.images is None:  # b // 2 new images per batch of b: ``batches`` x b in all
            self.capacity = self.capacity or self.batches * 2 * len(q)
            self.images = torch.zeros((self.capacity, *q.shape[1:]), dtype=torch.uint8, device=q.device)
        q = q[: self.capacity]
        free = min(len(q), self.capacity - self.count)
        self.images[self.count:self.count + free] = q[:free]
        self.count += free
        if len(q) > free:
            idx = torch.randperm(self.capacity, generator=self.rng)[: len(q) - free]
            self.images[idx.to(q.device)] = q[free:]

    @torch.no_grad()
    def mix(self, refined: torch.Tensor) -> torch.Tensor:
        b = len(refined)
        if self.batches <= 0 or b < 2:
            return refined
        if self.images is None:
            self.capacity = self.batches * b
        past = self.sample(b // 2)
        out = refined if past is None else torch.cat(
            [refined[: b - len(past)], self._decode(past, refined.dtype)])
        self.push(refined[b - b // 2:])
        return out

    def state_dict(self) -> dict:
        return {"batches": self.batches, "capacity": self.capacity, "count": self.count,
                "images": None if self.images is None else self.images[: self.count].clone(),
                "rng": self.rng.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.batches, self.capacity, self.count = state["batches"], state["capacity"], state["count"]
        self.images = None
        if state["images"] is not None:
            stored = state["images"]
            self.images = torch.zeros((self.capacity, *stored.shape[1:]), dtype=torch.uint8,
                                      device=stored.device)
            self.images[: self.count] = stored
        self.rng.set_state(state["rng"].cpu())  # a checkpoint may have been mapped to a GPU


@dataclass
class SimganConfig(OptimConfig):
    self_reg: float = field(default=0.2, metadata={"help": "lambda: weight of the self-regularisation |R(x) - x|_1 (per-pixel mean)"})
    refiner_pretrain: int = field(default=1000, metadata={"help": "first steps: R alone, self-regularisation only"})
    disc_pretrain: int = field(default=200, metadata={"help": "then steps of D alone"})
    k_g: int = field(default=2, metadata={"help": "R updates per cycle after pre-training"})
    k_d: int = field(default=1, metadata={"help": "D updates per cycle after pre-training"})
    history: int = field(default=100, metadata={"help": "history buffer size in batches (0 = no history: D sees current refined images only)"})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate of the task net T"})
    gan_lr: float = field(default=2e-4, metadata={"help": "Adam learning rate of R and D"})
    gen_filters: int = field(default=64, metadata={"help": "refiner filters"})
    gen_blocks: int = field(default=4, metadata={"help": "refiner ResNet blocks"})
    disc_filters: int = field(default=32, metadata={"help": "discriminator width F (3F, 2F, F, F filters; 32 = the paper's)"})
    pose_weight: float = field(default=0.25, metadata={"help": "weight of the pose loss (pose task)"})
    task_net: str = field(default="", metadata={"help": "task net (registry name; empty = the task's own)"})


class Simgan(Method):
    """SimGAN: a refiner with self-regularisation, a local discriminator and a history buffer."""

    name = "simgan"
    Config = SimganConfig
    needs = ("source", "target")
    tasks = ("pose", "segmentation", "grasp")

    def __init__(self, cfg: SimganConfig, data, device, training: bool = True, task=None,
                 total_steps: int = 0):
        super().__init__(cfg, data, device, task=task, total_steps=total_steps)
        require_colour(self.name, data.channels)
        for name in ("refiner_pretrain", "disc_pretrain", "history"):
            if getattr(cfg, name) < 0:
                raise SimdataError(f"--{name.replace('_', '-')} must be 0 or more")
        if cfg.k_g < 1 or cfg.k_d < 1:
            raise SimdataError("--k-g and --k-d must be at least 1")
        self.nets = {
            "generator": build("simgan-refiner", channels=3, filters=cfg.gen_filters,
                               blocks=cfg.gen_blocks).to(device),
            "discriminator": build("simgan-discriminator", channels=3, filters=cfg.disc_filters).to(device),
            "task": self.build_task_net(cfg.task_width, cfg.task_net or None),
        }
        for key, net, lr in (("refiner", "generator", cfg.gan_lr), ("discriminator", "discriminator", cfg.gan_lr),
                             ("task", "task", cfg.lr)):
            self.optimizers[key], self.schedulers[key] = self.adam(
                self.nets[net].parameters(), lr, cfg.beta1, cfg.decay_steps, cfg.decay)
        # the trainer seeds torch with the run's --seed just before building a method
        self.history = ImageHistory(cfg.history, seed=torch.initial_seed())
        self._last = {"loss_g": 0.0, "loss_d": 0.0}
        if training and 0 < total_steps <= cfg.refiner_pretrain + cfg.disc_pretrain:
            log.warning("simgan: the run's %d steps end before adversarial training starts (after "
                        "%d + %d pre-training steps)", total_steps, cfg.refiner_pretrain, cfg.disc_pretrain)

    def phase(self, step: int) -> str:
        cfg = self.cfg
        return simgan_phase(step, cfg.refiner_pretrain, cfg.disc_pretrain, cfg.k_g, cfg.k_d)

    def training_step(self, batch: dict, step: int) -> dict[str, torch.Tensor | float]:
        cfg, R, D = self.cfg, self.nets["generator"], self.nets["discriminator"]
        src, tgt = batch["source"], batch["target"]
        xs, xt = src["x"], tgt["x"]
        phase = self.phase(step)
        logs = {}
        if phase in ("refiner_pretrain", "refiner"):
            refined = restyle(R, xs)
            l_reg = (refined[:, :3] - xs[:, :3]).abs().mean()
            loss = l_reg
            if phase == "refiner":
                l_adv = gan_g_loss(D(refined[:, :3]))
                loss = l_adv + cfg.self_reg * l_reg
                self._last["loss_g"] = l_adv.detach()
            step_optimizer(self.optimizers["refiner"], self.schedulers["refiner"], loss,
                           list(R.parameters()), cfg.clip)
            logs["loss_self_reg"] = l_reg.detach()
            refined = refined.detach()
        else:
            with torch.no_grad():
                refined = restyle(R, xs)
            l_d = gan_d_loss(D(xt[:, :3]), D(self.history.mix(refined[:, :3])))
            step_optimizer(self.optimizers["discriminator"], self.schedulers["discriminator"], l_d,
                           list(D.parameters()), cfg.clip)
            self._last["loss_d"] = l_d.detach()
        # T on source and refined source, every step
        l_ts, ms = self.task_loss(src, cfg.pose_weight)
        l_tr, mr = self.task_loss({**src, "x": refined}, cfg.pose_weight)
        step_optimizer(self.optimizers["task"], self.schedulers["task"], l_ts + l_tr,
                       list(self.nets["task"].parameters()), cfg.clip)
        return {**logs, **self._last, "loss_task_source": l_ts.detach(), "loss_task_refined": l_tr.detach(),
                **{f"task_source_{k}": v for k, v in ms.items()},
                "phase": float(PHASES.index(phase)), "history": float(self.history.count)}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "history": self.history.state_dict(),
                "last": {k: float(v) for k, v in self._last.items()}}

    def load_state_dict(self, state: dict, nets_only: bool = False) -> None:
        super().load_state_dict(state, nets_only)
        if not nets_only and "history" in state:
            self.history.load_state_dict(state["history"])
            self._last = dict(state["last"])

    @torch.no_grad()
    def samples(self, batch: dict) -> dict[str, torch.Tensor]:
        xs, xt = batch["source"]["x"], batch["target"]["x"]
        return {"source": xs[:, :3], "refined": restyle(self.nets["generator"], xs)[:, :3],
                "target": xt[:, :3], "prediction": self.task.predict_images(self.task_net, xt)}
