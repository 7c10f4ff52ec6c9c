"""Registry of adaptation methods: name -> class (an explicit dict)."""
from .base import DataSpec, Method
from .baselines import GraspSourceOnly, SegSourceOnly, SourceOnly, TargetOnly
from .pixelda import PixelDA
from .spigan import Spigan

METHODS: dict[str, type[Method]] = {
    PixelDA.name: PixelDA,
    SourceOnly.name: SourceOnly,
    TargetOnly.name: TargetOnly,
    Spigan.name: Spigan,
    SegSourceOnly.name: SegSourceOnly,
    GraspSourceOnly.name: GraspSourceOnly,
}

__all__ = ["METHODS", "DataSpec", "Method"]
