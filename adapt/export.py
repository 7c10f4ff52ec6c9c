"""Export a trained net for robot perception stacks: ONNX or TorchScript, in eval mode, with a
JSON of what goes in and comes out, and a parity check against PyTorch."""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from simdata.errors import SimdataError

from .trainer import load_run


class _GeneratorWithNoise(torch.nn.Module):
    """Generator with its noise as an explicit input, so the export is deterministic."""

    def __init__(self, g):
        super().__init__()
        self.g = g

    def forward(self, x, z):
        return self.g(x, z)


def _net_and_inputs(method, which: str):
    size, c = method.data.size, method.data.channels
    x = torch.rand(2, c, size, size) * 2 - 1
    if which == "task":
        outputs = ["logits"] if method.task == "segmentation" else ["logits", "quaternion"]
        return method.task_net.cpu().eval(), (x,), ["image"], outputs
    if which == "generator":
        if method.generator is None:
            raise SimdataError(f"{method.name} has no generator; export --net task")
        g = method.generator.cpu().eval()
        if hasattr(g, "noise_dim"):
            return _GeneratorWithNoise(g), (x, torch.rand(2, g.noise_dim) * 2 - 1), ["image", "noise"], ["adapted"]
        return g, (x,), ["image"], ["adapted"]
    raise SimdataError(f"--net {which!r}: use task or generator")


def _dynamic_axes(method, which, in_names, out_names) -> dict:
    """Batch is always free; fully convolutional nets also take any height and width."""
    spatial = method.task == "segmentation" or (
        which == "generator" and not hasattr(method.generator, "noise_dim"))
    return {n: ({0: "batch", 2: "height", 3: "width"} if spatial and n not in ("noise", "quaternion")
                else {0: "batch"}) for n in in_names + out_names}


def metadata(method, conf: dict, which: str, fmt: str) -> dict:
    size, c = method.data.size, method.data.channels
    meta = {"format": fmt, "net": which, "method": method.name,
            "input": {"shape": ["batch", c, size, size], "channels": conf["data"]["channels"],
                      "range": [-1, 1], "normalisation": "rgb * 2 - 1 (rgb in [0,1]); rgbd adds "
                      "(z - median object z) / 0.1 m clipped to [-1,1], -1 where no depth"},
            "classes": method.data.classes}
    if which == "task" and method.task == "segmentation":
        meta["input"]["shape"] = ["batch", c, "height (multiple of 8)", "width (multiple of 8)"]
        meta["input"]["trained_on"] = f"crops of {size} px from images resized to height " \
                                      f"{conf['train']['height']}"
        meta["outputs"] = {"logits": "(batch, classes, height, width) per-pixel class scores; "
                                     "argmax for labels (0 background, 1 table, 2.. objects)"}
    elif which == "task":
        meta["outputs"] = {"logits": "(batch, classes) class scores, softmax for probabilities",
                           "quaternion": "(batch, 4) unit quaternion w, x, y, z: rotation "
                                         "model -> camera (OpenCV axes), sign free"}
    else:
        if hasattr(method.generator, "noise_dim"):
            meta["noise"] = {"shape": ["batch", method.generator.noise_dim], "distribution": "U(-1, 1)"}
        meta["outputs"] = {"adapted": f"(batch, {c}, H, W) target-looking image in [-1,1]"}
    return meta


def export_run(run: str | Path, which: str, fmt: str, out: str | Path, atol: float = 1e-4) -> dict:
    """Write the net to ``out`` and ``out`` + '.json'; returns the metadata with parity error."""
    method, conf = load_run(run, device="cpu")
    net, inputs, in_names, out_names = _net_and_inputs(method, which)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    with torch.no_grad():
        ref = net(*inputs)
    ref = [ref] if isinstance(ref, torch.Tensor) else list(ref)
    if fmt == "onnx":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated, works
            torch.onnx.export(net, inputs, str(tmp), input_names=in_names, output_names=out_names,
                              dynamic_axes=_dynamic_axes(method, which, in_names, out_names),
                              opset_version=17, dynamo=False)
        import onnxruntime as ort

        sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got = sess.run(None, {n: t.numpy() for n, t in zip(in_names, inputs)})
    elif fmt == "torchscript":
        traced = torch.jit.trace(net, inputs)
        traced.save(str(tmp))
        loaded = torch.jit.load(str(tmp))
        with torch.no_grad():
            res = loaded(*inputs)
        got = [r.numpy() for r in ([res] if isinstance(res, torch.Tensor) else res)]
    else:
        raise SimdataError(f"--format {fmt!r}: use onnx or torchscript")
    err = max(float(np.abs(g - r.numpy()).max()) for g, r in zip(got, ref))
    if err > atol:
        tmp.unlink(missing_ok=True)
        raise SimdataError(f"{fmt} export of {which} differs from PyTorch by {err:.2e} (> {atol}); "
                           f"not written")
    os.replace(tmp, out)
    meta = {**metadata(method, conf, which, fmt), "parity_max_abs_error": err}
    Path(f"{out}.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
