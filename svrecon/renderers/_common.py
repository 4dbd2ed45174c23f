"""Helpers shared by the renderers, over :mod:`svrecon.fields`' one field contract."""

from __future__ import annotations

import torch

from ..cameras.rays import RayBundle
from ..fields import Field, FieldOutput, call_field, field_gradient

__all__ = ["Field", "call_field", "check_finite_bounds", "spatial_gradient"]


def without_autocast(like: torch.Tensor):
    """A context that turns autocast off on ``like``'s device: the surface searches run
    in the rays' precision even under ``torch.autocast``, since a bfloat16 field value
    (8 bits of mantissa) cannot resolve where along a ray its sign changes."""
    return torch.autocast(like.device.type, enabled=False)


def check_finite_bounds(rays: RayBundle, who: str) -> None:
    if not (torch.isfinite(rays.near).all() and torch.isfinite(rays.far).all()):
        raise ValueError(
            f"rays: {who} needs finite near and far; clip the rays first, e.g. with "
            "RayBundle.intersect_sphere(radius)"
        )


def spatial_gradient(
    field: Field, points: torch.Tensor, level: float | None, create_graph: bool
) -> tuple[FieldOutput, torch.Tensor, torch.Tensor]:
    """:func:`~svrecon.fields.field_gradient` keeping the output's graph (renderers
    backpropagate through it after taking the gradient)."""
    g = field_gradient(field, points, level=level, create_graph=create_graph, retain_graph=True)
    return g.output, g.value, g.gradient
