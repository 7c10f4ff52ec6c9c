"""simdata: physics-placed, headless-rendered RGB-D datasets of object meshes in BOP format."""
__version__ = "0.1.0"

from .errors import SimdataError  # noqa: E402


def __getattr__(name):
    # the datasets pull in torch: import them only when asked for.
    if name in ("BopDataset", "CropsDataset", "ImageFolder"):
        from . import datasets

        return getattr(datasets, name)
    raise AttributeError(name)


__all__ = ["BopDataset", "CropsDataset", "ImageFolder", "SimdataError", "__version__"]
