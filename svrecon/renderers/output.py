"""What every renderer returns."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

__all__ = ["RenderOutput"]


@dataclass
class RenderOutput:
    """Per-ray results of a renderer, for ``B`` cameras with ``R`` rays each.

    Attributes:
        distance: ``[B, R]`` distance along the (unit-direction) ray to the returned point.
        depth: ``[B, R]`` camera z-depth of that point (``distance * depth_per_distance``).
        points: ``[B, R, 3]`` world-space point the renderer returns per ray (the surface
            point for hits; see each renderer for misses).
        mask: ``[B, R]`` bool, hard silhouette (the ray hit the surface).
        opacity: ``[B, R]`` soft silhouette in ``[0, 1]`` (the sum of the volume weights,
            the SRN soft mask, or the hard mask as a float for surface search).
        rgb: ``[B, R, 3]`` colour, if the field returns one.
        normals: ``[B, R, 3]`` unit outward normals (volume rendering: the
            weight-averaged normal, not renormalised), if asked for.
        features, albedo: ``[B, R, F]`` and ``[B, R, 3]``, the field's outputs at ``points``.
        surface_value: ``[B, R]`` the field's value (SDF or occupancy) at ``points``.
        samples: ``[B, R, S]`` distances of the samples or marched points along each ray.
        weights: ``[B, R, S]`` volume-rendering weights ``w_i = alpha_i T_i``.
        marched_values: ``[B, R, S]`` the field values at ``samples`` (the SRN marcher's
            SDF values for the ray intersection and free-space losses).
    """

    distance: torch.Tensor
    depth: torch.Tensor
    points: torch.Tensor
    mask: torch.Tensor
    opacity: torch.Tensor
    rgb: torch.Tensor | None = None
    normals: torch.Tensor | None = None
    features: torch.Tensor | None = None
    albedo: torch.Tensor | None = None
    surface_value: torch.Tensor | None = None
    samples: torch.Tensor | None = None
    weights: torch.Tensor | None = None
    marched_values: torch.Tensor | None = None

    def composite(self, background: torch.Tensor | float) -> torch.Tensor:
        """``rgb`` over a background: ``rgb * opacity + background * (1 - opacity)`` ``[B, R, 3]``.

        ``background`` is a number, ``[3]`` or ``[B, R, 3]``.
        """
        if self.rgb is None:
            raise ValueError("composite: this output has no rgb")
        a = self.opacity[..., None].to(self.rgb.dtype)
        return self.rgb * a + torch.as_tensor(background, dtype=self.rgb.dtype) * (1 - a)

    @staticmethod
    def cat(outputs: list[RenderOutput]) -> RenderOutput:
        """Concatenate outputs of ray chunks along the ray dimension."""
        merged = {}
        for f in fields(RenderOutput):
            parts = [getattr(o, f.name) for o in outputs]
            merged[f.name] = None if parts[0] is None else torch.cat(parts, dim=1)
        return RenderOutput(**merged)

    def image(self, name: str, height: int, width: int) -> torch.Tensor:
        """A per-ray attribute of a full-image render as ``[B, C, H, W]`` (or ``[B, H, W]``)."""
        value = getattr(self, name)
        if value is None:
            raise ValueError(f"image: this output has no {name}")
        b = value.shape[0]
        if value.shape[1] != height * width:
            raise ValueError(
                f"{name}: expected {height}x{width}={height * width} rays, got {value.shape[1]}"
            )
        if value.dim() == 2:
            return value.reshape(b, height, width)
        return value.reshape(b, height, width, value.shape[-1]).permute(0, 3, 1, 2)
