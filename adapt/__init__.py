"""adapt: pixel-level sim-to-real adaptation and task nets trained on simdata crops.

`adapt train METHOD` runs one trainer (adapt.trainer) with a method from adapt.methods;
`adapt eval`, `adapt translate` and `adapt export` work on the run folder it writes.
"""
__version__ = "0.1.0"
