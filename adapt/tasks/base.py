"""The protocol between a task and everything else.

A task owns what depends on *what is predicted*: its options, how its data are read, its task
net, its loss, its metrics and summary line, what an exported net takes and returns, and how
predictions are drawn. Methods ask the task for these (a method adapts images; any method
trains any task whose data it can read); the trainer, eval, export and predict ask it too and
never branch on a task's name.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class DataSpec:
    """What the data look like: input channels and size, the class names, and task-specific
    facts the run must keep (JSON-able, e.g. the objects' models_info with symmetries)."""

    channels: int
    size: int
    classes: list[str]
    extras: dict = field(default_factory=dict)


def bag_topics(train_cfg):
    """The run's --bag-topics as a simdata.bags.BagTopics: which topics of a ROS bag given as
    a domain are read (the others are found from the bag's message types)."""
    from simdata.bags import parse_topics

    return parse_topics(train_cfg.bag_topics)


@dataclass
class NoOptions:
    """A task without options of its own."""


class Task:
    """Base class; see the module docstring. Subclasses set ``name``, ``Config``, ``data_kind``."""

    name = "task"
    Config = NoOptions
    data_kind = "crops"  # words for error messages: what a labelled folder of this task is

    def __init__(self, cfg=None):
        self.cfg = cfg if cfg is not None else self.Config()

    # -- data ------------------------------------------------------------------------------
    def open_domain(self, train_cfg, path, stream: int):
        """A domain for ``path``: ``batch(step, n)`` a pure function of the step, ``labelled``,
        ``names`` (class names when labelled), ``len()``."""
        raise NotImplementedError

    def data_spec(self, train_cfg, labelled_domains: list) -> DataSpec:
        raise NotImplementedError

    # -- net and loss ------------------------------------------------------------------------
    def build_net(self, data: DataSpec, width: int, net: str | None = None) -> nn.Module:
        raise NotImplementedError

    def loss(self, net: nn.Module, batch: dict, data: DataSpec,
             weight: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
        """The task loss of ``net`` on one labelled batch of a domain, and numbers to log.
        ``weight`` scales the task's secondary terms (the pose terms of the pose task)."""
        raise NotImplementedError

    def predict_images(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) in [-1,1]: what the net predicts on ``x``, drawn for sample grids."""
        return x[:, :3]

    # -- evaluation, export, prediction ------------------------------------------------------
    def evaluate(self, net: nn.Module, domain, data: DataSpec, device) -> dict:
        raise NotImplementedError

    def summary(self, result: dict) -> str:
        raise NotImplementedError

    def eval_figures(self, net: nn.Module, domain, data: DataSpec, device, result: dict, out) -> int:
        """Per-sample pictures of an evaluation in folder ``out``; returns how many (0: none)."""
        return 0

    def export_io(self, net: nn.Module, data: DataSpec, conf: dict) -> dict:
        """{"inputs": example tensors, "input_names", "output_names", "dynamic_axes",
        "metadata": what goes in and comes out, in words and numbers}."""
        raise NotImplementedError

    def predict(self, run_method, conf: dict, folder, out) -> int:
        """Predict on every sample of ``folder`` and write pictures a person can read to
        ``out``; returns the number of samples."""
        raise NotImplementedError


def dense_export_io(task_name: str, net: nn.Module, data: DataSpec, conf: dict, output: str,
                    description: str, **metadata) -> dict:
    """export_io of a fully convolutional net on whole images (segmentation, grasp maps): one
    input "image" (batch, channels, H, W) in the run's normalisation, one dense ``output``
    described in words, H and W dynamic; ``metadata`` adds task-specific entries."""
    from ..inputs import PAD_MULTIPLE, input_description

    spatial = {0: "batch", 2: "height", 3: "width"}
    return {"inputs": net.example_inputs(2, data.size), "input_names": ["image"],
            "output_names": [output], "dynamic_axes": {"image": spatial, output: spatial},
            "metadata": {
                "task": task_name,
                "input": {"shape": ["batch", data.channels, "height (multiple of 8)", "width (multiple of 8)"],
                          "channels": conf["data"]["channels"], "range": [-1, 1],
                          "normalisation": input_description(conf["data"]["channels"]),
                          "resize_height": conf["train"]["height"], "pad_multiple": PAD_MULTIPLE,
                          "resizing": "whole images resized to resize_height rows, aspect kept "
                                      "(colour bilinear, depth nearest), padded with edge values",
                          "trained_on": f"crops of {data.size} px from images resized to "
                                        f"height {conf['train']['height']}"},
                **metadata, "outputs": {output: description}}}
