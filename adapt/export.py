"""Export a trained net for robot perception stacks: ONNX or TorchScript, in eval mode, with a
JSON of what goes in and comes out, and a parity check against PyTorch.

What a task net takes and returns is the task's word (adapt.tasks: ``export_io``); a generator
declares its example inputs (a noise input when it has one, else any image size).

An ONNX file carries the same description inside, in its ``metadata_props``: the whole JSON
under METADATA_KEY and a few flat keys (``task``, ``channels``, ``classes``, ``version``), so
the file alone is enough to run it (adapt.runtime reads them with onnxruntime's
``get_modelmeta().custom_metadata_map``)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch

from simdata.errors import SimdataError
from simdata.fileio import atomic_file, write_json_atomic

from . import __version__
from .runtime import METADATA_KEY, METADATA_VERSION
from .trainer import load_run


def _generator_io(method, conf) -> dict:
    g = method.generator
    if g is None:
        raise SimdataError(f"{method.name} has no generator; export --net task")
    if g.noise_dim:
        inputs, names = g.example_inputs(2), ["image", "noise"]
        axes = {n: {0: "batch"} for n in (*names, "adapted")}
        extra = {"noise": {"shape": ["batch", g.noise_dim], "distribution": "U(-1, 1)"}}
    else:
        inputs, names = g.example_inputs(2, method.data.size), ["image"]
        axes = {n: {0: "batch", 2: "height", 3: "width"} for n in ("image", "adapted")}
        extra = {}
    c = inputs[0].shape[1]  # SPIGAN's G restyles the colour of rgbd / rgbh inputs only
    channels = conf["data"]["channels"] if c == method.data.channels else "rgb"
    return {"inputs": inputs, "input_names": names, "output_names": ["adapted"], "dynamic_axes": axes,
            "metadata": {"input": {"channels": channels, "range": [-1, 1]}, **extra,
                         "outputs": {"adapted": f"(batch, {c}, H, W) target-looking image in [-1,1]"}}}


def _description(method, which: str, metadata: dict) -> dict:
    return {"net": which, "method": method.name, "task": method.task.name, **metadata,
            "version": __version__, "metadata_version": METADATA_VERSION}


def task_metadata(method, conf: dict) -> dict:
    """The description of ``method``'s task net that an export carries (and that adapt.runtime
    runs a net by): the task's export metadata (adapt.tasks: export_io) with the method, the
    project's version and METADATA_VERSION."""
    return _description(method, "task", method.task.export_io(method.task_net, method.data, conf)["metadata"])


def embed_metadata(path: Path, meta: dict) -> None:
    """Write ``meta`` into the ONNX file ``path``'s metadata_props: the JSON under METADATA_KEY
    and flat keys for tools that show them (task, channels, classes, version)."""
    import onnx

    model = onnx.load(str(path))
    flat = {METADATA_KEY: json.dumps(meta), "task": str(meta.get("task", "")),
            "channels": str(meta.get("input", {}).get("channels", "")),
            "classes": json.dumps(meta.get("classes", [])), "version": __version__}
    del model.metadata_props[:]
    for key, value in flat.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))


def export_run(run: str | Path, which: str, fmt: str, out: str | Path, atol: float = 1e-4) -> dict:
    """Write the net to ``out`` and ``out`` + '.json'; returns the metadata with parity error."""
    if which not in ("task", "generator"):
        raise SimdataError(f"--net {which!r}: use task or generator")
    if fmt not in ("onnx", "torchscript"):
        raise SimdataError(f"--format {fmt!r}: use onnx or torchscript")
    out = Path(out)
    if out.is_dir():
        raise SimdataError(f"--out {out} is a folder; give the file to write, e.g. {out / 'net.onnx'}")
    method, conf = load_run(run, device="cpu")
    if which == "task":
        net = method.task_net.cpu().eval()
        io = method.task.export_io(net, method.data, conf)
    else:
        net = method.generator.cpu().eval()
        io = _generator_io(method, conf)
    meta = _description(method, which, io["metadata"])
    inputs, in_names, out_names = io["inputs"], io["input_names"], io["output_names"]
    with atomic_file(out) as tmp:  # the file appears under its name only when written and checked
        tmp.touch()  # find out now, not after the export, that --out cannot be written
        with torch.no_grad():
            ref = net(*inputs)
        ref = [ref] if isinstance(ref, torch.Tensor) else list(ref)
        if fmt == "onnx":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated, works
                torch.onnx.export(net, inputs, str(tmp), input_names=in_names, output_names=out_names,
                                  dynamic_axes=io["dynamic_axes"], opset_version=17, dynamo=False)
            embed_metadata(tmp, {"format": fmt, **meta})
            import onnxruntime as ort

            sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
            got = sess.run(None, {n: t.numpy() for n, t in zip(in_names, inputs)})
        else:
            traced = torch.jit.trace(net, inputs)
            traced.save(str(tmp))
            loaded = torch.jit.load(str(tmp))
            with torch.no_grad():
                res = loaded(*inputs)
            got = [r.numpy() for r in ([res] if isinstance(res, torch.Tensor) else res)]
        err = max(float(np.abs(g - r.numpy()).max()) for g, r in zip(got, ref))
        if err > atol:
            raise SimdataError(f"{fmt} export of {which} differs from PyTorch by {err:.2e} (> {atol}); "
                               f"not written")
    meta = {"format": fmt, **meta, "parity_max_abs_error": err}
    write_json_atomic(Path(f"{out}.json"), meta)
    return meta


def run_runtime(run: str | Path, device: str = "auto"):
    """adapt.runtime's PoseEstimator, Segmenter or GraspPlanner running ``run``'s torch task net
    (in eval mode on ``device``) with the description an export of it would carry: the same
    pre- and post-processing as the exported ONNX file."""
    method, conf = load_run(run, device)
    return method_runtime(method, conf, str(run))


def method_runtime(method, conf: dict, name: str = "the run"):
    """:func:`run_runtime` of a loaded run (``load_run``'s method and conf)."""
    from .runtime import RUNTIMES

    net = method.task_net.eval()

    @torch.no_grad()
    def engine(x: np.ndarray) -> list[np.ndarray]:
        out = net(torch.from_numpy(x).to(method.device))
        return [o.float().cpu().numpy() for o in ([out] if isinstance(out, torch.Tensor) else out)]

    return RUNTIMES[method.task.name].from_engine(engine, task_metadata(method, conf), name)
