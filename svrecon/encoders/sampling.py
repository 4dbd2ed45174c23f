"""Sampling image feature maps at projected points (DISN's local features)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from ..cameras import Camera
from ..checks import check_shape

__all__ = ["bilinear_sample", "sample_features"]


def bilinear_sample(feature_map: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """Bilinear interpolation of ``feature_map`` ``[B, C, H, W]`` at ``pixels`` ``[B, N, 2]``.

    ``pixels`` are ``(u, v)`` in this map's pixel units with centres at ``+0.5``
    (``F.grid_sample(..., align_corners=False)``'s convention); points outside the map
    take the nearest border value. Written with gathers and arithmetic so it is twice
    differentiable in ``pixels`` (``grid_sample``'s double backward is not), which DISN's
    local features need under an eikonal or normal loss.

    Returns ``[B, N, C]``; a NaN pixel (a projection through a NaN camera) samples NaN
    features, as torch propagates NaN (it would otherwise gather an out-of-range index).
    """
    dims = check_shape("feature_map", feature_map, ("B", "C", "H", "W"))
    check_shape("pixels", pixels, (dims["B"], "N", 2))
    H, W = dims["H"], dims["W"]
    lost = pixels.isnan().any(-1, keepdim=True)  # [B, N, 1]; no host synchronisation
    pixels = torch.where(lost, 0.0, pixels)
    # Continuous index of the sample, clamped to the outermost pixel centres (border).
    x = (pixels[..., 0] - 0.5).clamp(0, W - 1)
    y = (pixels[..., 1] - 0.5).clamp(0, H - 1)
    x0 = x.detach().floor().clamp(max=W - 2 if W > 1 else 0)
    y0 = y.detach().floor().clamp(max=H - 2 if H > 1 else 0)
    wx, wy = x - x0, y - y0
    x0, y0 = x0.long(), y0.long()
    x1, y1 = (x0 + 1).clamp(max=W - 1), (y0 + 1).clamp(max=H - 1)
    flat = feature_map.flatten(2)  # [B, C, H*W]

    def at(yi: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        idx = (yi * W + xi)[:, None].expand(-1, dims["C"], -1)
        return torch.gather(flat, 2, idx).transpose(1, 2)  # [B, N, C]

    wx, wy = wx[..., None], wy[..., None]
    top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx
    bottom = at(y1, x0) * (1 - wx) + at(y1, x1) * wx
    return torch.where(lost, torch.nan, top * (1 - wy) + bottom * wy)


def sample_features(
    feature_maps: Sequence[torch.Tensor],
    points: torch.Tensor,
    camera: Camera,
    image_size: tuple[int, int],
    mode: Literal["normalized", "resize"] = "resize",
) -> torch.Tensor:
    """Project ``points`` ``[B, N, 3]`` with ``camera`` and sample every feature map there.

    Args:
        feature_maps: ``[B, C_i, H_i, W_i]`` maps of an image of ``image_size`` ``(H, W)``.
        points: world points.
        camera: any svrecon camera; pixels are in the image's units.
        image_size: the image the camera's pixels refer to.
        mode: ``"resize"`` (DISN's paper and code, the default) first resizes each
            map bilinearly to ``image_size``, then samples it bilinearly;
            ``"normalized"`` samples each map at the same normalised image position
            without resizing (cheaper; differs by up to ~1 in feature units near
            edges of coarse maps, and is what the first shipped DISN used).

    Returns ``[B, N, sum C_i]``, the maps' features concatenated in order.
    """
    check_shape("points", points, (len(camera), "N", 3))
    if not feature_maps:
        raise ValueError("feature_maps: expected at least one map, got none")
    H, W = image_size
    pixels = camera.project(points)
    out = []
    for i, fmap in enumerate(feature_maps):
        check_shape(f"feature_maps[{i}]", fmap, (len(camera), "C", "h", "w"))
        if mode == "resize":
            if fmap.shape[-2:] != (H, W):
                fmap = F.interpolate(fmap, size=(H, W), mode="bilinear", align_corners=False)
            out.append(bilinear_sample(fmap, pixels))
        elif mode == "normalized":
            scale = pixels.new_tensor([fmap.shape[-1] / W, fmap.shape[-2] / H])
            out.append(bilinear_sample(fmap, pixels * scale))
        else:
            raise ValueError(f"mode: expected 'normalized' or 'resize', got {mode!r}")
    return torch.cat(out, dim=-1)
