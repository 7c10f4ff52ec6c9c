"""The segmentation task: a class per pixel (0 background, 1 table, 2.. objects; or one
"object" class with --class-agnostic) on whole scenes.

Data: simdata BOP datasets (labels from the simulator's masks, privileged depth and normals),
image folders (unlabelled target) and folders of images with NAME_labels.png and classes.json
(labelled real frames); see adapt.scenes. Net: a fully convolutional segmenter (adapt.nets,
``fcn``). Loss: cross-entropy, unlabelled pixels ignored. Metrics: per-class IoU, mIoU, pixel
accuracy and per-image IoU (for negative transfer).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch.nn.functional as F

from simdata.errors import SimdataError

from .base import DataSpec, Task, bag_topics, dense_export_io


@dataclass
class SegmentationConfig:
    objectness: bool = field(default=False, metadata={"help": "labels object / not object (table and empty space merged), the question a real camera asks"})
    hflip: bool = field(default=False, metadata={"help": "mirror half of the training crops left-right (input, labels and privileged depth and normals alike), of every domain the run trains on"})


class SegmentationTask(Task):
    name = "segmentation"
    Config = SegmentationConfig
    data_kind = "a simdata BOP dataset (simdata render)"

    def open_domain(self, train_cfg, path, stream: int):
        from ..scenes import SceneDomain

        return SceneDomain(path, train_cfg.height, train_cfg.crop, stream=stream, seed=train_cfg.seed,
                           agnostic=train_cfg.class_agnostic, channels=train_cfg.channels,
                           objectness=self.cfg.objectness, topics=bag_topics(train_cfg),
                           hflip=self.cfg.hflip)

    def data_spec(self, train_cfg, labelled_domains: list) -> DataSpec:
        from ..data import CHANNELS

        if train_cfg.crop % 8 or train_cfg.crop < 16:
            raise SimdataError(f"--crop {train_cfg.crop} must be a multiple of 8, at least 16")
        if train_cfg.channels not in CHANNELS:
            raise SimdataError(f"--channels {train_cfg.channels!r}: use {', '.join(CHANNELS)}")
        return DataSpec(CHANNELS[train_cfg.channels], train_cfg.crop, list(labelled_domains[0].names))

    def build_net(self, data: DataSpec, width: int, net: str | None = None):
        from ..nets import build

        return build(net or "fcn", channels=data.channels, out=len(data.classes), width=width)

    def loss(self, net, batch, data, weight=1.0):
        from ..scenes import IGNORE

        loss = F.cross_entropy(net(batch["x"]), batch["label"], ignore_index=IGNORE)
        return loss, {"ce": loss.detach()}

    def predict_images(self, net, x):
        from ..visual import colorize_labels

        return colorize_labels(net(x).argmax(1))

    def evaluate(self, net, domain, data, device) -> dict:
        from ..evaluate import evaluate_segmentation

        return evaluate_segmentation(net, domain, device)

    def summary(self, res: dict) -> str:
        obj = res["per_class_iou"].get("object")
        return (f"object IoU {obj:.3f}, " if obj is not None else "") + \
            f"mIoU {res['miou']:.3f}, pixel accuracy {res['pixel_accuracy']:.3f}"

    def eval_figures(self, net, domain, data, device, result, out) -> int:
        from ..predict import segmentation_figure

        return segmentation_figure(net, domain, device, result["per_image_iou"], out)

    def export_io(self, net, data, conf) -> dict:
        from ..predict import first_object_class

        first = first_object_class(data.classes)
        return dense_export_io(self.name, net, data, conf, "logits",
                               "(batch, classes, height, width) per-pixel class scores; argmax for "
                               "labels, indices into classes", classes=data.classes,
                               object_classes=list(range(first, len(data.classes))))

    def predict(self, method, conf, folder, out) -> int:
        from ..predict import predict_segmentation_folder

        return predict_segmentation_folder(method, conf, folder, out)
