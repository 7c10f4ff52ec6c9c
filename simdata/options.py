"""Command-line options generated from configuration dataclasses: one ``--option`` per field,
typed and documented from the field's metadata (``help``; ``cli=False`` leaves a field out)."""
from __future__ import annotations

from dataclasses import MISSING, fields


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
    """An instance of ``cls`` from the parsed options that name its fields."""
    return cls(**{f.name: getattr(ns, f.name) for f in fields(cls) if hasattr(ns, f.name)})
