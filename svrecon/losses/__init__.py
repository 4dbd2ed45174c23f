"""Losses of the five seed models, each with its paper's equation and default weight."""

from .distance_transform import distance_transform
from .ray import ray_free_space_loss, ray_intersection_loss

__all__ = ["distance_transform", "ray_free_space_loss", "ray_intersection_loss"]
