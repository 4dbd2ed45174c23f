"""Branch load balancing for BAE-NET style branched occupancy decoders (svrecon's
addition; neither BAE-NET nor MSU has it)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..checks import as_float, check_shape

__all__ = ["branch_balance_loss"]


def branch_balance_loss(
    logits: torch.Tensor, mask: torch.Tensor, per_item: bool = True
) -> torch.Tensor:
    """Switch-Transformer load balancing (Fedus et al. 2022, Eq. 4) over the branches of
    a branched occupancy decoder, on the points inside each shape.

    .. math::

        \\mathcal{L} = K \\sum_{k=1}^{K} f_k P_k, \\qquad
        f_k = \\frac{1}{|M|} \\sum_{i \\in M} [\\arg\\max_j o_{ij} = k], \\qquad
        P_k = \\frac{1}{|M|} \\sum_{i \\in M} \\operatorname{softmax}(o_i)_k

    over the masked points ``M`` of each item (``per_item``; the loss is then the mean
    over items) or of the whole batch. It is 1 when the branches share the points
    evenly and ``K`` when one branch takes them all. Under the max pooling of a
    branched decoder only the winning branch gets a gradient at a point, so a branch
    that wins nowhere early never learns (a "dead" branch); this term's gradient flows
    through the softmax into every branch. ``f_k`` carries no gradient.

    Args:
        logits: ``[B, N, K]`` branch logits (before the sigmoid).
        mask: ``[B, N]`` bool, the points that count (inside the shape). An item with no
            masked point contributes 0 (with ``per_item``); so does an empty batch.
        per_item: balance within each item (a shape split into parts) or over the batch.

    Returns:
        A scalar.

    Example:
        >>> logits = torch.tensor([[[0.0, 0.0], [1.0986123, 0.0]]])  # softmax 1/2 1/2, 3/4 1/4
        >>> inside = torch.ones(1, 2, dtype=torch.bool)  # branch 0 wins both points
        >>> round(branch_balance_loss(logits, inside).item(), 4)  # 2 * (1 * 5/8 + 0 * 3/8)
        1.25
    """
    dims = check_shape("logits", logits, ("B", "N", "K"))
    check_shape("mask", mask, (dims["B"], dims["N"]))
    if mask.dtype != torch.bool:
        raise ValueError(f"mask: expected a bool tensor, got {mask.dtype}")
    logits = as_float("logits", logits)
    k = dims["K"]
    inside = mask[..., None].to(logits.dtype)
    probabilities = torch.softmax(logits, -1) * inside
    winners = F.one_hot(logits.argmax(-1), k).to(logits.dtype) * inside
    reduce = (1,) if per_item else (0, 1)
    count = inside.sum(reduce).clamp_min(1)  # [B, 1] or [1]
    share, mean_probability = winners.sum(reduce) / count, probabilities.sum(reduce) / count
    loss = k * (share * mean_probability).sum(-1)
    return loss.mean() if loss.numel() else logits.sum() * 0
