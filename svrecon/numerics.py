"""Norms that stay finite (value and gradient) at the zero vector."""

from __future__ import annotations

import torch


def safe_norm(v: torch.Tensor, dim: int = -1, keepdim: bool = False) -> torch.Tensor:
    """``|v|`` along ``dim``; the zero vector has norm 0 and a zero (sub)gradient, and a
    NaN stays NaN (it is not read as a zero vector)."""
    sq = (v * v).sum(dim, keepdim=keepdim)
    zero = sq == 0
    return torch.where(zero, 0.0, torch.sqrt(torch.where(zero, 1.0, sq)))


def safe_normalize(v: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``v / |v|`` along the last axis; zero vectors map to zero, with finite gradients."""
    sq = (v * v).sum(-1, keepdim=True)
    return v * torch.rsqrt(sq.clamp_min(eps * eps)) * (sq > 0)


def gradient_wrt(
    values: torch.Tensor, points: torch.Tensor, create_graph: bool, retain_graph: bool = False
) -> torch.Tensor:
    """``d sum(values) / d points``, zero where ``values`` do not depend on ``points`` (a
    constant or detached field) instead of autograd's error."""
    grad = None
    if values.requires_grad:
        (grad,) = torch.autograd.grad(
            values,
            points,
            torch.ones_like(values),
            create_graph=create_graph,
            retain_graph=retain_graph or None,
            allow_unused=True,
        )
    return torch.zeros_like(points) if grad is None else grad
