"""Choosing which pixels (rays) to render in a training step."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..checks import as_float, check_finite, check_shape

__all__ = [
    "PixelSample",
    "gather_pixels",
    "inverse_distance_weights",
    "sample_pixels_uniform",
    "sample_pixels_weighted",
]


@dataclass
class PixelSample:
    """Sampled pixels of ``B`` images of width ``W``.

    Attributes:
        indices: ``[B, K]`` long, flat row-major indices ``row * W + column``; they
            index ``camera.rays(H, W)`` (see :meth:`RayBundle.select`) and
            :func:`gather_pixels`.
        pixels: ``[B, K, 2]`` the pixel centres ``(column + 0.5, row + 0.5)``, ready
            for ``camera.rays_at``.
    """

    indices: torch.Tensor
    pixels: torch.Tensor


def _sample(indices: torch.Tensor, width: int, dtype: torch.dtype) -> PixelSample:
    u = (indices % width).to(dtype) + 0.5
    v = torch.div(indices, width, rounding_mode="floor").to(dtype) + 0.5
    return PixelSample(indices, torch.stack([u, v], dim=-1))


def sample_pixels_uniform(
    batch_size: int,
    height: int,
    width: int,
    num: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> PixelSample:
    """``num`` distinct pixels per image, uniformly without replacement (SDF-SRN, Cat3D)."""
    for name, value in (("batch_size", batch_size), ("height", height), ("width", width)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    if not 0 < num <= height * width:
        raise ValueError(
            f"num: expected 1..{height * width} pixels for {height}x{width}, got {num}"
        )
    if generator is not None:
        device = generator.device
    keys = torch.rand(batch_size, height * width, generator=generator, device=device)
    indices = keys.argsort(dim=-1)[:, :num]
    return _sample(indices, width, dtype)


def sample_pixels_weighted(
    weights: torch.Tensor,
    num: int,
    *,
    generator: torch.Generator | None = None,
) -> PixelSample:
    """``num`` distinct pixels per image drawn with probability proportional to ``weights``.

    Args:
        weights: ``[B, H, W]`` non-negative, finite; each image needs at least ``num``
            positive entries. Draws are sequential without replacement
            (``torch.multinomial``): each next pixel is chosen among the remaining
            ones in proportion to its weight.
        num: pixels per image.
    """
    weights = as_float("weights", weights)  # multinomial needs floating point
    dims = check_shape("weights", weights, ("B", "H", "W"))
    check_finite("weights", weights)
    if (weights < 0).any():
        raise ValueError("weights: expected non-negative values")
    flat = weights.reshape(dims["B"], -1)
    positive = (flat > 0).sum(dim=-1)
    if num <= 0 or (positive < num).any():
        raise ValueError(
            f"num: every image needs at least num={num} positive weights; "
            f"the fewest is {int(positive.min())}"
        )
    indices = torch.multinomial(flat, num, replacement=False, generator=generator)
    return _sample(indices, dims["W"], weights.dtype)


def inverse_distance_weights(distance: torch.Tensor, offset: float = 5.0) -> torch.Tensor:
    """ShapeClipper's pixel weights ``1 / (D + offset)`` for a distance transform ``D``.

    ``distance`` is ``[B, H, W]`` in pixels (0 inside the mask); ``offset`` 5 as in
    ShapeClipper, which samples 512 rays per image with these weights.
    """
    check_shape("distance", distance, ("B", "H", "W"))
    if offset <= 0:
        raise ValueError(f"offset: expected a positive number, got {offset}")
    return 1.0 / (distance.clamp_min(0) + offset)


def gather_pixels(image: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Values of ``image`` ``[B, C, H, W]`` at flat ``indices`` ``[B, K]`` -> ``[B, K, C]``.

    ``indices`` are integers in ``[0, H * W)`` (``PixelSample.indices``). Their range is
    checked on the CPU; on a GPU reading them would stall the pipeline, so an index out
    of range there is torch's device-side assertion.
    """
    dims = check_shape("image", image, ("B", "C", "H", "W"))
    check_shape("indices", indices, (dims["B"], "K"))
    if indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
        raise ValueError(f"indices: expected integer pixel indices, got dtype {indices.dtype}")
    size = dims["H"] * dims["W"]
    if (
        indices.device.type == "cpu"
        and indices.numel()
        and (int(indices.min()) < 0 or int(indices.max()) >= size)
    ):
        raise ValueError(f"indices: expected flat pixel indices in [0, {size}), got "
                         f"[{int(indices.min())}, {int(indices.max())}]")  # fmt: skip
    indices = indices.long()
    flat = image.flatten(2)
    idx = indices[:, None].expand(-1, dims["C"], -1)
    return torch.gather(flat, 2, idx).transpose(1, 2)
