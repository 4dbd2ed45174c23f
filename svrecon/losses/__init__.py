"""Losses of the five seed models, each with its paper's equation and default weight."""

from .distance_transform import distance_transform

__all__ = ["distance_transform"]
