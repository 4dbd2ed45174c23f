"""ShapeClipper's normal loss with outlier dropout (Eq. 4)."""

from __future__ import annotations

import math

import torch

from ..checks import check_shape
from ..numerics import safe_normalize

__all__ = ["normal_loss"]


def normal_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    rotation: torch.Tensor | None = None,
    beta: float = 5.0,
    drop_fraction: float = 0.2,
    rank_by: str = "loss",
) -> torch.Tensor:
    """``beta * |R N - N_hat|_1 + (1 - cos(R N, N_hat))`` per pixel, with outlier dropout
    (ShapeClipper Eq. 4, beta 5, weight 0.01; the SSC normal loss is the same with a
    neighbour's normals and rotation).

    The paper writes ``- cos``; ``1 - cos`` differs by a constant and keeps the loss
    non-negative. Outlier dropout ranks the masked pixels of the whole batch and drops
    the ``floor(drop_fraction * n)`` with the highest loss (``rank_by="loss"``, the
    paper) or the highest ``1 - cos`` (``rank_by="angle"``, the code); the rest are
    averaged. Ranking is not differentiated.

    Args:
        pred: rendered normals ``[B, R, 3]``.
        target: off-the-shelf normals ``[B, R, 3]``.
        mask: ``[B, R]`` pixels to use (foreground); all if ``None``.
        rotation: ``[B, 3, 3]`` applied to ``target`` (``R N``), e.g. the transpose of
            the predicted world-to-camera rotation to bring camera-frame normals into
            the canonical frame.
    Zero-norm normals have cosine 0 and finite gradients; an empty mask gives 0.
    """
    dims = check_shape("pred", pred, ("B", "R", 3))
    check_shape("target", target, ("B", "R", 3), dims)
    if mask is not None:
        check_shape("mask", mask, ("B", "R"), dims)
    if not 0 <= drop_fraction < 1:
        raise ValueError(f"drop_fraction: expected in [0, 1), got {drop_fraction}")
    if rank_by not in ("loss", "angle"):
        raise ValueError(f"rank_by: expected 'loss' or 'angle', got {rank_by!r}")
    if mask is not None:  # masked-out entries are never read (no NaN reaches a gradient)
        keep = mask.bool()[..., None]
        pred, target = torch.where(keep, pred, 0.0), torch.where(keep, target, 0.0)
    if rotation is not None:
        check_shape("rotation", rotation, (dims["B"], 3, 3))
        target = target @ rotation.transpose(-1, -2)
    cos = (safe_normalize(pred) * safe_normalize(target)).sum(-1)
    loss = beta * (pred - target).abs().sum(-1) + (1 - cos)
    if mask is not None:
        keep = mask.bool()
        loss, cos = loss[keep], cos[keep]
    loss, cos = loss.reshape(-1), cos.reshape(-1)
    n = loss.numel()
    if n == 0:
        return (pred * 0).sum()
    dropped = math.floor(drop_fraction * n + 1e-9)  # 0.29 * 100 must drop 29, not 28
    if dropped:
        score = loss if rank_by == "loss" else 1 - cos
        kept = torch.argsort(score.detach())[: n - dropped]
        loss = loss[kept]
    return loss.mean()
