"""Positional (Fourier feature) encodings of points, in the two layouts the seeds use."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from ..checks import check_shape

__all__ = ["PositionalEncoding"]


class PositionalEncoding(nn.Module):
    """Sinusoidal encoding of coordinates ``[..., D]`` -> ``[..., out_dim]``.

    Two layouts (the order matters for loading seed weights):

    * ``"sdf_srn"`` (SDF-SRN, Cat3D): frequencies ``pi * 2^k``, ``k = 0..L-1``; per
      coordinate a block ``[sin over k, cos over k]``, blocks in x, y, z order; the
      raw coordinates are appended **last** when ``include_input``.
    * ``"nerf"`` (NeRF, VolSDF, ShapeClipper): frequencies ``2^k`` (no pi); raw
      coordinates **first**, then ``[sin(2^k x), cos(2^k x)]`` for each ``k``, each
      term over all coordinates.

    ``out_dim = D * 2L (+ D)``; e.g. 33 for SDF-SRN (L=5), 39 for ShapeClipper (L=6).
    """

    def __init__(
        self,
        num_frequencies: int,
        layout: Literal["sdf_srn", "nerf"] = "sdf_srn",
        include_input: bool = True,
        in_dim: int = 3,
    ) -> None:
        super().__init__()
        if layout not in ("sdf_srn", "nerf"):
            raise ValueError(f"layout: expected 'sdf_srn' or 'nerf', got {layout!r}")
        if num_frequencies < 0:
            raise ValueError(f"num_frequencies: expected >= 0, got {num_frequencies}")
        self.num_frequencies = num_frequencies
        self.layout = layout
        self.include_input = include_input
        self.in_dim = in_dim
        self.scale = math.pi if layout == "sdf_srn" else 1.0

    @property
    def out_dim(self) -> int:
        return self.in_dim * (2 * self.num_frequencies + int(self.include_input))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_shape("x", x, ("...", self.in_dim))
        # Built in the input's dtype (pi * 2^k rounded once), so float64 runs are exact.
        freq = self.scale * torch.exp2(
            torch.arange(self.num_frequencies, dtype=x.dtype, device=x.device)
        )
        if self.layout == "sdf_srn":
            spectrum = x[..., :, None] * freq  # [..., D, L]
            enc = torch.cat([spectrum.sin(), spectrum.cos()], dim=-1).flatten(-2)
            return torch.cat([enc, x], dim=-1) if self.include_input else enc
        spectrum = x[..., None, :] * freq[:, None]  # [..., L, D]
        enc = torch.stack([spectrum.sin(), spectrum.cos()], dim=-2).flatten(-3)
        return torch.cat([x, enc], dim=-1) if self.include_input else enc

    def extra_repr(self) -> str:
        return f"L={self.num_frequencies}, layout={self.layout}, out_dim={self.out_dim}"
