"""CycleGAN's image pool (Shrivastava et al. 2017; Zhu et al. 2017): the discriminator sees a
mix of the generator's current and past outputs, which damps oscillation.

Until ``size`` images are stored, every image goes in and comes back as it is. After that,
each image of a query, with probability 0.5, replaces a stored image chosen uniformly at random
and the stored one is returned in its place; otherwise it comes back as it is (and is not
stored). The pool draws from its own ``torch.Generator`` and its state (stored images and RNG)
is part of ``state_dict``, so a resumed run sees the same images as an uninterrupted one.
(SimGAN's history buffer, which replaces half of every batch, is a different rule.)
"""
from __future__ import annotations

import torch


class ImagePool:
    """``query(images)`` (B,...) -> (B,...): the batch with some images swapped for past ones."""

    def __init__(self, size: int = 50, seed: int = 0, p_past: float = 0.5):
        self.size, self.p_past = size, p_past
        self.images: list[torch.Tensor] = []  # stored images, each (...) detached, on their device
        self.rng = torch.Generator().manual_seed(seed)  # CPU: its draws never wait for a GPU

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size <= 0:
            return images
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.rng).item() < self.p_past:
                i = int(torch.randint(self.size, (), generator=self.rng))
                out.append(self.images[i])
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict:
        return {"size": self.size, "p_past": self.p_past, "images": list(self.images),
                "rng": self.rng.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.size, self.p_past = state["size"], state["p_past"]
        self.images = list(state["images"])
        self.rng.set_state(state["rng"].cpu())  # a checkpoint may have been mapped to a GPU
