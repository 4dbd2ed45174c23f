"""Part segmentation scores: the confusion between predicted branches and true parts,
the part IoU after the best one-to-one branch-to-part assignment (Hungarian, as
BAE-NET and MSU evaluate their branches), and a height-band baseline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..checks import check_shape, refuse_items

__all__ = ["PartIoUResult", "height_band_labels", "part_iou", "segmentation_confusion"]


def segmentation_confusion(
    pred: torch.Tensor,
    gt: torch.Tensor,
    num_pred: int,
    num_gt: int,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Counts ``C[b, k, p]`` of the elements labelled branch ``k`` and part ``p``.

    Shapes: ``pred``, ``gt`` (integer labels) and ``valid`` ``[B, ...]`` (elements to
    count, e.g. the pixels inside both masks; all if ``None``) -> ``[B, num_pred,
    num_gt]`` int64. Labels must lie in ``[0, num_pred)`` and ``[0, num_gt)`` where
    valid (a ``ValueError`` names the argument otherwise).

    Example::

        >>> pred, gt = torch.tensor([[0, 0, 1]]), torch.tensor([[1, 1, 0]])
        >>> segmentation_confusion(pred, gt, 2, 2)
        tensor([[[0, 2],
                 [1, 0]]])
    """
    if pred.shape != gt.shape or pred.dim() < 1:
        raise ValueError(
            f"pred, gt: expected equal shapes [B, ...], got {list(pred.shape)} and {list(gt.shape)}"
        )
    for name, labels in (("pred", pred), ("gt", gt)):
        if labels.is_floating_point() or labels.is_complex():
            raise ValueError(f"{name}: expected integer labels, got dtype {labels.dtype}")
    if num_pred < 1 or num_gt < 1:
        raise ValueError(f"num_pred, num_gt: expected >= 1, got {num_pred} and {num_gt}")
    b = pred.shape[0]
    if valid is None:
        valid = torch.ones_like(pred, dtype=torch.bool)
    check_shape("valid", valid, tuple(pred.shape))
    valid = valid.bool().flatten(1)
    p, g = pred.flatten(1).long(), gt.flatten(1).long()
    for name, labels, count in (("pred", p, num_pred), ("gt", g, num_gt)):
        outside = valid & ((labels < 0) | (labels >= count))
        if outside.any():
            raise ValueError(f"{name}: labels must lie in [0, {count}) where valid")
    item = torch.arange(b, device=p.device)[:, None].expand_as(p)
    flat = (item * num_pred + p) * num_gt + g
    counts = torch.bincount(flat[valid], minlength=b * num_pred * num_gt)
    return counts.view(b, num_pred, num_gt)


@dataclass
class PartIoUResult:
    """Part IoU after the best assignment.

    Attributes:
        iou: ``[B]`` the mean over the parts present in ``gt`` of the IoU with the
            branch assigned to them (0 for a part left without a branch when there
            are fewer branches than parts). An item with no part present (nothing
            counted) is refused by :func:`part_iou`.
        part_iou: ``[B, P]`` each part's IoU; NaN marks a part absent from the item
            (a table entry with nothing to score, not a value: ``iou`` skips it).
        assignment: ``[B, P]`` the branch assigned to each part (-1: none).
    """

    iou: torch.Tensor
    part_iou: torch.Tensor
    assignment: torch.Tensor


def part_iou(confusion: torch.Tensor) -> PartIoUResult:
    """Part IoU from :func:`segmentation_confusion` counts ``[B, K, P]``.

    ``IoU(k, p) = C[k, p] / (|pred = k| + |gt = p| - C[k, p])``; each item's branches
    and parts are paired one to one so that the summed IoU over the present parts is
    largest (``scipy.optimize.linear_sum_assignment``). For one assignment over a
    whole category (branches that mean the same part in every shape, as BAE-NET
    reports), sum the confusions of its items first: ``confusion.sum(0, keepdim=True)``.
    """
    check_shape("confusion", confusion, ("B", "K", "P"))
    from scipy.optimize import linear_sum_assignment  # deferred: slow to import

    c = confusion.detach().double().cpu()
    if (c < 0).any() or not torch.isfinite(c).all():
        raise ValueError("confusion: expected counts (finite, >= 0)")
    refuse_items(
        "confusion", c.flatten(1).sum(1) == 0, "count no point; part IoU is undefined there"
    )
    union = c.sum(2, keepdim=True) + c.sum(1, keepdim=True) - c
    ious = torch.where(union > 0, c / union.clamp_min(1), 0.0)
    present = c.sum(1) > 0  # [B, P]
    b, k, p = c.shape
    assignment = torch.full((b, p), -1, dtype=torch.long)
    per_part = torch.full((b, p), torch.nan, dtype=torch.float64)
    for i in range(b):
        parts = torch.nonzero(present[i]).flatten()
        matrix = ious[i][:, parts].numpy()
        rows, cols = linear_sum_assignment(matrix, maximize=True)
        per_part[i, parts] = 0.0
        assignment[i, parts[cols]] = torch.as_tensor(rows, dtype=torch.long)
        per_part[i, parts[cols]] = torch.as_tensor(matrix[rows, cols])
    mean = torch.where(present, per_part, 0.0).sum(1) / present.sum(1)
    device = confusion.device
    return PartIoUResult(mean.to(device), per_part.to(device), assignment.to(device))


def height_band_labels(
    heights: torch.Tensor, num_bands: int, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """The baseline segmentation: label each element by which of ``num_bands`` equal
    bands of height it falls in, between the lowest and highest valid element of its
    item (band 0 at the bottom).

    Shapes: ``heights`` ``[B, ...]`` (e.g. the world y of each surface point), ``valid``
    ``[B, ...]`` -> labels ``[B, ...]`` int64 (0 where not valid). An item whose valid
    heights are all equal is one band; non-finite valid heights are refused.
    """
    if num_bands < 1:
        raise ValueError(f"num_bands: expected >= 1, got {num_bands}")
    if heights.dim() < 1:
        raise ValueError(f"heights: expected shape [B, ...], got {list(heights.shape)}")
    if valid is None:
        valid = torch.ones_like(heights, dtype=torch.bool)
    check_shape("valid", valid, tuple(heights.shape))
    h = heights.flatten(1).double()
    v = valid.bool().flatten(1)
    if not torch.isfinite(h[v]).all():  # a NaN would floor to a garbage label
        raise ValueError("heights: NaN or infinite values where valid")
    low = torch.where(v, h, np.inf).amin(1, keepdim=True)
    high = torch.where(v, h, -np.inf).amax(1, keepdim=True)
    span = torch.where(high > low, high - low, 1.0)
    bands = ((h - low) / span * num_bands).floor().clamp(0, num_bands - 1)
    return torch.where(v, bands, 0).long().view(heights.shape)
