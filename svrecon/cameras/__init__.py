"""Cameras, rotations, rays and pixel sampling (OpenCV frame, see docs/conventions.md)."""

from .cameras import (
    Camera,
    OrthographicCamera,
    PerspectiveCamera,
    ProjectionMatrixCamera,
    WeakPerspectiveCamera,
    well_conditioned_projection,
)
from .heads import EulerTrigHead, ProjectionMatrixHead, Rotation6DHead
from .presets import POSE_PRESETS, PosePreset, pose_from_angle_trig, pose_from_angles
from .rays import RayBundle, pixel_grid
from .rotations import (
    axis_angle_to_matrix,
    euler_to_matrix,
    euler_trig_to_matrix,
    look_at,
    matrix_to_axis_angle,
    matrix_to_euler,
    matrix_to_euler_trig,
    matrix_to_rotation_6d,
    rotation_6d_to_matrix,
)
from .sampling import (
    PixelSample,
    gather_pixels,
    inverse_distance_weights,
    sample_pixels_uniform,
    sample_pixels_weighted,
)

__all__ = [
    "POSE_PRESETS",
    "Camera",
    "EulerTrigHead",
    "OrthographicCamera",
    "PerspectiveCamera",
    "PixelSample",
    "PosePreset",
    "ProjectionMatrixCamera",
    "ProjectionMatrixHead",
    "RayBundle",
    "Rotation6DHead",
    "WeakPerspectiveCamera",
    "axis_angle_to_matrix",
    "euler_to_matrix",
    "euler_trig_to_matrix",
    "gather_pixels",
    "inverse_distance_weights",
    "look_at",
    "matrix_to_axis_angle",
    "matrix_to_euler",
    "matrix_to_euler_trig",
    "matrix_to_rotation_6d",
    "pixel_grid",
    "pose_from_angle_trig",
    "pose_from_angles",
    "rotation_6d_to_matrix",
    "sample_pixels_uniform",
    "sample_pixels_weighted",
    "well_conditioned_projection",
]
