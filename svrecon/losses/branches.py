"""Regularisers of the branches of BAE-NET style branched occupancy decoders (svrecon's
additions; neither BAE-NET nor MSU states one): load balancing, and separating parts
of different albedo."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..checks import as_float, check_shape

__all__ = ["branch_balance_loss", "branch_colour_separation_loss"]


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


def branch_colour_separation_loss(
    logits: torch.Tensor,
    albedo: torch.Tensor,
    mask: torch.Tensor,
    *,
    scale: float = 0.1,
    num_points: int | None = 256,
) -> torch.Tensor:
    r"""Points of different albedo should fall in different branches: the probability
    that two occupied points of a shape share a branch, weighted by how much their
    albedos differ (cannot-link pairs only; points of one colour are left to the
    geometry).

    .. math::

        \mathcal{L} = \frac{\sum_{i \ne j} d_{ij} \, p_i^\top p_j}{\sum_{i \ne j} d_{ij}},
        \qquad d_{ij} = 1 - e^{-\lVert c_i - c_j \rVert / s}, \qquad
        p_i = \operatorname{softmax}(o_i)

    over the pairs of masked points of each item, then the mean over items. MSU (Sec.
    3.1) selects each point's albedo by the argmax branch so that "different parts of
    an object often differ in shape and/or albedo, and thus both shall guide the
    segmentation", but the argmax carries no gradient to the shape decoder; this term
    lets the pre-training albedo of Eq. 8 reach the branches. ``d`` follows the
    exponential colour affinity of MSU's albedo local constancy. An item whose masked
    points share one albedo (or has fewer than two) contributes 0.

    Args:
        logits: ``[B, N, K]`` branch logits.
        albedo: ``[B, N, 3]`` the points' true albedo (any colour space; ``scale`` in
            its units).
        mask: ``[B, N]`` bool, the points that count (occupied).
        scale: ``s``: albedo distance at which a pair counts ``1 - 1/e``.
        num_points: pairs are formed among the first ``num_points`` masked points of
            each item (in their order: pass them shuffled), ``None`` for all of them
            (``N^2`` pairs).

    Returns:
        A scalar in ``[0, 1]``.

    Example:
        >>> logits = torch.tensor([[[9.0, 0.0], [9.0, 0.0], [0.0, 9.0]]])  # branches 0 0 1
        >>> albedo = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]])
        >>> inside = torch.ones(1, 3, dtype=torch.bool)  # red shares branch 0 with a blue
        >>> round(branch_colour_separation_loss(logits, albedo, inside).item(), 3)  # 2 of 4
        0.5
    """
    dims = check_shape("logits", logits, ("B", "N", "K"))
    check_shape("albedo", albedo, (dims["B"], dims["N"], 3))
    check_shape("mask", mask, (dims["B"], dims["N"]))
    if mask.dtype != torch.bool:
        raise ValueError(f"mask: expected a bool tensor, got {mask.dtype}")
    if not scale > 0:
        raise ValueError(f"scale: expected > 0, got {scale}")
    if num_points is not None and num_points < 2:
        raise ValueError(f"num_points: expected >= 2 or None, got {num_points}")
    logits, albedo = as_float("logits", logits), as_float("albedo", albedo).to(logits.dtype)
    if num_points is not None and num_points < dims["N"]:
        # the first num_points masked points of each item, in their order
        order = torch.argsort((~mask).to(torch.uint8), dim=1, stable=True)[:, :num_points]
        mask = mask.gather(1, order)
        logits = logits.gather(1, order[..., None].expand(-1, -1, dims["K"]))
        albedo = albedo.gather(1, order[..., None].expand(-1, -1, 3))
    probabilities = torch.softmax(logits, -1)
    same_branch = probabilities @ probabilities.transpose(1, 2)  # [B, n, n]
    # |c_i - c_j|, clamped away from sqrt's infinite slope at 0
    squared = (albedo[:, :, None] - albedo[:, None]).square().sum(-1)
    differ = 1 - torch.exp(-squared.clamp_min(1e-30).sqrt() / scale)
    pairs = mask[:, :, None] & mask[:, None]
    pairs = pairs & ~torch.eye(pairs.shape[1], dtype=torch.bool, device=pairs.device)
    weights = torch.where(pairs, differ, 0.0)
    total = weights.sum((1, 2))
    loss = (weights * same_branch).sum((1, 2)) / total.clamp_min(1e-12)
    return loss.mean() if loss.numel() else logits.sum() * 0
