"""DISN's two-stream SDF decoder (Xu et al., NeurIPS 2019, Fig. 3)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..checks import as_dtype_of, check_shape, parameter_dtype
from ._mlp import mlp
from .base import BoundField
from .output import FieldOutput

__all__ = ["DISNDecoder"]


class DISNDecoder(nn.Module):
    """SDF = global stream + local stream, each with its own point MLP.

    Global: ``x -> 64 -> 256 -> 512``, concatenated with the global image feature
    (1024) ``-> 512 -> 256 -> 1``. Local: its own point MLP, concatenated with the
    local features sampled at the projected point (1472 for VGG-16's five scales)
    ``-> 512 -> 256 -> 1``. ReLU, no normalisation.

    DISN trains on SDF x 10 (``sdf_scale``); the returned ``sdf`` is divided by it, so
    it is in world units like every svrecon field.
    """

    def __init__(
        self,
        global_dim: int = 1024,
        local_dim: int = 1472,
        point_dims: Sequence[int] = (64, 256, 512),
        head_dims: Sequence[int] = (512, 256),
        sdf_scale: float = 10.0,
    ) -> None:
        super().__init__()
        self.global_dim, self.local_dim, self.sdf_scale = global_dim, local_dim, sdf_scale
        self.global_points = mlp([3, *point_dims], final_activation=True)
        self.local_points = mlp([3, *point_dims], final_activation=True)
        self.global_head = mlp([point_dims[-1] + global_dim, *head_dims, 1])
        self.local_head = mlp([point_dims[-1] + local_dim, *head_dims, 1])

    def forward(
        self,
        points: torch.Tensor,
        global_feature: torch.Tensor,
        local_features: torch.Tensor | None,
    ) -> FieldOutput:
        """``points`` ``[B, N, 3]``, ``global_feature`` ``[B, G]``, ``local_features``
        ``[B, N, L]`` (from :func:`svrecon.encoders.sample_features`; ``None`` for the
        global stream alone) -> ``sdf`` ``[B, N]``."""
        dims = check_shape("points", points, ("B", "N", 3))
        points = as_dtype_of("points", points, parameter_dtype(self))
        check_shape("global_feature", global_feature, (dims["B"], self.global_dim))
        g = global_feature[:, None].expand(-1, dims["N"], -1)
        sdf = self.global_head(torch.cat([self.global_points(points), g], dim=-1))[..., 0]
        if local_features is not None:
            check_shape("local_features", local_features, (dims["B"], dims["N"], self.local_dim))
            local = torch.cat([self.local_points(points), local_features], dim=-1)
            sdf = sdf + self.local_head(local)[..., 0]
        return FieldOutput(sdf=sdf / self.sdf_scale)

    def bind(
        self,
        global_feature: torch.Tensor,
        local_features: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> BoundField:
        """The field with the image's codes bound: ``global_feature`` ``[B, G]`` and
        ``local_features``, a function of the points ``[B, N, 3] -> [B, N, L]`` (e.g.
        ``lambda p: sample_features(maps, p, camera, size)``; ``None``: global stream
        alone)."""
        check_shape("global_feature", global_feature, ("B", self.global_dim))

        def field(points: torch.Tensor) -> FieldOutput:
            local = None if local_features is None else local_features(points)
            return self(points, global_feature, local)

        return BoundField(field, len(global_feature), "sdf")
