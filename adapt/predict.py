"""Segment a folder of images with a trained run: raw label PNGs and coloured overlays."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from simdata import ImageFolder
from simdata.errors import SimdataError
from simdata.fileio import write_image
from simdata.preview import overlay_masks

from .data import to_input
from .trainer import load_run


@torch.no_grad()
def segment(task_net, rgb: np.ndarray, height: int, device) -> np.ndarray:
    """(H,W,3) uint8 image -> (H,W) uint8 labels: resized to ``height`` (width padded to a
    multiple of 8), segmented, and the labels resized back (nearest)."""
    h, w = rgb.shape[:2]
    nw = int(round(w * height / h))
    small = cv2.resize(rgb, (nw, height), interpolation=cv2.INTER_AREA)
    pad = (-nw) % 8
    small = np.pad(small, ((0, 0), (0, pad), (0, 0)), mode="edge")
    x = to_input(torch.from_numpy(small).permute(2, 0, 1)[None].float() / 255.0, None, "rgb")
    labels = task_net(x.to(device)).argmax(1)[0, :, :nw].byte().cpu().numpy()
    return cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)


def predict_folder(run: str | Path, folder: str | Path, out: str | Path, device: str = "auto") -> int:
    method, conf = load_run(run, device)
    if method.task != "segmentation":
        raise SimdataError(f"{run} is a {method.task} run; predict segments images (SPIGAN runs)")
    images = ImageFolder(folder)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    height = conf["train"]["height"]
    for i in range(len(images)):
        item = images.items[i]
        rgb = cv2.cvtColor(cv2.imread(str(item["rgb"])), cv2.COLOR_BGR2RGB)
        labels = segment(method.task_net, rgb, height, method.device)
        stem = item["rgb"].stem
        write_image(out / f"{stem}_labels.png", labels)
        masks = [labels == c for c in range(2, len(method.data.classes))]
        write_image(out / f"{stem}_color.png", overlay_masks(rgb, masks, alpha=0.5))
    return len(images)
