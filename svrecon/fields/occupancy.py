"""Occupancy fields: IM-NET style decoder and the MSU branched joint occupancy field."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

import torch
from torch import nn

from ..checks import as_dtype_of, check_shape, parameter_dtype
from ._mlp import mlp
from .base import BoundField
from .encoding import PositionalEncoding
from .output import FieldOutput

__all__ = ["BranchedAlbedo", "BranchedOccupancy", "JointOccupancyField", "OccupancyNetwork"]


def _leaky_mlp(dims: Sequence[int], slope: float) -> nn.Sequential:
    return mlp(dims, lambda: nn.LeakyReLU(slope))


def _cat_codes(points: torch.Tensor, codes: Sequence[tuple[str, torch.Tensor | None, int]]):
    """``[points, code_1, ...]`` per point; codes are ``[B, D]`` broadcast over N."""
    dims = check_shape("points", points, ("B", "N", "C"))
    parts = []
    for name, code, size in codes:
        if size == 0:
            continue
        if code is None:
            raise ValueError(f"{name}: expected shape [B, {size}], got None")
        check_shape(name, code, (dims["B"], size))
        parts.append(code[:, None].expand(-1, dims["N"], -1))
    return parts


class OccupancyNetwork(nn.Module):
    """IM-NET decoder: ``[x, z] -> occupancy`` (Chen & Zhang, CVPR 2019).

    Args:
        latent_dim: shape code size.
        hidden_dims: IM-NET uses ``(1024, 1024, 1024, 512, 256, 128)``.
        output: ``"sigmoid"`` (default; values in ``[0, 1]``) or ``"leaky_clamp"``
            (IM-NET's ``max(min(y, 0.01 y + 0.99), 0.01 y)``, slightly outside
            ``[0, 1]`` by design).
        slope: leaky ReLU slope (0.02 in IM-NET).
    """

    def __init__(
        self,
        latent_dim: int = 256,
        hidden_dims: Sequence[int] = (1024, 1024, 1024, 512, 256, 128),
        output: Literal["sigmoid", "leaky_clamp"] = "sigmoid",
        slope: float = 0.02,
    ) -> None:
        super().__init__()
        if output not in ("sigmoid", "leaky_clamp"):
            raise ValueError(f"output: expected 'sigmoid' or 'leaky_clamp', got {output!r}")
        self.latent_dim, self.output = latent_dim, output
        self.net = _leaky_mlp([3 + latent_dim, *hidden_dims, 1], slope)
        self.slope = slope

    def forward(self, points: torch.Tensor, latent: torch.Tensor) -> FieldOutput:
        """``points`` ``[B, N, 3]``, ``latent`` ``[B, latent_dim]`` -> occupancy ``[B, N]``."""
        check_shape("points", points, ("B", "N", 3))
        points = as_dtype_of("points", points, parameter_dtype(self))
        codes = _cat_codes(points, [("latent", latent, self.latent_dim)])
        y = self.net(torch.cat([points, *codes], dim=-1))[..., 0]
        if self.output == "sigmoid":
            return FieldOutput(occupancy=torch.sigmoid(y))
        return FieldOutput(occupancy=torch.maximum(torch.minimum(y, 0.01 * y + 0.99), 0.01 * y))

    def bind(self, latent: torch.Tensor) -> BoundField:
        """The field ``points [B, N, 3] -> FieldOutput`` with ``latent`` ``[B, L]`` bound."""
        check_shape("latent", latent, ("B", self.latent_dim))
        return BoundField(lambda points: self(points, latent), len(latent), "occupancy")


class BranchedOccupancy(nn.Module):
    """BAE-NET style branched occupancy (MSU shape decoder).

    ``[f_c, x, f_s] -> hidden -> K`` branch logits, leaky ReLU 0.02, sigmoid;
    occupancy is the maximum over branches and ``branch_index`` its argmax. MSU:
    category code 3, shape code 256, hidden ``(3072, 384)``, ``K = 12``.
    """

    def __init__(
        self,
        shape_dim: int = 256,
        category_dim: int = 3,
        hidden_dims: Sequence[int] = (3072, 384),
        num_branches: int = 12,
        slope: float = 0.02,
    ) -> None:
        super().__init__()
        self.shape_dim, self.category_dim = shape_dim, category_dim
        self.num_branches = num_branches
        self.net = _leaky_mlp([category_dim + 3 + shape_dim, *hidden_dims, num_branches], slope)

    @property
    def branch_layer(self) -> nn.Linear:
        """The last linear layer: one output (logit) per branch (BAE-NET's L3)."""
        return self.net[-1]

    def forward(
        self, points: torch.Tensor, shape: torch.Tensor, category: torch.Tensor | None = None
    ) -> FieldOutput:
        """``points`` ``[B, N, 3]``, ``shape`` ``[B, S]``, ``category`` ``[B, C]``.

        Returns ``occupancy`` ``[B, N]``, ``branch_values`` ``[B, N, K]`` and
        ``branch_index`` ``[B, N]``.
        """
        return self.output_of(self.logits(points, shape, category))

    @staticmethod
    def output_of(logits: torch.Tensor) -> FieldOutput:
        """The field's output from branch logits ``[B, N, K]``: per-branch sigmoids,
        their maximum (the occupancy) and its argmax (the branch)."""
        branches = torch.sigmoid(logits)
        occupancy, index = branches.max(dim=-1)
        return FieldOutput(occupancy=occupancy, branch_values=branches, branch_index=index)

    def logits(
        self, points: torch.Tensor, shape: torch.Tensor, category: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The branch logits ``[B, N, K]`` (before the sigmoid) of ``points`` ``[B, N, 3]``."""
        check_shape("points", points, ("B", "N", 3))
        points = as_dtype_of("points", points, parameter_dtype(self))
        cat = _cat_codes(points, [("category", category, self.category_dim)])
        shp = _cat_codes(points, [("shape", shape, self.shape_dim)])
        return self.net(torch.cat([*cat, points, *shp], dim=-1))

    def bind(self, shape: torch.Tensor, category: torch.Tensor | None = None) -> BoundField:
        """The field with the shape code ``[B, S]`` (and category code ``[B, C]``) bound."""
        check_shape("shape", shape, ("B", self.shape_dim))
        return BoundField(lambda points: self(points, shape, category), len(shape), "occupancy")


class BranchedAlbedo(nn.Module):
    """MSU albedo decoder: one colour per branch; the output is the colour of the branch
    with the largest occupancy.

    ``[f_c, x (or its encoding), f_s, f_a] -> 512 x 6 (leaky ReLU) -> 3 K -> tanh``,
    mapped to ``[0, 1]`` (the seed's tanh output is in ``[-1, 1]``).
    """

    def __init__(
        self,
        shape_dim: int = 256,
        albedo_dim: int = 256,
        category_dim: int = 3,
        hidden_dims: Sequence[int] = (512,) * 6,
        num_branches: int = 12,
        encoding: PositionalEncoding | None = None,
        slope: float = 0.02,
    ) -> None:
        super().__init__()
        self.shape_dim, self.albedo_dim, self.category_dim = shape_dim, albedo_dim, category_dim
        self.num_branches = num_branches
        self.encoding = encoding
        point_dim = encoding.out_dim if encoding is not None else 3
        in_dim = category_dim + point_dim + shape_dim + albedo_dim
        self.net = _leaky_mlp([in_dim, *hidden_dims, 3 * num_branches], slope)

    def forward(
        self,
        points: torch.Tensor,
        occupancy: FieldOutput,
        shape: torch.Tensor,
        albedo: torch.Tensor,
        category: torch.Tensor | None = None,
    ) -> FieldOutput:
        """``occupancy`` (a :class:`BranchedOccupancy` output at ``points`` ``[B, N, 3]``)
        with ``albedo`` ``[B, N, 3]``, the colour of its ``branch_index``, and
        ``branch_albedo`` ``[B, N, K, 3]``, every branch's colour, added."""
        dims = check_shape("points", points, ("B", "N", 3))
        points = as_dtype_of("points", points, parameter_dtype(self))
        if occupancy.branch_index is None:
            raise ValueError("occupancy: expected a branched output with branch_index, got None")
        check_shape("occupancy.branch_index", occupancy.branch_index, (dims["B"], dims["N"]))
        x = self.encoding(points) if self.encoding is not None else points
        cat = _cat_codes(points, [("category", category, self.category_dim)])
        rest = _cat_codes(
            points, [("shape", shape, self.shape_dim), ("albedo", albedo, self.albedo_dim)]
        )
        inputs = [*cat, x, *rest]
        colours = (torch.tanh(self.net(torch.cat(inputs, dim=-1))) + 1) / 2
        colours = colours.unflatten(-1, (self.num_branches, 3))
        idx = occupancy.branch_index[..., None, None].expand(-1, -1, 1, 3)
        chosen = torch.gather(colours, 2, idx)[:, :, 0]
        return replace(occupancy, albedo=chosen, branch_albedo=colours)


class JointOccupancyField(nn.Module):
    """The MSU joint occupancy field: branched occupancy plus argmax-branch albedo."""

    def __init__(self, occupancy: BranchedOccupancy, albedo: BranchedAlbedo) -> None:
        super().__init__()
        if occupancy.num_branches != albedo.num_branches:
            raise ValueError("occupancy, albedo: must have the same number of branches")
        self.occupancy, self.albedo = occupancy, albedo

    def forward(
        self,
        points: torch.Tensor,
        shape: torch.Tensor,
        albedo: torch.Tensor,
        category: torch.Tensor | None = None,
    ) -> FieldOutput:
        """``FieldOutput`` with occupancy, albedo ``[B, N, 3]``, the branch values and
        every branch's albedo."""
        occ = self.occupancy(points, shape, category)
        return self.albedo(points, occ, shape, albedo, category)

    def bind(
        self, shape: torch.Tensor, albedo: torch.Tensor, category: torch.Tensor | None = None
    ) -> BoundField:
        """The field with the shape ``[B, S]``, albedo ``[B, A]`` (and category ``[B, C]``)
        codes bound."""
        check_shape("shape", shape, ("B", self.occupancy.shape_dim))
        return BoundField(
            lambda points: self(points, shape, albedo, category), len(shape), "occupancy"
        )
