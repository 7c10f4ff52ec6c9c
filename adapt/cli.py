"""`adapt` command line. The training methods arrive with the trainer (see README roadmap)."""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="adapt",
        description="Sim-to-real adaptation (PixelDA, SPIGAN, ...) and task nets trained on "
                    "simdata datasets. No methods are registered in this version yet: the "
                    "trainer and PixelDA are the next milestone (see README).")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__
        print(__version__)
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
