"""Registry of adaptation methods: name -> class (an explicit dict)."""
from .base import DataSpec, Method
from .baselines import SegSourceOnly, SourceOnly, TargetOnly
from .pixelda import PixelDA
from .spigan import Spigan

METHODS: dict[str, type[Method]] = {
    PixelDA.name: PixelDA,
    SourceOnly.name: SourceOnly,
    TargetOnly.name: TargetOnly,
    Spigan.name: Spigan,
    SegSourceOnly.name: SegSourceOnly,
}

__all__ = ["METHODS", "DataSpec", "Method"]
