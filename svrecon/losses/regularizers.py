"""Shared regularisers and reconstruction losses: eikonal, photometric, symmetry, sphere."""

from __future__ import annotations

import torch

from ..checks import as_float, check_shape
from ..fields.gradients import field_value
from ..numerics import safe_norm
from ._reduce import mean_or_zero, weighted_mean

__all__ = ["eikonal_loss", "masked_l1_loss", "masked_mse_loss", "sphere_sdf_loss", "symmetry_loss"]


def eikonal_loss(gradients: torch.Tensor) -> torch.Tensor:
    """``mean((|grad f| - 1)^2)`` over points ``[B, N, 3]`` (IGR; SDF-SRN weight 0.01 on
    ShapeNet and 1 on Pascal3D, Cat3D 0.01, ShapeClipper 0.03, VolSDF 0.1).

    Take ``gradients`` from :func:`svrecon.fields.sdf_gradient` with ``create_graph=True``.
    A zero gradient gives ``(0 - 1)^2`` with a finite (zero) derivative; no points
    (``N = 0``) give 0 with zero gradients; a NaN gradient gives NaN.
    """
    check_shape("gradients", gradients, ("B", "N", 3))
    return weighted_mean((safe_norm(gradients) - 1) ** 2)


def _expand_mask(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    m = mask.bool()
    while m.dim() < like.dim():
        m = m[..., None]
    return m.expand_as(like)


def _photometric(error_fn, pred, target, mask):
    """``error_fn(pred, target)`` averaged over the masked entries. Masked-out entries
    are replaced before the error is taken, so a NaN there reaches neither the value
    nor the gradient."""
    if mask is None:
        return mean_or_zero(error_fn(pred, target))
    m = _expand_mask(mask, pred)
    zero = torch.zeros((), dtype=pred.dtype, device=pred.device)
    error = error_fn(torch.where(m, pred, zero), torch.where(m, target, zero))
    return weighted_mean(error, mask=m)


def masked_l1_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean ``|pred - target|`` over the entries where ``mask`` is set (MSU Eq. 6, on the
    foreground). Shapes: ``pred``/``target`` ``[B, R, C]`` (or any ``[B, ...]``), ``mask``
    a prefix of that shape (``[B, R]``), broadcast over the trailing channels. An empty
    mask gives 0 with zero gradients.
    """
    _check_pair(pred, target, mask)
    return _photometric(lambda p, t: (p - t).abs(), pred, target, mask)


def masked_mse_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean ``(pred - target)^2`` over masked entries (SDF-SRN, Cat3D and ShapeClipper
    render loss, weight 1; SDF-SRN uses all sampled rays). Shapes as
    :func:`masked_l1_loss`."""
    _check_pair(pred, target, mask)
    return _photometric(lambda p, t: (p - t) ** 2, pred, target, mask)


def _check_pair(pred, target, mask):
    if pred.shape != target.shape:
        raise ValueError(f"target: expected shape {list(pred.shape)}, got {list(target.shape)}")
    if mask is not None and tuple(mask.shape) != tuple(pred.shape[: mask.dim()]):
        raise ValueError(f"mask: expected a prefix of {list(pred.shape)}, got {list(mask.shape)}")


def symmetry_loss(field, points: torch.Tensor, axis: int = 0) -> torch.Tensor:
    """Mean ``|f(x) - f(mirror(x))|`` for points ``[B, N, 3]``, mirroring coordinate ``axis``
    (a soft alternative to ShapeClipper's architectural symmetry ``x -> (|x|, y, z)``).
    ``field`` maps points to a ``FieldOutput`` or values ``[B, N]``; no points give 0.
    """
    check_shape("points", points, ("B", "N", 3))
    if axis not in (0, 1, 2):
        raise ValueError(f"axis: expected 0, 1 or 2, got {axis!r}")
    mirrored = points.clone()
    mirrored[..., axis] = -mirrored[..., axis]
    return mean_or_zero((field_value(field(points)) - field_value(field(mirrored))).abs())


def sphere_sdf_loss(sdf: torch.Tensor, points: torch.Tensor, radius: float = 0.5) -> torch.Tensor:
    """Sphere pretraining (SDF-SRN): ``mean((f(x) - (|x| - radius))^2)``.

    Shapes: ``sdf`` ``[B, N]`` at ``points`` ``[B, N, 3]``; ``radius > 0``.
    """
    if not radius > 0:
        raise ValueError(f"radius: expected a positive sphere radius, got {radius}")
    sdf, points = as_float("sdf", sdf), as_float("points", points)
    dims = check_shape("points", points, ("B", "N", 3))
    check_shape("sdf", sdf, (dims["B"], dims["N"]))
    return mean_or_zero((sdf - (points.norm(dim=-1) - radius)) ** 2)
