"""Networks and the registry that names them (an explicit dict, no import side effects)."""
from .discriminators import PixelDADiscriminator
from .generators import PixelDAGenerator
from .tasknets import PoseClassifier

NETS = {
    "pixelda-generator": PixelDAGenerator,
    "pixelda-discriminator": PixelDADiscriminator,
    "pose-classifier": PoseClassifier,
}


def build(name: str, **kwargs):
    """Instantiate a registered net by name."""
    if name not in NETS:
        raise KeyError(f"unknown net {name!r}; registered: {', '.join(sorted(NETS))}")
    return NETS[name](**kwargs)


__all__ = ["NETS", "build", "PixelDADiscriminator", "PixelDAGenerator", "PoseClassifier"]
