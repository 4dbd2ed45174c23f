"""Differentiable renderers of implicit fields: surface search, sphere tracing, the SRN
LSTM marcher, VolSDF volume rendering and spherical-harmonics shading.

Renderers take a field as a callable ``points [B, N, 3] -> FieldOutput`` and own no
field; they return a :class:`RenderOutput`.
"""

from .chunking import render_chunked
from .output import RenderOutput
from .search import LinearBinarySearch, LinearSearch, SphereTracer, SurfaceSearch, surface_output
from .shading import FACE3DMM_SH_CONSTANTS, SH_CONSTANTS, sh_basis, sh_shading
from .srn import SRNRayMarcher
from .volume import LaplaceDensity, VolumeRenderer

__all__ = [
    "FACE3DMM_SH_CONSTANTS",
    "SH_CONSTANTS",
    "LaplaceDensity",
    "LinearBinarySearch",
    "LinearSearch",
    "RenderOutput",
    "SRNRayMarcher",
    "SphereTracer",
    "SurfaceSearch",
    "VolumeRenderer",
    "render_chunked",
    "sh_basis",
    "sh_shading",
    "surface_output",
]
