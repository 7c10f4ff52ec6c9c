"""Several trained task nets as one: ``adapt ensemble RUN RUN ... --out DIR`` writes a run
folder whose task net averages its members' predictions (segmentation: class probabilities;
grasp: the quality, angle and width maps), which eval, export, predict, view and the runtime
use like any other run's.

Why: on real frames the same recipe trained with different seeds can disagree on what the
synthetic scenes leave open (a robot's arm reaching into the image: object or not?), and which
way one run settles it is chance (benchmarks/results/seg_recipe_seeds_cpu.json); averaging
runs trained with different ``--seed`` steadies the answer. The members' weights are copied
into the new run, so it stands alone. ``--flips`` adds test-time augmentation: every member
also sees the image's mirror images and its predictions, mirrored back, join the average (one
run is then enough).
"""
from __future__ import annotations

import copy
import math
from pathlib import Path

import torch
from torch import nn

from simdata.errors import SimdataError
from simdata.fileio import atomic_file, write_json_atomic

from .grasping import mirrored_angle

# what every member must share: the same input, labels and task (nets, methods, seeds, steps
# and training data may differ)
SHARED = (("train", "task"), ("train", "height"), ("data", "channels"), ("data", "classes"), ("task",))
EVAL_ONLY = {"sim_trials"}  # task options that only set how a run is evaluated


# --flips: the mirror images each member also sees (as the image axes flipped: 3 = width,
# 2 = height); its prediction is flipped back before the average (test-time augmentation)
FLIPS = {"none": ((),), "h": ((), (3,)), "hv": ((), (3,), (2,), (2, 3))}


class _Ensemble(nn.Module):
    """K task nets taking the same (B,C,H,W) input, each also on the mirror images of ``flips``
    (a key of :data:`FLIPS`); subclasses say how the outputs combine."""

    def __init__(self, members: list[nn.Module], flips: str = "none"):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.channels = members[0].channels
        self.flips = FLIPS[flips]

    def example_inputs(self, *args, **kwargs) -> tuple[torch.Tensor, ...]:
        return self.members[0].example_inputs(*args, **kwargs)

    def _outputs(self, x: torch.Tensor) -> list[tuple[torch.Tensor, tuple[int, ...]]]:
        """Every member's output on x and its mirror images, flipped back, with the flip."""
        outs = []
        for dims in self.flips:
            xf = torch.flip(x, dims) if dims else x
            outs += [((torch.flip(m(xf), dims) if dims else m(xf)), dims) for m in self.members]
        return outs


class SegmentationEnsemble(_Ensemble):
    """(B,C,H,W) -> (B,classes,H,W) class scores: the log of the mean of the members' softmax
    probabilities (so argmax gives the ensemble's labels and softmax its probabilities)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logp = torch.stack([torch.log_softmax(y, 1) for y, _ in self._outputs(x)])
        return torch.logsumexp(logp, 0) - math.log(len(logp))


class GraspEnsemble(_Ensemble):
    """(B,C,H,W) -> (B,4,H,W): the mean of the members' raw maps (quality, cos 2a, sin 2a,
    width; the angle's two components averaged as a vector). A mirror image about one axis
    turns the closing axis' angle a into -a (mod 180 deg): its sin 2a is negated back; flipped
    about both (a half turn), a is unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([mirrored_angle(y) if len(dims) == 1 else y
                            for y, dims in self._outputs(x)]).mean(0)


ENSEMBLES = {"segmentation": SegmentationEnsemble, "grasp": GraspEnsemble}


def _get(conf: dict, key: tuple[str, ...]):
    for k in key:
        conf = conf.get(k, {}) if isinstance(conf, dict) else {}
    return {k: v for k, v in conf.items() if k not in EVAL_ONLY} if key == ("task",) else conf


def ensemble_method(conf: dict, device: torch.device):
    """The method of an ensemble run's saved ``conf`` for inference: its first member's, with
    one net, "task", the ensemble (:data:`ENSEMBLES`) of every member's (untrained until the
    run's checkpoint is loaded into it)."""
    from .trainer import method_from_config

    methods = [method_from_config(m["config"], device) for m in conf["ensemble"]["members"]]
    host = methods[0]
    flips = conf["ensemble"].get("flips", "none")
    host.nets = {"task": ENSEMBLES[conf["train"]["task"]]([m.task_net for m in methods], flips).to(device)}
    host.name = (f"ensemble of {len(methods)} ({', '.join(sorted({m.name for m in methods}))})"
                 + (f", flips {flips}" if flips != "none" else ""))
    return host


def build_ensemble(runs: list[str | Path], out: str | Path, flips: str = "none") -> dict:
    """Write the run folder ``out`` (new; written under a temporary name, then renamed) whose
    task net is the ensemble of the task nets of ``runs`` (run folders, all segmentation or all
    grasp, with the same inputs and labels), each also run on the mirror images of ``flips``
    (:data:`FLIPS`; with flips one run is enough, else at least two). Returns the run's config."""
    from .trainer import CKPT, load_run, save_atomic

    out = Path(out)
    if flips not in FLIPS:
        raise SimdataError(f"--flips {flips!r}: use {', '.join(FLIPS)}")
    if len(runs) < (1 if flips != "none" else 2):
        raise SimdataError(f"an ensemble needs at least two runs, or one with --flips; got {len(runs)}")
    if out.exists():
        raise SimdataError(f"--out {out} exists; an ensemble is written to a new folder")
    members, nets = [], []
    for run in runs:
        method, conf = load_run(run, "cpu")
        if "ensemble" in conf:
            raise SimdataError(f"{run} is an ensemble already; list its member runs instead")
        if conf["train"]["task"] not in ENSEMBLES:
            raise SimdataError(f"{run} trains {conf['train']['task']}; ensembles are of "
                               f"{' or '.join(ENSEMBLES)} runs")
        if members:
            first = members[0]
            for key in SHARED:
                if _get(conf, key) != _get(first["config"], key):
                    raise SimdataError(f"{run} differs from {first['run']} in {'.'.join(key)} "
                                       f"({_get(conf, key)!r} against {_get(first['config'], key)!r}); "
                                       f"an ensemble's runs must share inputs and labels")
        members.append({"run": str(Path(run).resolve()), "config": conf})
        nets.append(method.task_net)
    conf = {**copy.deepcopy(members[0]["config"]), "ensemble": {"members": members, "flips": flips}}
    conf["train"]["out"] = str(out)
    ensemble = ENSEMBLES[conf["train"]["task"]](nets, flips)
    state = {"step": 0, "method": {"nets": {"task": ensemble.state_dict()}},
             "config": conf}
    with atomic_file(out) as tmp:
        save_atomic(state, tmp / CKPT)
        write_json_atomic(tmp / "config.json", conf)
    return conf
