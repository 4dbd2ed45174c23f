"""MSU joint-occupancy losses: silhouette through the projection (Eq. 5), foreground
photometric (Eq. 6) and the 3D pretraining losses (Eq. 8)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..checks import check_shape
from ._reduce import mean_or_zero
from .regularizers import masked_l1_loss

__all__ = [
    "occupancy_photometric_loss",
    "occupancy_pretraining_losses",
    "occupancy_silhouette_loss",
    "searched_field_output",
    "searched_occupancy",
]


def searched_field_output(field, render):
    """The field's :class:`~svrecon.fields.FieldOutput` at each ray's searched point
    ``x = P^-1 u`` (``render.points`` of a surface search) with the point **detached**,
    so only the field's parameters carry gradient (one evaluation for every output the
    caller reads: occupancy, branches, albedo)."""
    from ..fields import call_field

    return call_field(field, render.points.detach())


def searched_occupancy(field, render) -> torch.Tensor:
    """``D_S(x)`` ``[B, R]`` for MSU Eq. 5: the occupancy at each ray's searched point
    (:func:`searched_field_output`).

    Through the search's implicit differentiation the hit value is held at the level
    (0.5) whatever the field does, so ``render.surface_value`` gives no gradient on hit
    rays and a wrongly covered pixel could never be uncovered (seed-implementations
    section 7.10). Evaluating at the detached point lets it.
    """
    out = searched_field_output(field, render)
    if out.occupancy is None:
        raise ValueError("field: MSU's silhouette loss needs an occupancy field, got an SDF")
    return out.occupancy


def occupancy_silhouette_loss(
    occupancy: torch.Tensor, mask: torch.Tensor, inside_value: float = 0.5
) -> torch.Tensor:
    """``mean_j |o(x_j) - o_j|`` with ``o_j = 0.5`` inside the silhouette, 0 outside
    (MSU Eq. 5).

    ``occupancy`` ``[B, R]``: the field at each pixel's searched point with the point
    detached, :func:`searched_occupancy` of a
    :class:`~svrecon.renderers.LinearBinarySearch` render (the first interior point,
    refined to the 0.5 level, or the most occupied point of a missed ray); not the
    render's ``surface_value``, which implicit differentiation holds constant on hits.
    ``mask`` ``[B, R]``. Averaged over the pixels of each image (``1 / (W H)``) and
    then over the batch.
    """
    dims = check_shape("occupancy", occupancy, ("B", "R"))
    check_shape("mask", mask, ("B", "R"), dims)
    if not 0 < inside_value <= 1:
        raise ValueError(f"inside_value: expected an occupancy in (0, 1], got {inside_value}")
    target = mask.to(occupancy.dtype) * inside_value
    return mean_or_zero((occupancy - target).abs())


def occupancy_photometric_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """``|(I_hat - I) * M|_1 / |M|`` (MSU Eq. 6): the L1 over colour channels summed,
    averaged over the foreground pixels of the whole batch.

    Shapes: ``pred``/``target`` ``[B, R, C]``, ``mask`` ``[B, R]``. Equals
    ``C * masked_l1_loss``. An empty mask gives 0 with zero gradients.
    """
    dims = check_shape("pred", pred, ("B", "R", "C"))
    check_shape("target", target, ("B", "R", dims["C"]), dims)
    check_shape("mask", mask, ("B", "R"), dims)
    return dims["C"] * masked_l1_loss(pred, target, mask)


def occupancy_pretraining_losses(
    occupancy: torch.Tensor,
    occupancy_target: torch.Tensor,
    albedo: torch.Tensor | None = None,
    albedo_target: torch.Tensor | None = None,
    class_logits: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    reduction: str = "sum",
    albedo_mask: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """MSU's 3D pretraining objective ``L_S + L_A + L_C`` (Eq. 8), term by term.

    - ``occupancy``: MSE of occupancy ``[B, N]`` against ``occupancy_target`` ``[B, N]``.
    - ``albedo``: MSE of albedo ``[B, N, 3]`` against ``albedo_target`` (the voxel
      colours at the same points), over the points of ``albedo_mask`` ``[B, N]`` bool
      (``None``: all ``K``). An empty voxel has no colour (the coloured voxel MSU's
      ``E'`` reads is 0 there), so MSU passes the occupied points.
    - ``category``: cross-entropy of ``class_logits`` ``[B, C]`` against ``labels`` ``[B]``.

    ``reduction="sum"``: the paper's sums over the points of a shape (squared error
    summed over the colour channels too), averaged over the batch; ``"mean"``: means
    over points (and channels), so the weights do not depend on ``K``. The
    cross-entropy is a mean over the batch either way. Terms whose inputs are ``None``
    are left out of the returned dict; a mask with no point gives an albedo term of 0
    with zero gradients.

    Example:
        >>> occ = torch.tensor([[0.8, 0.1]])
        >>> terms = occupancy_pretraining_losses(occ, torch.tensor([[1.0, 0.0]]))
        >>> round(terms["occupancy"].item(), 4)  # 0.2^2 + 0.1^2
        0.05
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction: expected 'sum' or 'mean', got {reduction!r}")

    def squared(pred, target):
        error = (pred - target.to(pred.dtype)) ** 2
        return mean_or_zero(error) if reduction == "mean" else mean_or_zero(error.flatten(1).sum(1))

    dims = check_shape("occupancy", occupancy, ("B", "N"))
    check_shape("occupancy_target", occupancy_target, ("B", "N"), dims)
    out = {"occupancy": squared(occupancy, occupancy_target)}
    if (albedo is None) != (albedo_target is None):
        raise ValueError("albedo, albedo_target: pass both or neither")
    if albedo is not None:
        check_shape("albedo", albedo, ("B", "N", 3), dims)
        check_shape("albedo_target", albedo_target, ("B", "N", 3), dims)
        if albedo_mask is None:
            out["albedo"] = squared(albedo, albedo_target)
        else:
            check_shape("albedo_mask", albedo_mask, ("B", "N"), dims)
            if albedo_mask.dtype != torch.bool:
                raise ValueError(f"albedo_mask: expected a bool tensor, got {albedo_mask.dtype}")
            # where(), not a product: a non-finite colour outside the mask is never read
            difference = albedo - albedo_target.to(albedo.dtype)
            error = torch.where(albedo_mask[..., None], difference, 0.0) ** 2
            if reduction == "sum":
                out["albedo"] = mean_or_zero(error.flatten(1).sum(1))
            else:
                count = albedo_mask.sum() * 3
                out["albedo"] = error.sum() / count.clamp_min(1).to(error.dtype)
    if (class_logits is None) != (labels is None):
        raise ValueError("class_logits, labels: pass both or neither")
    if class_logits is not None:
        check_shape("class_logits", class_logits, ("B", "C"), dims)
        check_shape("labels", labels, ("B",), dims)
        out["category"] = F.cross_entropy(class_logits, labels.long())
    return out
