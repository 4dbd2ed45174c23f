"""Colour heads conditioned on a texture code and the shape field's features."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from .._checks import check_shape
from ._mlp import mlp
from .encoding import PositionalEncoding

__all__ = ["TextureNetwork"]


class TextureNetwork(nn.Module):
    """``[encode(x), z_texture, shape features] -> rgb`` in ``[0, 1]`` (VolSDF style).

    Args:
        feature_dim: size of the shape field's per-point features.
        latent_dim: texture code size (0 for none).
        hidden_dims: ShapeClipper uses ``(64, 64, 64)``.
        encoding: positional encoding of the points (``None``: raw xyz).
        activation: ``"sigmoid"`` (ShapeClipper) or ``"tanh"`` (SDF-SRN, Cat3D; the
            ``[-1, 1]`` output is mapped to ``[0, 1]``).
    """

    def __init__(
        self,
        feature_dim: int,
        latent_dim: int = 0,
        hidden_dims: Sequence[int] = (64, 64, 64),
        encoding: PositionalEncoding | None = None,
        activation: Literal["sigmoid", "tanh"] = "sigmoid",
    ) -> None:
        super().__init__()
        if activation not in ("sigmoid", "tanh"):
            raise ValueError(f"activation: expected 'sigmoid' or 'tanh', got {activation!r}")
        self.feature_dim, self.latent_dim = feature_dim, latent_dim
        self.encoding, self.activation = encoding, activation
        point_dim = encoding.out_dim if encoding is not None else 3
        self.net = mlp([point_dim + latent_dim + feature_dim, *hidden_dims, 3])

    def forward(
        self, points: torch.Tensor, features: torch.Tensor, latent: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``points`` ``[B, N, 3]``, ``features`` ``[B, N, F]``, ``latent`` ``[B, L]``
        -> rgb ``[B, N, 3]`` in ``[0, 1]``."""
        dims = check_shape("points", points, ("B", "N", 3))
        check_shape("features", features, (dims["B"], dims["N"], self.feature_dim))
        parts = [self.encoding(points) if self.encoding is not None else points]
        if self.latent_dim:
            if latent is None:
                raise ValueError(f"latent: expected shape [B, {self.latent_dim}], got None")
            check_shape("latent", latent, (dims["B"], self.latent_dim))
            parts.append(latent[:, None].expand(-1, dims["N"], -1))
        y = self.net(torch.cat([*parts, features], dim=-1))
        return torch.sigmoid(y) if self.activation == "sigmoid" else (torch.tanh(y) + 1) / 2
