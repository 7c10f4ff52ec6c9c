"""Apply a trained generator to a crops folder: a new crops folder, labels kept."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from simdata import CropsDataset
from simdata.crops import CropWriter
from simdata.errors import SimdataError

from .data import to_input
from .trainer import load_run


@torch.no_grad()
def translate_crops(run: str | Path, source: str | Path, out: str | Path, device: str = "auto",
                    batch: int = 128, seed: int = 0) -> Path:
    """G(x, z) for every crop of ``source`` (z seeded), written with the same labels. Depth and
    masks are kept as they are (the generator adapts appearance)."""
    method, conf = load_run(run, device)
    G = method.generator
    if G is None:
        raise SimdataError(f"{run} was trained with {method.name}, which has no generator")
    ds = CropsDataset(source, cache_shards=1 << 20)
    if ds.info["size"] != method.data.size:
        raise SimdataError(f"{source} holds {ds.info['size']}px crops; the run expects {method.data.size}px")
    writer = CropWriter(Path(out), {**ds.info, "translated_by": str(run), "source": str(source)})
    gen = torch.Generator().manual_seed(seed)
    dev = next(G.parameters()).device
    try:
        for start in range(0, len(ds), batch):
            idx = range(start, min(start + batch, len(ds)))
            raws = [ds.raw(i) for i in idx]
            items = [ds[i] for i in idx]
            x = to_input(torch.stack([s["rgb"] for s in items]), torch.stack([s["depth"] for s in items]),
                         conf["data"]["channels"]).to(dev)
            z = (torch.rand(len(x), G.noise_dim, generator=gen) * 2 - 1).to(dev)
            rgb = ((G(x, z)[:, :3].clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
            for (arrays, label), img in zip(raws, rgb):
                extra = {k: v for k, v in arrays.items() if k not in ("rgb", "depth", "mask")}
                keep = {k: v for k, v in label.items() if k not in ("id", "shard", "index")}
                writer.add(np.ascontiguousarray(img), arrays["depth"], arrays["mask"], keep,
                           rgb_source=arrays["rgb"], **extra)
        return writer.close()
    except BaseException:
        writer.abort()
        raise
