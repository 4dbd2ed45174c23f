"""Viewpoint losses: Cat3D's cycle consistency (Eq. 8) and ShapeClipper's camera priors.

Viewpoints are trigonometric: ``[B, P, 2]`` pairs ``(cos a, sin a)`` per angle (the
:mod:`svrecon.cameras.heads` output), or ``[B, 2]`` for a single angle.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..checks import as_float, check_shape
from ..numerics import safe_norm
from ._reduce import mean_or_zero

__all__ = [
    "angle_range_loss",
    "flip_symmetry_loss",
    "uniform_azimuth_loss",
    "view_consistency_loss",
]


def _pairs(name: str, trig: torch.Tensor) -> torch.Tensor:
    trig = as_float(name, trig)
    if trig.dim() == 2 and trig.shape[1] % 2 == 0:
        trig = trig.reshape(trig.shape[0], trig.shape[1] // 2, 2)  # -1 is ambiguous at B = 0
    check_shape(name, trig, ("B", "P", 2))
    return trig


def view_consistency_loss(
    estimator: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    viewpoints: torch.Tensor,
) -> torch.Tensor:
    """``1 - <v_r, V(I_r)>`` (Cat3D Eq. 8, weight 0.03): the estimator ``V`` re-predicts
    the viewpoints ``v_r`` that rendered ``images`` and is trained toward them.

    Gradients are stopped into the renders and the viewpoints, so only the estimator
    learns (the paper's stop-gradient into shape, texture and renderer). Eq. 8 takes
    the 6-vector of three (cos, sin) pairs (azimuth, elevation, roll) and its cosine
    similarity: with ``P`` unit pairs the dot product is divided by ``P``. The Cat3D
    code uses the azimuth pair alone (pass ``P = 1``).
    Shapes: ``images`` ``[B, C, H, W]``; ``viewpoints`` and the estimator's output
    ``[B, P, 2]`` or ``[B, 2P]``; averaged over the batch.
    """
    check_shape("images", images, ("B", "C", "H", "W"))
    target = _pairs("viewpoints", viewpoints.detach())
    predicted = _pairs("estimator(images)", estimator(images.detach()))
    if predicted.shape != target.shape:
        raise ValueError(
            f"estimator(images): expected shape {list(target.shape)}, got {list(predicted.shape)}"
        )
    return mean_or_zero(1 - (predicted * target).sum(-1).mean(-1))


def uniform_azimuth_loss(trig: torch.Tensor, p: int = 1) -> torch.Tensor:
    """1-D Wasserstein-p distance between the batch's azimuths and a uniform prior
    (ShapeClipper's camera prior, weight 0.1).

    The prior is the ``B`` evenly spaced angles ``(2k + 1) pi / B``. Each of ``cos``,
    ``sin`` and ``cos * sin`` of the predictions is compared with the same statistic
    of the prior by sorting (the exact 1-D ``W_p = (mean |x_(i) - y_(i)|^p)^(1/p)`` for
    equal-size samples); the three distances are averaged. ``p = 1`` (ShapeClipper's
    default configs) or ``p = 2`` (its Pix3D config). ``trig``: ``[B, 2]`` azimuth
    ``(cos, sin)``; an empty batch gives 0.
    """
    trig = as_float("trig", trig)
    check_shape("trig", trig, ("B", 2))
    if p not in (1, 2):
        raise ValueError(f"p: expected 1 or 2, got {p}")
    b = trig.shape[0]
    if b == 0:  # no azimuths, no distance: 0 with a zero gradient
        return trig.sum() * 0
    grid = (2 * torch.arange(b, device=trig.device, dtype=trig.dtype) + 1) * math.pi / b
    prior = torch.stack([grid.cos(), grid.sin(), grid.cos() * grid.sin()], -1)
    empirical = torch.stack([trig[:, 0], trig[:, 1], trig[:, 0] * trig[:, 1]], -1)
    gap = prior.sort(dim=0).values - empirical.sort(dim=0).values
    if p == 1:
        return gap.abs().mean()
    squared = (gap * gap).mean(0)  # [3]
    # sqrt with a zero (not NaN) gradient where the two samples coincide
    root = torch.where(squared > 0, torch.sqrt(torch.where(squared > 0, squared, 1.0)), 0.0)
    return root.mean()


def angle_range_loss(
    trig: torch.Tensor, low: float, high: float, margin: float = 5.0
) -> torch.Tensor:
    """Hinge keeping an angle in ``[low - margin, high + margin]`` degrees
    (ShapeClipper's elevation and roll prior, weight 0.01).

    ``mean(relu(low - margin - a)) + mean(relu(a - high - margin))`` with
    ``a = atan2(sin, cos)`` in degrees, ``-180 < low <= high < 180``. ``trig``:
    ``[B, 2]``. A zero vector is read as angle 0 with zero gradient.
    """
    trig = as_float("trig", trig)
    check_shape("trig", trig, ("B", 2))
    if not -180 < low <= high < 180:
        raise ValueError(f"low, high: expected -180 < low <= high < 180, got {low}, {high}")
    zero = safe_norm(trig) == 0
    cos = torch.where(zero, torch.ones_like(trig[:, 0]), trig[:, 0])
    angle = torch.rad2deg(torch.atan2(trig[:, 1], cos))
    return mean_or_zero(torch.relu(low - margin - angle)) + mean_or_zero(
        torch.relu(angle - high - margin)
    )


def flip_symmetry_loss(trig: torch.Tensor, trig_flipped: torch.Tensor) -> torch.Tensor:
    """The estimator on a horizontally flipped image must predict the mirrored viewpoint
    (ShapeClipper, weight 0.1): azimuth and roll change sign, elevation is kept.

    Shapes: ``trig`` and ``trig_flipped`` ``[B, 3, 2]`` (azimuth, elevation, roll pairs)
    or ``[B, 6]``. Squared error per pair, averaged over the batch (an empty one gives
    0), summed over angles.
    """
    target = _pairs("trig", trig)
    flipped = _pairs("trig_flipped", trig_flipped)
    if target.shape[1] != 3 or flipped.shape != target.shape:
        raise ValueError(
            f"trig, trig_flipped: expected shapes [B, 3, 2], got {list(target.shape)} "
            f"and {list(flipped.shape)}"
        )
    sign = target.new_tensor([[1.0, -1.0], [1.0, 1.0], [1.0, -1.0]])
    return ((flipped - target * sign) ** 2).sum() / max(target.shape[0], 1)
