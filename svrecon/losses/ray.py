"""SDF-SRN's ray losses on the LSTM marcher's SDF values (Lin et al. 2020, Eq. 7)."""

from __future__ import annotations

import torch

from ..checks import check_shape
from ._reduce import mean_or_zero, weighted_mean

__all__ = ["ray_free_space_loss", "ray_intersection_loss"]


def ray_intersection_loss(
    marched_values: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor | None = None,
    margin: float = 0.01,
) -> torch.Tensor:
    """Push the last marched point inside for foreground rays and outside for background.

    ``l = relu(f_last + margin)`` where ``mask`` is set, ``relu(margin - f_last)`` elsewhere;
    the two means (each weighted by ``weight`` ``[B, R]``, SDF-SRN's ``1 / D(u)``) are
    added, as the seed code does. Default weight 1 (SDF-SRN, ShapeNet and Pascal3D).

    Shapes: ``marched_values`` ``[B, R, S]``, ``mask`` ``[B, R]`` bool -> scalar.
    """
    dims = check_shape("marched_values", marched_values, ("B", "R", "S"))
    check_shape("mask", mask, ("B", "R"), dims)
    if weight is not None:
        check_shape("weight", weight, ("B", "R"), dims)
    last = marched_values[..., -1]
    mask = mask.bool()
    inside = weighted_mean(torch.relu(last + margin), weight, mask)
    outside = weighted_mean(torch.relu(margin - last), weight, ~mask)
    return inside + outside


def ray_free_space_loss(marched_values: torch.Tensor, margin: float = 0.01) -> torch.Tensor:
    """Keep every marched point before the last outside: mean ``relu(margin - f_i)``.

    Default weight 0.1 (SDF-SRN). Shapes: ``marched_values`` ``[B, R, S]`` -> scalar.
    """
    check_shape("marched_values", marched_values, ("B", "R", "S"))
    if marched_values.shape[-1] < 2:
        raise ValueError("marched_values: need at least 2 marched values per ray")
    return mean_or_zero(torch.relu(margin - marched_values[..., :-1]))
