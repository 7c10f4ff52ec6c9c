"""Registry of tasks: name -> class (an explicit dict). See adapt.tasks.base for the protocol."""
from .base import DataSpec, Task
from .grasp import GraspTask
from .pose import PoseTask
from .segmentation import SegmentationTask

TASKS: dict[str, type[Task]] = {
    PoseTask.name: PoseTask,
    SegmentationTask.name: SegmentationTask,
    GraspTask.name: GraspTask,
}

__all__ = ["TASKS", "DataSpec", "GraspTask", "Task", "PoseTask", "SegmentationTask"]
