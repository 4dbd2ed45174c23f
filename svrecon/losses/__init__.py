"""Losses of the five seed models, each with its paper's equation and default weight."""

from .adversarial import discriminator_loss, generator_loss, r1_penalty
from .branches import branch_balance_loss, branch_colour_separation_loss
from .distance_transform import boundary_distance_transform, distance_transform
from .feature_consistency import (
    feature_consistency_loss,
    largest_eigenvector,
    part_boundary_points,
)
from .intrinsic import albedo_constancy_loss, white_shading_loss
from .metric import CategoryCentres, category_metric_loss
from .normals import normal_loss
from .occupancy import (
    occupancy_photometric_loss,
    occupancy_pretraining_losses,
    occupancy_silhouette_loss,
    searched_field_output,
    searched_occupancy,
)
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
from .viewpoint import (
    angle_range_loss,
    flip_symmetry_loss,
    uniform_azimuth_loss,
    view_consistency_loss,
)

__all__ = [
    "CategoryCentres",
    "albedo_constancy_loss",
    "boundary_distance_transform",
    "branch_balance_loss",
    "branch_colour_separation_loss",
    "angle_range_loss",
    "camera_point_cloud_loss",
    "category_metric_loss",
    "discriminator_loss",
    "disn_sdf_loss",
    "distance_transform",
    "eikonal_loss",
    "feature_consistency_loss",
    "flip_symmetry_loss",
    "generator_loss",
    "importance_weights",
    "largest_eigenvector",
    "masked_l1_loss",
    "masked_mse_loss",
    "normal_loss",
    "occupancy_photometric_loss",
    "part_boundary_points",
    "occupancy_pretraining_losses",
    "occupancy_silhouette_loss",
    "searched_field_output",
    "searched_occupancy",
    "r1_penalty",
    "ray_free_space_loss",
    "ray_intersection_loss",
    "silhouette_lower_bound",
    "silhouette_sdf_loss",
    "soft_iou_loss",
    "sphere_sdf_loss",
    "symmetry_loss",
    "uniform_azimuth_loss",
    "view_consistency_loss",
    "white_shading_loss",
]
