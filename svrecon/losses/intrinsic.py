"""MSU's intrinsic-image regularisers: albedo local constancy and batch-wise white
shading (Sec. 3.3, after Sengupta et al. and Meka et al.)."""

from __future__ import annotations

import torch

from ..checks import as_float, check_shape
from ..numerics import safe_norm, safe_normalize
from ._reduce import weighted_mean

__all__ = ["albedo_constancy_loss", "white_shading_loss"]


def albedo_constancy_loss(
    albedo: torch.Tensor,
    image: torch.Tensor,
    mask: torch.Tensor | None = None,
    alpha: float = 15.0,
    p: float = 0.8,
    chromaticity: str = "sum",
    reduction: str = "sum",
) -> torch.Tensor:
    """MSU's ``sum_j sum_{t in N_j} w(j, t) |A_j - A_t|_2^p`` over 4-neighbours, with
    chromaticity weights ``w = exp(-alpha |c_j - c_t|)`` (alpha 15, p 0.8).

    Args:
        albedo, image: ``[B, C, H, W]`` (``image`` in ``[0, 1]``).
        mask: ``[B, H, W]``; a pair needs both pixels in the mask.
        chromaticity: ``"sum"`` (``c = rgb / sum(rgb)``, the paper's) or ``"l2"``
            (``c = rgb / |rgb|_2``).
        reduction: ``"sum"`` (the paper: every pixel with each of its 4 neighbours, so
            each adjacent pair counts twice), averaged over the batch; or ``"mean"``
            (the mean over pairs, independent of the image size).

    A zero albedo difference has a zero (sub)gradient; black pixels have chromaticity 0.
    """
    if chromaticity not in ("sum", "l2"):
        raise ValueError(f"chromaticity: expected 'sum' or 'l2', got {chromaticity!r}")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction: expected 'sum' or 'mean', got {reduction!r}")
    dims = check_shape("albedo", albedo, ("B", "C", "H", "W"))
    check_shape("image", image, ("B", "C", "H", "W"), dims)
    if mask is None:
        mask = albedo.new_ones(dims["B"], dims["H"], dims["W"], dtype=torch.bool)
    check_shape("mask", mask, ("B", "H", "W"), dims)
    m = mask.bool()
    # a masked-out pixel is never read: a NaN there reaches no gradient either (an
    # unselected pair's zero gradient times a NaN derivative would be NaN)
    a = torch.where(m[..., None], albedo.movedim(1, -1), 0.0)
    rgb = torch.where(m[..., None], image.movedim(1, -1), 0.0)
    if chromaticity == "l2":
        c = safe_normalize(rgb)
    else:
        total = rgb.sum(-1, keepdim=True)
        c = torch.where(total > 0, rgb / torch.where(total > 0, total, 1.0), 0.0)
    # Right and down neighbours: [B, H, W, C] sliced along W, then along H.
    pairs = [
        ((slice(None), slice(None), slice(1, None)), (slice(None), slice(None), slice(None, -1))),
        ((slice(None), slice(1, None)), (slice(None), slice(None, -1))),
    ]
    terms, selected = [], []
    for there, here in pairs:
        diff = safe_norm(a[there] - a[here])
        powered = torch.where(diff > 0, diff.clamp_min(1e-30) ** p, 0.0)
        weight = torch.exp(-alpha * safe_norm(c[there] - c[here]))
        terms.append((weight * powered).flatten(1))
        selected.append((m[there] & m[here]).flatten(1))
    terms, selected = torch.cat(terms, 1), torch.cat(selected, 1)
    if reduction == "mean":
        return weighted_mean(terms, mask=selected)
    kept = torch.where(selected, terms, torch.zeros_like(terms))
    return 2 * kept.sum(1).mean()


def white_shading_loss(
    shading: torch.Tensor, mask: torch.Tensor, target: float = 1.0
) -> torch.Tensor:
    """Batch-wise white shading ``sum_c |mean_j C_j^(c) - target|`` (MSU, target 1):
    the mean diffuse shading of each channel over all foreground pixels of the batch.

    Shapes: ``shading`` ``[B, ..., C]`` (channel last, e.g. per-ray
    :func:`~svrecon.renderers.sh_shading` output ``[B, R, 3]``), ``mask`` ``[B, ...]``.
    An empty mask gives 0 with zero gradients.
    """
    if shading.dim() < 2 or tuple(mask.shape) != tuple(shading.shape[:-1]):
        raise ValueError(
            f"mask: expected shape {list(shading.shape[:-1])} (shading without its channel "
            f"axis), got {list(mask.shape)}"
        )
    shading = as_float("shading", shading)
    m = mask.bool()
    if not m.any():
        return (shading * 0).sum()
    return (shading[m].mean(0) - target).abs().sum()
