"""Meshes from implicit fields: marching cubes (dense or hierarchical), surface
sampling and export."""

from .extract import extract_mesh, grid_points
from .sample import export_mesh, sample_surface

__all__ = ["export_mesh", "extract_mesh", "grid_points", "sample_surface"]
