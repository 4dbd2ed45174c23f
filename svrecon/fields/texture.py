"""Colour heads conditioned on a texture code and the shape field's features."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

import torch
from torch import nn

from ..checks import as_dtype_of, check_shape, parameter_dtype
from ._mlp import mlp
from .base import BoundField, Field
from .encoding import PositionalEncoding
from .output import FieldOutput

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
        self, points: torch.Tensor, shape: FieldOutput, latent: torch.Tensor | None = None
    ) -> FieldOutput:
        """``points`` ``[B, N, 3]``, the shape field's output there (its ``features``
        ``[B, N, F]`` are read), ``latent`` ``[B, L]`` -> that output with ``rgb``
        ``[B, N, 3]`` in ``[0, 1]`` added."""
        dims = check_shape("points", points, ("B", "N", 3))
        points = as_dtype_of("points", points, parameter_dtype(self))
        if shape.features is None:
            raise ValueError("shape: expected a FieldOutput with features, got features=None")
        check_shape("shape.features", shape.features, (dims["B"], dims["N"], self.feature_dim))
        parts = [self.encoding(points) if self.encoding is not None else points]
        if self.latent_dim:
            if latent is None:
                raise ValueError(f"latent: expected shape [B, {self.latent_dim}], got None")
            check_shape("latent", latent, (dims["B"], self.latent_dim))
            parts.append(latent[:, None].expand(-1, dims["N"], -1))
        y = self.net(torch.cat([*parts, shape.features], dim=-1))
        rgb = torch.sigmoid(y) if self.activation == "sigmoid" else (torch.tanh(y) + 1) / 2
        return replace(shape, rgb=rgb)

    def bind(self, shape_field: Field, latent: torch.Tensor | None = None) -> BoundField:
        """A textured field: ``shape_field``'s output at the points with this network's
        colour (texture code ``latent`` ``[B, L]`` bound) as ``rgb``."""
        batch = None
        if latent is not None:
            batch = check_shape("latent", latent, ("B", self.latent_dim))["B"]

        def field(points: torch.Tensor) -> FieldOutput:
            return self(points, shape_field(points), latent)

        return BoundField(field, batch, getattr(shape_field, "kind", None))
