"""MSU's local feature consistency (Eq. 7): the principal direction of the image
features at projected part-boundary points should agree across images of a category."""

from __future__ import annotations

import torch

from ..checks import check_shape

__all__ = ["feature_consistency_loss", "largest_eigenvector"]


def largest_eigenvector(
    features: torch.Tensor, valid: torch.Tensor | None = None, rel_gap: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit eigenvector of the largest eigenvalue of ``(F - mu)^T (F - mu)``, per item.

    Shapes: ``features`` ``[B, q, D]``, ``valid`` ``[B, q]`` (points to use; all if
    ``None``). Returns ``(vectors [B, D], defined [B])``. The direction is undefined when
    the top eigenvalue is zero or repeated (relative gap below ``rel_gap``, e.g. fewer
    than two distinct points); such items get a zero vector, ``defined=False`` and no
    gradient. The sign of an eigenvector is arbitrary.
    """
    dims = check_shape("features", features, ("B", "q", "D"))
    if valid is None:
        valid = features.new_ones(dims["B"], dims["q"], dtype=torch.bool)
    check_shape("valid", valid, ("B", "q"), dims)
    w = valid.to(features.dtype)[..., None]
    count = w.sum(1, keepdim=True).clamp_min(1)
    centred = (features - (features * w).sum(1, keepdim=True) / count) * w
    cov = centred.transpose(1, 2) @ centred
    with torch.no_grad():
        values = torch.linalg.eigvalsh(cov)
        top = values[:, -1]
        second = values[:, -2] if dims["D"] > 1 else torch.zeros_like(top)
        scale = values.abs().amax(-1)
        defined = (top > 0) & (top - second > rel_gap * scale)
    # Degenerate items are swapped for a well-separated matrix before eigh, so its
    # backward (which divides by eigenvalue gaps) never sees a repeated eigenvalue.
    spread = torch.diag(torch.arange(1, dims["D"] + 1, dtype=cov.dtype, device=cov.device))
    safe = torch.where(defined[:, None, None], cov, spread)
    vectors = torch.linalg.eigh(safe).eigenvectors[..., -1]
    return torch.where(defined[:, None], vectors, 0.0), defined


def feature_consistency_loss(
    features: torch.Tensor,
    labels: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """``mean_{(i, j)} |v_i - v_j|_1`` over pairs of images of the same category
    (MSU Eq. 7), with ``v`` the :func:`largest_eigenvector` of each image's local
    features at its boundary points.

    The eigenvector's sign is arbitrary, so each pair uses
    ``min(|v_i - v_j|_1, |v_i + v_j|_1)``: the loss is invariant to either sign.
    Shapes: ``features`` ``[B, q, D]`` (features sampled at the projected boundary
    points, e.g. with :func:`svrecon.encoders.sample_features`), ``labels`` ``[B]``
    (all one category if ``None``), ``valid`` ``[B, q]``. Pairs where either direction
    is undefined are skipped; no pair gives 0 with zero gradients.
    """
    vectors, defined = largest_eigenvector(features, valid)
    b = features.shape[0]
    if labels is None:
        labels = torch.zeros(b, dtype=torch.long, device=features.device)
    check_shape("labels", labels, (b,))
    i, j = torch.triu_indices(b, b, offset=1, device=features.device)
    keep = (labels[i] == labels[j]) & defined[i] & defined[j]
    i, j = i[keep], j[keep]
    if i.numel() == 0:
        return (features * 0).sum()
    same = (vectors[i] - vectors[j]).abs().sum(-1)
    flipped = (vectors[i] + vectors[j]).abs().sum(-1)
    return torch.minimum(same, flipped).mean()
