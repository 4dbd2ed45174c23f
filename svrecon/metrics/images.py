"""Image scores: PSNR of a re-rendered input, and the scale-invariant errors of an
intrinsic decomposition (Grosse et al., ICCV 2009) against true albedo and shading."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..checks import as_float, check_shape, refuse_items

__all__ = ["local_scale_invariant_mse", "psnr", "scale_invariant_mse"]


def _images(pred, target, mask):
    pred, target = as_float("pred", pred), as_float("target", target)
    dims = check_shape("pred", pred, ("B", "C", "H", "W"))
    check_shape("target", target, ("B", "C", "H", "W"), dims)
    if mask is None:
        mask = torch.ones(dims["B"], dims["H"], dims["W"], dtype=torch.bool, device=pred.device)
    check_shape("mask", mask, ("B", "H", "W"), dims)
    m = mask.bool()[:, None].expand_as(pred)
    zero = torch.zeros((), dtype=pred.dtype, device=pred.device)
    # masked-out values are never read
    return torch.where(m, pred, zero), torch.where(m, target.to(pred.dtype), zero), m


def _refuse_empty(m: torch.Tensor, score: str) -> torch.Tensor:
    """The number of scored values per item; an item with none is refused by name."""
    count = m.flatten(1).sum(1)
    refuse_items("mask", count == 0, f"select no pixel; {score} is undefined there")
    return count


def psnr(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    max_value: float = 1.0,
) -> torch.Tensor:
    """Peak signal-to-noise ratio ``10 log10(max^2 / MSE)`` per item ``[B]`` (dB).

    Shapes: ``pred``, ``target`` ``[B, C, H, W]``, ``mask`` ``[B, H, W]`` (the pixels
    scored, e.g. the foreground; all if ``None``). Identical images give ``inf`` (as
    scikit-image); an item with an empty mask is refused (``ValueError``: no pixel to
    score), so score only the items that have pixels.

    Example::

        >>> psnr(torch.full((1, 3, 4, 4), 0.6), torch.full((1, 3, 4, 4), 0.5))
        tensor([20.0000])
    """
    p, t, m = _images(pred, target, mask)
    count = _refuse_empty(m, "PSNR")
    mse = ((p - t) ** 2).flatten(1).sum(1) / count
    return 10 * torch.log10(max_value**2 / mse)


def scale_invariant_mse(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """``min_a mean |a_c pred_c - target_c|^2`` per item ``[B]``: the MSE after the best
    scale of each channel, ``a_c = <pred_c, target_c> / <pred_c, pred_c>`` over the
    masked pixels (Grosse et al. 2009, per channel). An intrinsic decomposition is
    defined up to such a scale (albedo times shading), so this is how albedo and
    shading estimates are compared with the truth.

    Shapes as :func:`psnr`. A channel whose prediction is 0 gets ``a_c = 0``; an item
    with an empty mask is refused (``ValueError``).
    """
    p, t, m = _images(pred, target, mask)
    alpha = _best_scale(p, t, dims=(2, 3))
    count = _refuse_empty(m, "the scale-invariant MSE")
    return ((alpha * p - t) ** 2 * m).flatten(1).sum(1) / count


def _best_scale(p: torch.Tensor, t: torch.Tensor, dims) -> torch.Tensor:
    num, den = (p * t).sum(dims, keepdim=True), (p * p).sum(dims, keepdim=True)
    return torch.where(den > 0, num / torch.where(den > 0, den, 1.0), 0.0)


def local_scale_invariant_mse(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    window: int = 20,
    stride: int = 10,
) -> torch.Tensor:
    """Grosse et al.'s LMSE per item ``[B]``: the scale-invariant squared error summed
    over ``window x window`` patches every ``stride`` pixels (each patch with its own
    best scale per channel), divided by the same sum for a zero prediction, so 0 is
    perfect and 1 is as bad as predicting nothing.

    Shapes as :func:`psnr`; the image must be at least ``window`` on each side. An item
    whose masked target is all zero (an empty mask included) is refused
    (``ValueError``: the normaliser is 0).
    """
    p, t, m = _images(pred, target, mask)
    if window < 1 or stride < 1:
        raise ValueError(f"window, stride: expected >= 1, got {window} and {stride}")
    if min(p.shape[-2:]) < window:
        raise ValueError(f"pred: expected at least {window} pixels a side, got {list(p.shape)}")
    b, c = p.shape[:2]

    def patches(x):  # [B, C, window * window, L]
        return F.unfold(x.flatten(0, 1)[:, None], window, stride=stride).view(b, c, window**2, -1)

    pp, tt = patches(p), patches(t)
    alpha = _best_scale(pp, tt, dims=2)
    error = ((alpha * pp - tt) ** 2).flatten(1).sum(1)
    normaliser = (tt**2).flatten(1).sum(1)
    refuse_items(
        "target", normaliser == 0, "are zero on every masked pixel; LMSE is undefined there"
    )
    return error / normaliser
