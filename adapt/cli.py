"""`adapt` command line: train, eval, translate, export."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import MISSING, fields
from pathlib import Path

from simdata.errors import SimdataError


def add_dataclass_options(parser, cls, skip=()):
    """One --option per dataclass field, typed and documented from the field's metadata."""
    for f in fields(cls):
        if f.name in skip or not f.metadata.get("cli", True):
            continue
        default = f.default if f.default is not MISSING else None
        flag = "--" + f.name.replace("_", "-")
        help_ = f.metadata.get("help", "")
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true", default=default, help=help_)
        else:
            parser.add_argument(flag, type=type(default), default=default, help=help_)


def pick(ns, cls):
    return cls(**{f.name: getattr(ns, f.name) for f in fields(cls) if hasattr(ns, f.name)})


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in the option help, and method docstrings kept as written."""


def build_parser() -> argparse.ArgumentParser:
    from simdata.bags import add_topic_options

    from .config import TrainConfig
    from .methods import METHODS
    from .predict_bag import BagPredictConfig
    from .tasks import TASKS

    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog="adapt", description="Sim-to-real adaptation on simdata crops: train a method, "
        "evaluate its task net on labelled target data, translate synthetic data with its "
        "generator, export nets to ONNX/TorchScript.")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = sub.add_parser("train", help="train a method", description="Train an adaptation "
                           "method or a baseline. Each method has its own options.")
    msub = train.add_subparsers(dest="method", metavar="METHOD", required=True)
    for name, cls in METHODS.items():
        p = msub.add_parser(name, formatter_class=_Formatter, help=(cls.__doc__ or name).strip().splitlines()[0],
                            description=(sys.modules[cls.__module__].__doc__ or "").strip())
        add_dataclass_options(p, TrainConfig, skip=("method",))
        add_dataclass_options(p, cls.Config)
        for task in cls.tasks:  # the options of every task the method trains
            group = p.add_argument_group(f"{task} task options (with --task {task})")
            add_dataclass_options(group, TASKS[task].Config)
        p.add_argument("--resume", action="store_true", help="continue the run in --out")
        p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        p.set_defaults(func=cmd_train, method_cls=cls)

    p = sub.add_parser("eval", formatter_class=fmt, help="task metrics on labelled target data",
                       description="Evaluate a run's task net on labelled data: for pose runs "
                       "a crops folder (accuracy; symmetry-aware mean/median rotation error and "
                       "shares under 5/10/20 deg; translation error in mm; ADD for asymmetric "
                       "and ADD-S for symmetric objects with recall at 10 % of the diameter; "
                       "PixelDA's angle 2 acos|q.q'| without symmetries; per-class figures); for "
                       "segmentation runs a BOP dataset or a labelled image folder (per-class "
                       "IoU, object IoU, mIoU, pixel accuracy; negative transfer with --baseline; a "
                       "figure per image: input, truth, prediction); for grasp runs a BOP dataset "
                       "labelled by simdata grasps (rectangle accuracy of the best grasp per "
                       "image; closed-loop grasps simulated in pybullet for the net, a random "
                       "grasp on an object mask and a centroid grasp across a mask's narrow side, "
                       "with 95 % intervals; a figure per image). Writes "
                       "RUN/eval_<folder>.json and RUN/eval_<folder>/.")
    p.add_argument("run", help="run folder")
    p.add_argument("--data", required=True, help="labelled crops folder or BOP dataset")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--baseline", default="", help="source-only run: adds negative transfer "
                   "(share of images whose IoU falls below the baseline's)")
    p.add_argument("--sim-trials", type=int, default=None, help="grasp runs: closed-loop grasps "
                   "simulated in pybullet for the net and the random and centroid baselines "
                   "(0 = none) [the run's --sim-trials]")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", formatter_class=fmt, help="predict and draw the predictions",
                       description="Run a run's task net and draw what it predicts. Segmentation "
                       "runs, on a folder of images: NAME_labels.png (raw class ids) and "
                       "NAME_color.png (coloured masks over the image). Pose runs, on a crops "
                       "folder: predictions.jsonl (class, score, rotation, translation in metres "
                       "per crop) and poses.png (predicted axes and model points drawn on the "
                       "crops; the true pose as thin axes where the crops are labelled). Grasp "
                       "runs, on a folder of images with depth: NAME_grasps.png (the best five "
                       "grasps drawn on the image and the depth, and the quality map) and "
                       "grasps.jsonl (pixel grasps and gripper poses in the camera frame). "
                       "On a ROS bag (--input BAG --out X.mcap), a run folder or an exported "
                       ".onnx file (through adapt.runtime) writes ROS 2 messages stamped with each "
                       "frame's header: poses as PoseArray and MarkerArray (the model's box), "
                       "masks as mono8 / mono16 Images, grasps as PoseArray and MarkerArray; a "
                       "pose net takes its boxes from a segmentation net (--boxes).")
    p.add_argument("run", help="run folder, or an exported .onnx file (with a bag --input)")
    p.add_argument("--input", required=True, help="folder of images (segmentation, grasp), crops "
                   "folder (pose), or a ROS bag (.bag, .db3, .mcap or ROS 2 folder)")
    p.add_argument("--out", required=True, help="output folder; OUT.mcap for a bag --input")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (run folders)")
    group = p.add_argument_group("bag input (--input BAG --out OUT.mcap)")
    add_dataclass_options(group, BagPredictConfig)
    add_topic_options(group)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("download-vgg", help="fetch ImageNet VGG19 weights (online)",
                       description="Download the standard ImageNet VGG19 weights into the torch "
                       "hub cache, where --vgg-weights auto finds them.")
    p.set_defaults(func=cmd_download_vgg)

    p = sub.add_parser("translate", formatter_class=fmt, help="apply the generator to a dataset",
                       description="Write a copy of --input (a crops folder or a BOP dataset) "
                       "with the generator applied to every RGB image; labels, masks, depth "
                       "and the other privileged channels are kept.")
    p.add_argument("run", help="run folder (a method with a generator)")
    p.add_argument("--input", required=True, help="crops folder or BOP dataset")
    p.add_argument("--out", required=True, help="new folder")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--seed", type=int, default=0, help="seed of the generator noise")
    p.set_defaults(func=cmd_translate)

    p = sub.add_parser("export", formatter_class=fmt, help="ONNX / TorchScript export with parity check",
                       description="Export the task net or the generator in eval mode, with "
                       "OUT.json describing inputs, normalisation, classes and outputs (an ONNX "
                       "file carries the same inside, in its metadata_props, which adapt.runtime "
                       "runs it by); the export is checked against PyTorch (onnxruntime for ONNX).")
    p.add_argument("run", help="run folder")
    p.add_argument("--net", default="task", choices=["task", "generator"], help="which net")
    p.add_argument("--format", default="onnx", choices=["onnx", "torchscript"], help="file format")
    p.add_argument("--out", required=True, help="output file")
    p.set_defaults(func=cmd_export)
    return parser


def cmd_train(args) -> int:
    from .config import TrainConfig
    from .trainer import Trainer

    from .config import non_defaults
    from .tasks import TASKS
    from .trainer import resolve_task

    cfg = pick(args, TrainConfig)
    cfg.method = args.method
    task_cls = type(resolve_task(cfg, args.method_cls))
    for other in args.method_cls.tasks:  # options of a task this run does not train: refused
        changed = non_defaults(pick(args, TASKS[other].Config))
        if other != task_cls.name and changed:
            flags = ", ".join("--" + k.replace("_", "-") for k in changed)
            raise SimdataError(f"{flags}: option(s) of the {other} task; this run trains "
                               f"{task_cls.name} (choose with --task)")
    trainer = Trainer(cfg, pick(args, args.method_cls.Config), resume=args.resume,
                      task_cfg=pick(args, task_cls.Config))
    result = trainer.fit(progress=not args.no_progress)
    last = result["last"]
    line = ", ".join(f"{k} {v}" for k, v in last.items() if k != "step")
    print(f"trained {cfg.method} to step {result['steps']} ({result['steps_per_s']} steps/s): {line}")
    if "early_stop" in result:
        print(f"stopped early: {result['early_stop']}; kept checkpoints/best.pt")
    if "eval" in result:
        print(f"eval on {cfg.eval_data}: {trainer.task.summary(result['eval'])}")
    print(f"run folder: {cfg.out}")
    return 0


def cmd_eval(args) -> int:
    from .config import TrainConfig
    from .evaluate import evaluate, negative_transfer
    from .trainer import load_run

    method, conf = load_run(args.run, args.device)
    if args.sim_trials is not None:
        if not hasattr(method.task.cfg, "sim_trials"):
            raise SimdataError(f"--sim-trials is for grasp runs; {args.run} is a {method.task.name} run")
        if args.sim_trials < 0:
            raise SimdataError(f"--sim-trials {args.sim_trials} must be 0 or more")
        method.task.cfg.sim_trials = args.sim_trials
    domain = method.task.open_domain(TrainConfig(**conf["train"]), args.data, stream=99)
    if not domain.labelled:
        raise SimdataError(f"{args.data} has no labels; a {method.task.name} run is evaluated on "
                           f"{method.task.data_kind}")
    if domain.names != method.data.classes:
        raise SimdataError(f"{args.data} names other classes than the run; use data of the same meshes")
    res = evaluate(method, domain)
    if args.baseline:
        base, base_conf = load_run(args.baseline, args.device)
        if base.task.name != method.task.name or base.data.classes != method.data.classes:
            raise SimdataError(f"baseline {args.baseline} solves another task or classes")
        # the baseline's own inputs (it may take other channels) of the same images
        ref = evaluate(base, base.task.open_domain(TrainConfig(**base_conf["train"]), args.data, stream=99))
        if "per_image_iou" not in res:
            raise SimdataError("negative transfer is defined for segmentation runs")
        res["baseline"] = {"run": str(args.baseline), "miou": ref["miou"]}
        res["negative_transfer"] = negative_transfer(res["per_image_iou"], ref["per_image_iou"])
    stem = f"eval_{Path(args.data).name}"
    n = method.task.eval_figures(method.task_net, domain, method.data, method.device, res,
                                 Path(args.run) / stem)
    if n:
        print(f"{n} per-image figures in {Path(args.run) / stem}", file=sys.stderr)
    (Path(args.run) / f"{stem}.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps({k: v for k, v in res.items() if k not in ("per_image_iou", "per_image")}, indent=2))
    print(method.task.summary(res), file=sys.stderr)  # stdout stays JSON for scripts
    return 0


def cmd_predict(args) -> int:
    from simdata.bags import is_bag, topics_from_args

    if is_bag(args.input) or Path(args.out).suffix == ".mcap":
        from .predict_bag import BagPredictConfig, predict_bag

        counts = predict_bag(args.run, args.input, args.out, pick(args, BagPredictConfig),
                             topics_from_args(args), args.device)
        print(f"wrote {sum(counts.values())} messages to {args.out}: "
              + ", ".join(f"{t} {n}" for t, n in counts.items()))
        return 0
    if Path(args.run).suffix == ".onnx":
        raise SimdataError(f"{args.run}: an .onnx net predicts on ROS bags (--input BAG --out "
                           f"OUT.mcap); for a folder of images pass the run folder")
    from .predict import predict

    n = predict(args.run, args.input, args.out, args.device)
    print(f"wrote the predictions of {n} samples to {args.out}")
    return 0


def cmd_download_vgg(args) -> int:
    from .nets.vgg import download_vgg19

    print(f"VGG19 ImageNet weights in {download_vgg19()}")
    return 0


def cmd_translate(args) -> int:
    from .translate import translate

    out = translate(args.run, args.input, args.out, args.device, seed=args.seed)
    print(f"wrote {out}")
    return 0


def cmd_export(args) -> int:
    from .export import export_run

    meta = export_run(args.run, args.net, args.format, args.out)
    print(f"wrote {args.out} and {args.out}.json ({args.format}, {args.net}; parity "
          f"{meta['parity_max_abs_error']:.1e})")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("adapt").setLevel(logging.WARNING if args.quiet else logging.INFO)
    try:
        return args.func(args)
    except SimdataError as e:
        print(f"adapt: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("adapt: interrupted; rerun with --resume to continue from the last checkpoint",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
