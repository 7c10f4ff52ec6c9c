"""`python -m adapt` (and `torchrun -m adapt`): the adapt command line."""
import sys

from .cli import main

sys.exit(main())
