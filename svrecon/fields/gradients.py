"""Spatial gradients of fields (normals, eikonal terms) and sphere pretraining."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..checks import as_float, check_shape
from ..numerics import gradient_wrt
from .base import Field, call_field
from .output import FieldOutput

__all__ = ["FieldGradient", "field_gradient", "field_value", "pretrain_sphere", "sdf_gradient"]


def field_value(output: FieldOutput | torch.Tensor) -> torch.Tensor:
    """The scalar values ``[B, N]`` of a field's output (a ``FieldOutput`` or a tensor)."""
    return output.value if isinstance(output, FieldOutput) else output


@dataclass
class FieldGradient:
    """A field's output at points ``[B, ..., 3]``, its outside-signed value and that
    value's spatial gradient.

    Attributes:
        output: the field's :class:`FieldOutput`, shaped ``[B, ...]``.
        value: ``[B, ...]`` :meth:`FieldOutput.outside` at the level asked for
            (negative inside; the SDF itself for an SDF at level 0).
        gradient: ``[B, ..., 3]`` d value / d points (the outward normal direction).
    """

    output: FieldOutput
    value: torch.Tensor
    gradient: torch.Tensor


def field_gradient(
    field: Field,
    points: torch.Tensor,
    *,
    level: float | None = None,
    create_graph: bool = False,
    retain_graph: bool = False,
) -> FieldGradient:
    r"""The one spatial-gradient helper: normals for rendering, eikonal and normal
    losses (``create_graph=True``).

    .. math:: \nabla_x g(x), \quad g = f - \tau \text{ (SDF)}, \; g = \tau - o
        \text{ (occupancy)}

    Args:
        field: a field (``points [B, N, 3] -> FieldOutput``).
        points: ``[B, ..., 3]``; if they carry a graph (e.g. to ray distances) it is
            kept, and the gradient is taken with respect to the points themselves.
        level: the surface level ``tau`` (default 0 for an SDF, 0.5 for an occupancy).
        create_graph: keep the gradient in the graph, so a loss on it trains the field.
        retain_graph: keep the graph of ``output`` for a later backward (renderers).

    Only ``torch.autograd.grad`` with respect to the points is used, so no parameter's
    ``.grad`` is touched; it works under ``torch.no_grad()``. A field that does not
    depend on the points (a constant, or a detached output) has gradient zero.
    """
    check_shape("points", points, ("B", "...", 3))
    points = as_float("points", points)  # integer points have no gradient
    with torch.enable_grad():
        x = points if points.requires_grad else points.detach().requires_grad_(True)
        out = call_field(field, x)
        value = out.outside(level)
        grad = gradient_wrt(value, x, create_graph, retain_graph=retain_graph)
    return FieldGradient(out, value, grad)


def sdf_gradient(
    field: Field,
    points: torch.Tensor,
    create_graph: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Value and spatial gradient of a field at ``points`` (:func:`field_gradient` of
    the field's own value).

    Args:
        field: maps points ``[B, N, 3]`` to a ``FieldOutput``.
        points: ``[B, N, 3]``.
        create_graph: keep the graph of the gradient, so that a loss on it (eikonal,
            normal loss) trains the field; ``False`` for normals that are only looked at.

    Returns:
        ``(values [B, N], gradient [B, N, 3])``: the SDF or occupancy and its gradient
        (detached unless ``create_graph``).
    """
    check_shape("points", points, ("B", "N", 3))
    g = field_gradient(field, points, create_graph=create_graph)
    sign = 1.0 if g.output.kind == "sdf" else -1.0  # outside = level - occupancy
    values, grad = g.output.value, sign * g.gradient
    if not create_graph:
        values, grad = values.detach(), grad.detach()
    return values, grad


def pretrain_sphere(
    field: Callable[..., FieldOutput | torch.Tensor],
    parameters,
    radius: float = 0.5,
    iterations: int = 1000,
    batch_size: int = 16,
    num_points: int = 4096,
    bound: float = 1.0,
    lr: float = 1e-4,
    latent_sampler: Callable[[int], torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
) -> list[float]:
    """Fit a field to the sphere SDF ``|x| - radius`` (SDF-SRN's sphere pretraining).

    SDF-SRN pretrains 1000 iterations with random latent codes, MSE to ``|x| - 0.5`` on
    uniform points. Points are uniform in ``[-bound, bound]^3`` (drawn on the CPU with
    ``generator``, then moved to the parameters' device and dtype). ``field`` is called as
    ``field(points)`` or, with ``latent_sampler``, ``field(points, latent_sampler(B))``.

    Returns the loss of each iteration. ``radius`` and ``bound`` must be positive,
    ``batch_size`` and ``num_points`` at least 1 (no points would be a NaN loss).
    """
    parameters = list(parameters)
    if not parameters:
        raise ValueError("parameters: nothing to optimise")
    for name, value in (("radius", radius), ("bound", bound)):
        if not value > 0:
            raise ValueError(f"{name}: expected a positive value, got {value}")
    for name, value, least in (("iterations", iterations, 0), ("batch_size", batch_size, 1),
                               ("num_points", num_points, 1)):  # fmt: skip
        if value < least:
            raise ValueError(f"{name}: expected >= {least}, got {value}")
    dtype, device = parameters[0].dtype, parameters[0].device
    opt = torch.optim.Adam(parameters, lr=lr)
    losses = []
    for _ in range(iterations):
        points = torch.rand(batch_size, num_points, 3, generator=generator, dtype=dtype)
        points = points.to(device)
        points = (points * 2 - 1) * bound
        if latent_sampler is None:
            out = field(points)
        else:
            out = field(points, latent_sampler(batch_size))
        target = points.norm(dim=-1) - radius
        loss = (field_value(out) - target).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
