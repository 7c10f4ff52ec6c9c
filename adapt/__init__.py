"""adapt: pixel-level sim-to-real adaptation and task nets trained on simdata datasets."""
__version__ = "0.1.0"
