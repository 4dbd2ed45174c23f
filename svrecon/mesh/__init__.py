"""Meshes from implicit fields: marching cubes (dense or hierarchical), surface
sampling, export and silhouettes."""

from .extract import extract_mesh, grid_points
from .sample import export_mesh, sample_surface
from .silhouette import mesh_silhouette

__all__ = ["export_mesh", "extract_mesh", "grid_points", "mesh_silhouette", "sample_surface"]
