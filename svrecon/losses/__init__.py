"""Losses of the five seed models, each with its paper's equation and default weight."""

from .distance_transform import distance_transform
from .ray import ray_free_space_loss, ray_intersection_loss
from .regularizers import (
    eikonal_loss,
    masked_l1_loss,
    masked_mse_loss,
    sphere_sdf_loss,
    symmetry_loss,
)
from .silhouette import (
    importance_weights,
    silhouette_lower_bound,
    silhouette_sdf_loss,
    soft_iou_loss,
)
from .supervised import camera_point_cloud_loss, disn_sdf_loss

__all__ = [
    "camera_point_cloud_loss",
    "disn_sdf_loss",
    "distance_transform",
    "eikonal_loss",
    "importance_weights",
    "masked_l1_loss",
    "masked_mse_loss",
    "ray_free_space_loss",
    "ray_intersection_loss",
    "silhouette_lower_bound",
    "silhouette_sdf_loss",
    "soft_iou_loss",
    "sphere_sdf_loss",
    "symmetry_loss",
]
