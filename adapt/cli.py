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
        if f.name in skip:
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


def build_parser() -> argparse.ArgumentParser:
    from .config import TrainConfig
    from .methods import METHODS

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
        p = msub.add_parser(name, formatter_class=fmt, help=(cls.__doc__ or name).strip().splitlines()[0],
                            description=(sys.modules[cls.__module__].__doc__ or "").strip())
        add_dataclass_options(p, TrainConfig, skip=("method",))
        add_dataclass_options(p, cls.Config)
        p.add_argument("--resume", action="store_true", help="continue the run in --out")
        p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        p.set_defaults(func=cmd_train, method_cls=cls)

    p = sub.add_parser("eval", formatter_class=fmt, help="accuracy and angle error on labelled crops",
                       description="Evaluate a run's task net on a labelled crops folder: "
                       "accuracy, mean/median rotation error in degrees, per-class accuracy. "
                       "Writes RUN/eval_<folder>.json.")
    p.add_argument("run", help="run folder")
    p.add_argument("--data", required=True, help="labelled crops folder")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("translate", formatter_class=fmt, help="apply the generator to crops",
                       description="Write a new crops folder with G applied to every crop of "
                       "--input; labels, masks and depth are kept.")
    p.add_argument("run", help="run folder (a method with a generator)")
    p.add_argument("--input", required=True, help="crops folder")
    p.add_argument("--out", required=True, help="new crops folder")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--seed", type=int, default=0, help="seed of the generator noise")
    p.set_defaults(func=cmd_translate)

    p = sub.add_parser("export", formatter_class=fmt, help="ONNX / TorchScript export with parity check",
                       description="Export the task net or the generator in eval mode, with "
                       "OUT.json describing inputs, normalisation, classes and outputs; the "
                       "export is checked against PyTorch (onnxruntime for ONNX).")
    p.add_argument("run", help="run folder")
    p.add_argument("--net", default="task", choices=["task", "generator"], help="which net")
    p.add_argument("--format", default="onnx", choices=["onnx", "torchscript"], help="file format")
    p.add_argument("--out", required=True, help="output file")
    p.set_defaults(func=cmd_export)
    return parser


def cmd_train(args) -> int:
    from .config import TrainConfig
    from .trainer import Trainer

    cfg = pick(args, TrainConfig)
    cfg.method = args.method
    trainer = Trainer(cfg, pick(args, args.method_cls.Config), resume=args.resume)
    result = trainer.fit(progress=not args.no_progress)
    last = result["last"]
    line = ", ".join(f"{k} {v}" for k, v in last.items() if k != "step")
    print(f"trained {cfg.method} to step {result['steps']} ({result['steps_per_s']} steps/s): {line}")
    if "eval" in result:
        e = result["eval"]
        print(f"eval on {cfg.eval_data}: accuracy {e['accuracy']:.3f}, mean angle error "
              f"{e['mean_angle_deg']:.1f} deg")
    print(f"run folder: {cfg.out}")
    return 0


def cmd_eval(args) -> int:
    from .data import Domain
    from .evaluate import evaluate_domain
    from .trainer import load_run

    method, conf = load_run(args.run, args.device)
    domain = Domain(args.data, conf["data"]["size"], conf["data"]["channels"], stream=99, seed=0)
    if not domain.info.labelled:
        raise SimdataError(f"{args.data} has no labels; evaluate on a crops folder")
    if domain.info.names != method.data.classes:
        raise SimdataError(f"{args.data} names other classes than the run; use crops of the same meshes")
    res = evaluate_domain(method.task_net, domain, method.device)
    (Path(args.run) / f"eval_{Path(args.data).name}.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    return 0


def cmd_translate(args) -> int:
    from .translate import translate_crops

    out = translate_crops(args.run, args.input, args.out, args.device, seed=args.seed)
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
