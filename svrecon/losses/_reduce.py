"""Weighted, masked means shared by the losses."""

from __future__ import annotations

import torch


def weighted_mean(
    loss: torch.Tensor,
    weight: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """``sum(w * l) / sum(w)`` over the entries selected by ``mask`` (all if ``None``).

    ``weight`` and ``mask`` broadcast against ``loss``. An empty selection (or zero
    total weight) gives ``0`` that still depends on ``loss``, so gradients are zero,
    never NaN (the SDF-SRN code's behaviour).
    """
    w = torch.ones_like(loss) if weight is None else weight.to(loss.dtype).expand_as(loss)
    if mask is not None:
        w = w * mask.to(loss.dtype).expand_as(loss)
    total = w.sum()
    if total <= 0:
        return (loss * 0).sum()
    return (w * loss).sum() / total
