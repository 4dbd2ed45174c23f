"""A small convolutional encoder of images (2D) or voxel grids (3D) for CPU-sized
models and tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ..checks import as_dtype_of, check_shape, parameter_dtype

__all__ = ["ConvEncoder"]


class ConvEncoder(nn.Module):
    """Stride-2 stages ``conv3x3 -> GroupNorm -> ReLU -> conv3x3 -> GroupNorm -> ReLU``,
    then global average pooling and one linear head split into named codes.

    A light stand-in for :class:`ResNetEncoder` (about 1M parameters at the default
    widths) for CPU training and shipped checkpoints. ``forward(images) -> dict`` of
    codes ``[B, size]``; :meth:`feature_maps` also returns every stage's map for local
    features (DISN).

    Args:
        in_channels: image channels (3, or 4 with a mask).
        widths: channels of each stage; each halves the resolution.
        latent_dims: names and sizes of the codes, e.g. ``{"shape": 256}``.
        spatial_dims: 2 for images ``[B, C, H, W]``; 3 for voxel grids ``[B, C, D, H,
            W]`` with 3D convolutions (MSU's coloured-voxel encoder ``E'``, whose input
            is occupancy and RGB, ``in_channels=4``). Any input size is pooled to one
            feature, so one encoder serves every resolution of a coarse-to-fine schedule.
    """

    def __init__(
        self,
        in_channels: int = 3,
        widths: Sequence[int] = (32, 64, 128, 256),
        latent_dims: Mapping[str, int] | None = None,
        spatial_dims: int = 2,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims: expected 2 or 3, got {spatial_dims}")
        if not widths or min(widths) < 1:
            raise ValueError(f"widths: expected one or more positive widths, got {tuple(widths)}")
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        self.in_channels, self.spatial_dims = in_channels, spatial_dims
        self.latent_dims = dict(latent_dims or {"shape": 256})
        self.widths = tuple(widths)
        stages, c = [], in_channels
        for w in widths:
            groups = 8 if w % 8 == 0 else 1
            stages.append(
                nn.Sequential(
                    conv(c, w, 3, 2, 1),
                    nn.GroupNorm(groups, w),
                    nn.ReLU(),
                    conv(w, w, 3, 1, 1),
                    nn.GroupNorm(groups, w),
                    nn.ReLU(),
                )
            )
            c = w
        self.stages = nn.ModuleList(stages)
        self.head = nn.Linear(c, sum(self.latent_dims.values()))

    def feature_maps(self, images: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """``images`` ``[B, C, H, W]`` (or ``[B, C, D, H, W]``) -> (stage maps ``[B, w_i,
        H / 2^(i+1), ...]``, pooled feature ``[B, widths[-1]]``)."""
        spatial = ("D", "H", "W")[3 - self.spatial_dims :]
        check_shape("images", images, ("B", self.in_channels, *spatial))
        maps, h = [], as_dtype_of("images", images, parameter_dtype(self))
        for stage in self.stages:
            h = stage(h)
            maps.append(h)
        return maps, h.mean(dim=tuple(range(2, 2 + self.spatial_dims)))

    def codes(self, pooled: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split the head's output on a pooled feature into the named codes."""
        out = self.head(pooled)
        sizes = list(self.latent_dims.values())
        return dict(zip(self.latent_dims, out.split(sizes, -1), strict=True))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.codes(self.feature_maps(images)[1])
