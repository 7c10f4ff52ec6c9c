"""Apply a trained generator to a crops folder or a BOP dataset: a new copy, labels and
privileged channels kept."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from simdata import CropsDataset
from simdata.writers.crops import CropWriter
from simdata.errors import SimdataError

from .data import to_input
from .trainer import load_run


def translate(run: str | Path, source: str | Path, out: str | Path, device: str = "auto",
              seed: int = 0) -> Path:
    """Dispatch on the input: a crops folder (labels.jsonl) or a BOP dataset (train_pbr/)."""
    if (Path(source) / "labels.jsonl").exists():
        return translate_crops(run, source, out, device, seed=seed)
    if (Path(source) / "train_pbr").is_dir():
        return translate_scenes(run, source, out, device)
    raise SimdataError(f"{source} is neither a crops folder nor a BOP dataset")


def _colour_generator(method, run) -> torch.nn.Module:
    """The run's generator, refused where there is none or where it restyles depth (a SPIGAN
    trained on depth or height alone): translations are written as colour images."""
    G = method.generator
    if G is None:
        raise SimdataError(f"{run} was trained with {method.name}, which has no generator")
    if G.channels < 3:
        raise SimdataError(f"{run}'s generator restyles depth (the run was trained on depth "
                           f"or height alone); translate writes colour images: use a run "
                           f"trained with --channels rgb, rgbd or rgbh")
    return G


@torch.no_grad()
def translate_scenes(run: str | Path, source: str | Path, out: str | Path, device: str = "auto") -> Path:
    """Copy a BOP dataset with every rgb/ image replaced by G(image) at full resolution
    (noise-free generators only). Written under a temporary name, renamed when complete."""
    import cv2

    from simdata.bop_layout import find_rgb, list_images
    from simdata.fileio import atomic_file, read_image, write_image

    method, _ = load_run(run, device)
    G = _colour_generator(method, run)
    if G.noise_dim:
        raise SimdataError(f"{run} has no image-to-image generator for whole scenes")
    out = Path(out)
    if out.exists():
        raise SimdataError(f"--out {out} exists; translations are written to a new folder")
    dev = next(G.parameters()).device
    with atomic_file(out) as tmp:
        shutil.copytree(source, tmp)
        for scene, im_id in list_images(tmp):
            path = find_rgb(scene, im_id)
            rgb = read_image(path, cv2.IMREAD_COLOR)
            h, w = rgb.shape[:2]
            padded = np.pad(rgb, ((0, (-h) % 4), (0, (-w) % 4), (0, 0)), mode="edge")
            x = to_input(torch.from_numpy(padded).permute(2, 0, 1)[None].float() / 255.0, None, "rgb")
            y = ((G(x.to(dev))[0, :3, :h, :w].clamp(-1, 1) + 1) * 127.5).round().byte()
            write_image(path, y.permute(1, 2, 0).cpu().numpy())
    return out


@torch.no_grad()
def translate_crops(run: str | Path, source: str | Path, out: str | Path, device: str = "auto",
                    batch: int = 128, seed: int = 0) -> Path:
    """G(x, z) for every crop of ``source`` (z seeded), written with the same labels. Depth and
    masks are kept as they are (the generator adapts appearance)."""
    method, conf = load_run(run, device)
    G = _colour_generator(method, run)
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
            x = x[:, :G.channels]  # a colour-only generator (SimGAN's, with rgbd) sees colour
            args = (x, (torch.rand(len(x), G.noise_dim, generator=gen) * 2 - 1).to(dev)) \
                if G.noise_dim else (x,)
            rgb = ((G(*args)[:, :3].clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
            for (arrays, label), img in zip(raws, rgb):
                extra = {k: v for k, v in arrays.items() if k not in ("rgb", "depth", "mask")}
                keep = {k: v for k, v in label.items() if k not in ("id", "shard", "index")}
                writer.add(np.ascontiguousarray(img), arrays["depth"], arrays["mask"], keep,
                           rgb_source=arrays["rgb"], **extra)
        for name in ("models_info.json", "model_points.npz"):  # the objects are the same
            if (Path(source) / name).is_file():
                shutil.copy2(Path(source) / name, writer.tmp / name)
        return writer.close()
    except BaseException:
        writer.abort()
        raise
