"""`adapt` command line: train, eval, predict, view, translate, export."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from simdata.errors import SimdataError
from simdata.options import add_dataclass_options, pick


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
        p.add_argument("--resume", action="store_true", help="continue the run in --out (from "
                       "checkpoints/last.pt; a new run, with a warning, when there is none). "
                       "Changed --steps and logging, sample, checkpoint and eval options are "
                       "accepted; other changed settings are refused (see --force-resume)")
        p.add_argument("--force-resume", action="store_true", help="--resume even with settings "
                       "that differ from the run's (batch, seed, weights, data...): the run goes on "
                       "with the new ones and no longer equals an uninterrupted run (learning "
                       "rates and their schedules stay the checkpoint's optimizer state)")
        p.add_argument("--nproc", type=int, default=1, help="processes to train in (data "
                       "parallel, global --batch split evenly): launches torchrun on this machine, "
                       "one process per GPU with --device cuda, gloo on the CPU otherwise; "
                       "ignored when already started by torchrun")
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

    p = sub.add_parser("view", formatter_class=fmt, help="predictions in 3D (Rerun)",
                       description="Run a run's task net on --input and log the frames and "
                       "predictions to Rerun, the 3D viewer (rerun-sdk, the viewer extra): camera, "
                       "RGB, depth as points, and predicted class masks (segmentation), grasp "
                       "rectangles and gripper poses (grasp) or posed model boxes and points with "
                       "the truth where labelled (pose, on crops). Entities are listed in "
                       "adapt/view.py.")
    p.add_argument("run", help="run folder")
    p.add_argument("--input", required=True, help="image folder, BOP dataset or ROS bag (segmentation, "
                   "grasp), crops folder (pose)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    from simdata.bags import add_topic_options
    from simdata.view import ViewConfig

    add_dataclass_options(p, ViewConfig, skip=("max_faces",))  # no meshes: boxes and points
    add_topic_options(p.add_argument_group("ROS bag options (an --input bag)"))
    p.set_defaults(func=cmd_view)

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

    p = sub.add_parser("ensemble", formatter_class=fmt, help="several segmentation or grasp runs as one net",
                       description="Write a run folder whose task net averages the predictions "
                       "of the task nets of RUNs: class probabilities of segmentation runs, the "
                       "quality, angle and width maps of grasp runs (runs of one task with the same "
                       "--channels, --height, labels and task options; methods, nets, seeds and "
                       "data may differ). The weights are copied in, so the new run stands alone; "
                       "eval, export, predict and view take it like any run. Train the same recipe "
                       "with several --seed values and ensemble them: on real frames runs of one "
                       "recipe can disagree, and the average is steadier than any one of them.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders (at least two; one with --flips)")
    p.add_argument("--out", required=True, help="the new run folder")
    p.add_argument("--flips", default="none", choices=["none", "h", "hv"],
                   help="test-time augmentation: every net also sees the image mirrored "
                        "left-right (h), or left-right, top-bottom and both (hv: a half turn too; "
                        "for views from above, where any turn of the camera is one the net "
                        "trained on), and its prediction is mirrored back into the average; "
                        "costs one pass per image and net per flip")
    p.set_defaults(func=cmd_ensemble)

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
    from . import distributed
    from .config import TrainConfig, non_defaults
    from .tasks import TASKS
    from .trainer import Trainer, resolve_device, resolve_task

    if args.nproc != 1 and "LOCAL_RANK" not in os.environ:  # not yet one of torchrun's processes
        return distributed.launch(args.nproc, args.argv)
    cfg = pick(args, TrainConfig)
    cfg.method = args.method
    task_cls = type(resolve_task(cfg, args.method_cls))
    for other in args.method_cls.tasks:  # options of a task this run does not train: refused
        changed = non_defaults(pick(args, TASKS[other].Config))
        if other != task_cls.name and changed:
            flags = ", ".join("--" + k.replace("_", "-") for k in changed)
            raise SimdataError(f"{flags}: option(s) of the {other} task; this run trains "
                               f"{task_cls.name} (choose with --task)")
    with distributed.from_env(resolve_device(cfg.device).type) as ranks:
        if not ranks.main:  # rank 0 reports the run
            logging.getLogger("adapt").setLevel(logging.WARNING)
        trainer = Trainer(cfg, pick(args, args.method_cls.Config), resume=args.resume or args.force_resume,
                          task_cfg=pick(args, task_cls.Config), force_resume=args.force_resume,
                          ranks=ranks)
        result = trainer.fit(progress=not args.no_progress)
    if not ranks.main:
        return 0
    last = result["last"]
    if last:
        line = ", ".join(f"{k} {v}" for k, v in last.items() if k != "step")
        print(f"trained {cfg.method} to step {result['steps']} ({result['steps_per_s']} steps/s): {line}")
    else:  # a resumed run that had finished
        print(f"{cfg.method} run at step {result['steps']}: nothing left to train")
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
    print(json.dumps({k: v for k, v in res.items() if k not in ("per_image_iou", "per_image", "confusion")},
                     indent=2))
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


def cmd_view(args) -> int:
    from simdata.bags import topics_from_args
    from simdata.view import ViewConfig

    from .view import view_run

    cfg = pick(args, ViewConfig)
    n = view_run(args.run, args.input, cfg, args.device, topics_from_args(args))
    print(f"logged {n} frames" + (f" to {cfg.save} (open it with `rerun {cfg.save}`)" if cfg.save else "")
          + (f"; the viewer's picture of it in {cfg.screenshot}" if cfg.screenshot else ""))
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


def cmd_ensemble(args) -> int:
    from .ensemble import build_ensemble

    conf = build_ensemble(args.runs, args.out, args.flips)
    flips = f", flips {args.flips}" if args.flips != "none" else ""
    print(f"wrote {args.out}: an ensemble of {len(conf['ensemble']['members'])} "
          f"{conf['train']['task']} runs ({conf['data']['channels']}, height {conf['train']['height']}{flips})")
    return 0


def cmd_export(args) -> int:
    from .export import export_run

    meta = export_run(args.run, args.net, args.format, args.out)
    print(f"wrote {args.out} and {args.out}.json ({args.format}, {args.net}; parity "
          f"{meta['parity_max_abs_error']:.1e})")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    args = build_parser().parse_args(argv)
    args.argv = argv  # what `adapt train --nproc N` starts again in each process
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("adapt").setLevel(logging.WARNING if args.quiet else logging.INFO)
    try:
        return args.func(args)
    except SimdataError as e:
        from .distributed import report_error

        report_error(f"adapt: error: {e}")  # under torchrun: once, whichever rank met it
        return 2
    except KeyboardInterrupt:
        if os.environ.get("RANK", "0") == "0":
            print("adapt: interrupted; rerun with --resume to continue from the last checkpoint",
                  file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
