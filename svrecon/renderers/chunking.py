"""Rendering many rays (a full image) in chunks of bounded memory."""

from __future__ import annotations

from collections.abc import Callable

from ..cameras.rays import RayBundle
from .output import RenderOutput

__all__ = ["render_chunked"]


def render_chunked(
    render: Callable[[RayBundle], RenderOutput], rays: RayBundle, chunk_size: int = 4096
) -> RenderOutput:
    """Apply ``render`` to ``chunk_size`` rays per camera at a time and concatenate.

    ``render`` maps a :class:`RayBundle` ``[B, r]`` to a :class:`RenderOutput`, e.g.
    ``lambda rays: tracer(field, rays)``. Peak memory is that of one chunk (plus the
    outputs); results equal one call on all rays for any renderer whose rays are
    independent (every renderer here; stratified sampling draws per chunk).
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size: expected a positive number of rays, got {chunk_size}")
    parts = []
    for start in range(0, rays.num_rays, chunk_size):
        index = slice(start, start + chunk_size)
        parts.append(render(rays._map(lambda t, index=index: t[:, index])))
    return RenderOutput.cat(parts)
