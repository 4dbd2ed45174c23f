"""Spatial gradients of fields (normals, eikonal terms) and sphere pretraining."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .._checks import check_shape
from .._math import gradient_wrt
from .output import FieldOutput

__all__ = ["field_value", "pretrain_sphere", "sdf_gradient"]


def field_value(output: FieldOutput | torch.Tensor) -> torch.Tensor:
    """The scalar values ``[B, N]`` of a field's output (a ``FieldOutput`` or a tensor)."""
    return output.value if isinstance(output, FieldOutput) else output


def sdf_gradient(
    field: Callable[[torch.Tensor], FieldOutput | torch.Tensor],
    points: torch.Tensor,
    create_graph: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Value and spatial gradient of a field at ``points``.

    Args:
        field: maps points ``[B, N, 3]`` to a ``FieldOutput`` or values ``[B, N]``.
        points: ``[B, N, 3]``.
        create_graph: keep the graph of the gradient, so that a loss on it (eikonal,
            normal loss) trains the field; ``False`` for normals that are only looked at.

    Returns:
        ``(values [B, N], gradient [B, N, 3])``. Only ``torch.autograd.grad`` with
        respect to the points is used, so no parameter's ``.grad`` is touched. Works
        under ``torch.no_grad()``. A field that does not depend on the points (a
        constant, or a detached output) has gradient zero, with no graph behind it.
    """
    check_shape("points", points, ("B", "N", 3))
    with torch.enable_grad():
        x = points if points.requires_grad else points.detach().requires_grad_(True)
        values = field_value(field(x))
        check_shape("field(points)", values, (points.shape[0], points.shape[1]))
        grad = gradient_wrt(values, x, create_graph)
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

    Returns the loss of each iteration.
    """
    parameters = list(parameters)
    if not parameters:
        raise ValueError("parameters: nothing to optimise")
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
