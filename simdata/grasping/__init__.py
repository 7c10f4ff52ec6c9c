"""Parallel-jaw grasping: a gripper model, antipodal grasp sampling and grasp trials in pybullet.

Conventions (all lengths in metres): grasps live in the object frame; the gripper frame has its
origin at the grasp centre between the finger pads, +z along the approach (palm -> fingertips)
and +x along the closing axis. See :mod:`simdata.grasping.gripper`.
"""
from .antipodal import (Grasp, antipodal_cache_path, antipodal_cached, grasps_from_arrays,
                        grasps_to_arrays, mesh_digest, sample_antipodal)
from .execute import execute_grasp, try_grasp
from .gripper import FINGER_JOINTS, GripperConfig, base_com_offset, gripper_urdf

DEFAULT_GRIPPER_URDF = "assets/grippers/parallel_jaw.urdf"  # relative to the repository root

__all__ = ["DEFAULT_GRIPPER_URDF", "FINGER_JOINTS", "Grasp", "GripperConfig", "antipodal_cache_path",
           "antipodal_cached", "base_com_offset", "execute_grasp", "gripper_urdf", "try_grasp",
           "grasps_from_arrays", "grasps_to_arrays", "mesh_digest", "sample_antipodal"]
