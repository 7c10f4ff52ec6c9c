"""Networks and the registry that names them (an explicit dict, no import side effects)."""
from .discriminators import PatchDiscriminator, PixelDADiscriminator, SimGANDiscriminator
from .domain import ConvDomainClassifier, MLPDomainClassifier
from .ggcnn import GGCNN2
from .generators import PixelDAGenerator, ResnetGenerator, SimGANRefiner
from .tasknets import FCNSegmenter, PoseNet

NETS = {
    "pixelda-generator": PixelDAGenerator,
    "pixelda-discriminator": PixelDADiscriminator,
    "pose-net": PoseNet,
    "resnet-generator": ResnetGenerator,
    "patch-discriminator": PatchDiscriminator,
    "fcn": FCNSegmenter,
    "ggcnn2": GGCNN2,
    "fcn-context": lambda **kw: FCNSegmenter(**{"context": 3, **kw}),
    "simgan-refiner": SimGANRefiner,
    "simgan-discriminator": SimGANDiscriminator,
    "domain-mlp": MLPDomainClassifier,
    "domain-conv": ConvDomainClassifier,
}


def build(name: str, **kwargs):
    """Instantiate a registered net by name."""
    if name not in NETS:
        raise KeyError(f"unknown net {name!r}; registered: {', '.join(sorted(NETS))}")
    return NETS[name](**kwargs)


__all__ = ["NETS", "build", "FCNSegmenter", "GGCNN2", "PatchDiscriminator", "PixelDADiscriminator",
           "PixelDAGenerator", "PoseNet", "ResnetGenerator", "SimGANDiscriminator", "SimGANRefiner",
           "ConvDomainClassifier", "MLPDomainClassifier"]
