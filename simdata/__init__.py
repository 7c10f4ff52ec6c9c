"""simdata: physics-placed, headless-rendered RGB-D datasets of object meshes in BOP format."""
__version__ = "0.1.0"

from .errors import SimdataError  # noqa: E402


def __getattr__(name):
    # BopDataset pulls in torch: import it only when asked for.
    if name == "BopDataset":
        from .datasets import BopDataset

        return BopDataset
    raise AttributeError(name)


__all__ = ["BopDataset", "SimdataError", "__version__"]
