"""Registry of adaptation methods: name -> class (an explicit dict)."""
from .base import DataSpec, Method
from .baselines import GraspSourceOnly, SegSourceOnly, SourceOnly, TargetOnly
from .cut import Cut, FastCut
from .cycada import Cycada
from .dann import Dann
from .pixelda import PixelDA
from .simgan import Simgan
from .spigan import Spigan

METHODS: dict[str, type[Method]] = {
    PixelDA.name: PixelDA,
    SourceOnly.name: SourceOnly,
    TargetOnly.name: TargetOnly,
    Spigan.name: Spigan,
    SegSourceOnly.name: SegSourceOnly,
    GraspSourceOnly.name: GraspSourceOnly,
    Cut.name: Cut,
    FastCut.name: FastCut,
    Cycada.name: Cycada,
    Dann.name: Dann,
    Simgan.name: Simgan,
}

__all__ = ["METHODS", "DataSpec", "Method"]
