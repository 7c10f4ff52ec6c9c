"""Dataset writers. A writer only sees frames and poses; it never renders."""
from .bop import BopSceneWriter, write_dataset_header, write_models

__all__ = ["BopSceneWriter", "write_dataset_header", "write_models"]
