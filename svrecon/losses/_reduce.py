"""Weighted, masked means shared by the losses."""

from __future__ import annotations

import torch


def mean_or_zero(loss: torch.Tensor) -> torch.Tensor:
    """The mean of ``loss``; 0 with zero gradients when it has no entries (never NaN),
    without a host synchronisation (the count is the tensor's shape)."""
    return loss.sum() / max(loss.numel(), 1)


def weighted_mean(
    loss: torch.Tensor,
    weight: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """``sum(w * l) / sum(w)`` over the entries selected by ``mask`` (all if ``None``).

    ``weight`` and ``mask`` broadcast against ``loss``. An empty selection (or zero
    total weight) gives ``0`` that still depends on ``loss``, so gradients are zero,
    never NaN (the SDF-SRN code's behaviour). Entries outside the selection are never
    read: a NaN there does not reach the result.
    """
    w = torch.ones_like(loss) if weight is None else weight.to(loss.dtype).expand_as(loss)
    if mask is not None:
        w = torch.where(mask.expand_as(loss).bool(), w, torch.zeros_like(w))
    selected = torch.where(w > 0, loss, torch.zeros_like(loss))
    w = torch.where(w > 0, w, torch.zeros_like(w))
    total = w.sum()
    if total <= 0:
        return selected.sum() * 0
    return (w * selected).sum() / total
