"""Helpers shared by the renderers: calling fields, signed values, safe normals."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .._math import gradient_wrt
from ..cameras.rays import RayBundle
from ..fields.output import FieldOutput

Field = Callable[[torch.Tensor], FieldOutput]


def evaluate(field: Field, points: torch.Tensor) -> FieldOutput:
    """Call ``field`` on points ``[B, ..., 3]`` (flattened to ``[B, N, 3]``), reshape back."""
    b, shape = points.shape[0], points.shape[1:-1]
    out = field(points.reshape(b, -1, 3))
    if not isinstance(out, FieldOutput):
        raise TypeError(f"field: expected a FieldOutput, got {type(out).__name__}")
    n = points.reshape(b, -1, 3).shape[1]
    if out.value.shape != (b, n):
        raise ValueError(
            f"field(points): expected values of shape [{b}, {n}], got {list(out.value.shape)}"
        )

    def back(t):
        return None if t is None else t.reshape(b, *shape, *t.shape[2:])

    return FieldOutput(
        sdf=back(out.sdf),
        occupancy=back(out.occupancy),
        features=back(out.features),
        rgb=back(out.rgb),
        albedo=back(out.albedo),
        branch_values=back(out.branch_values),
        branch_index=back(out.branch_index),
    )


def default_level(out: FieldOutput) -> float:
    """The surface level: 0 for an SDF, 0.5 for an occupancy."""
    return 0.0 if out.sdf is not None else 0.5


def outside_value(out: FieldOutput, level: float) -> torch.Tensor:
    """A value negative inside and positive outside: ``sdf - level`` or ``level - occupancy``."""
    return out.sdf - level if out.sdf is not None else level - out.occupancy


def check_finite_bounds(rays: RayBundle, who: str) -> None:
    if not (torch.isfinite(rays.near).all() and torch.isfinite(rays.far).all()):
        raise ValueError(
            f"rays: {who} needs finite near and far; clip the rays first, e.g. with "
            "RayBundle.intersect_sphere(radius)"
        )


def spatial_gradient(
    field: Field, points: torch.Tensor, level: float | None, create_graph: bool
) -> tuple[FieldOutput, torch.Tensor, torch.Tensor]:
    """Field output, outside-signed value and its spatial gradient at ``points`` ``[B, R, 3]``.

    ``points`` keeps its own graph (e.g. to ray distances); the gradient is taken with
    respect to the point itself, and kept in the graph only with ``create_graph``.
    """
    with torch.enable_grad():
        x = points if points.requires_grad else points.detach().requires_grad_(True)
        out = evaluate(field, x)
        lvl = default_level(out) if level is None else level
        g = outside_value(out, lvl)
        grad = gradient_wrt(g, x, create_graph, retain_graph=True)
    return out, g, grad
