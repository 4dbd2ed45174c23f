"""Non-saturating GAN losses and the R1 penalty (Cat3D Eq. 7; Goodfellow et al. 2014,
Mescheder et al. 2018). Discriminator outputs are logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..checks import as_float, check_shape
from ._reduce import mean_or_zero

__all__ = ["discriminator_loss", "generator_loss", "r1_penalty"]


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``-E[log sigmoid(D(fake))]`` (Cat3D weight 0.2).

    ``fake_logits`` ``[B]`` or ``[B, 1]``, the discriminator on the stacked
    reconstructed and randomly posed renders.
    """
    return mean_or_zero(F.softplus(-_logits("fake_logits", fake_logits)))


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``-E[log sigmoid(D(real))] - E[log(1 - sigmoid(D(fake)))]`` (Eq. 7, maximised by D).

    Shapes ``[B]`` or ``[B, 1]`` each (batch sizes may differ). Pass fakes detached
    from the generator.
    """
    real = _logits("real_logits", real_logits)
    fake = _logits("fake_logits", fake_logits)
    return mean_or_zero(F.softplus(-real)) + mean_or_zero(F.softplus(fake))


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """R1: ``E_x |grad_x D(x)|^2`` on real images (Cat3D: discriminator loss + 10 * R1).

    Mescheder et al. write ``gamma / 2 * R1``; pass ``gamma / 2`` as the weight.
    ``real_images`` ``[B, ...]`` must have ``requires_grad`` set before the
    discriminator sees them; ``real_logits`` ``[B]`` or ``[B, 1]``. The penalty keeps
    its graph, so it trains the discriminator.
    """
    logits = _logits("real_logits", real_logits)
    if not real_images.requires_grad:
        raise ValueError("real_images: call real_images.requires_grad_() before the discriminator")
    if real_images.dim() < 2 or real_images.shape[0] != logits.shape[0]:
        raise ValueError(
            f"real_images: expected shape [B={logits.shape[0]}, ...], got {list(real_images.shape)}"
        )
    (grad,) = torch.autograd.grad(logits.sum(), real_images, create_graph=True)
    return mean_or_zero(grad.pow(2).flatten(1).sum(-1))


def _logits(name: str, logits: torch.Tensor) -> torch.Tensor:
    logits = as_float(name, logits)
    if logits.dim() == 2 and logits.shape[1] == 1:
        logits = logits[:, 0]
    check_shape(name, logits, ("B",))
    return logits
