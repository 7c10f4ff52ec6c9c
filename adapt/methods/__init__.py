"""Registry of adaptation methods: name -> class (an explicit dict)."""
from .base import DataSpec, Method
from .baselines import SourceOnly, TargetOnly
from .pixelda import PixelDA

METHODS: dict[str, type[Method]] = {
    PixelDA.name: PixelDA,
    SourceOnly.name: SourceOnly,
    TargetOnly.name: TargetOnly,
}

__all__ = ["METHODS", "DataSpec", "Method"]
