"""Pictures: meshes and clouds rendered by a small rasteriser, and the panels the
trainer, the demo and ``svrecon reconstruct`` write."""

from .panels import novel_cameras, reconstruction_row, save_panel, save_preview
from .raster import PART_PALETTE, part_colors, render_mesh, render_points, shade

__all__ = [
    "PART_PALETTE",
    "part_colors",
    "novel_cameras",
    "reconstruction_row",
    "render_mesh",
    "render_points",
    "save_panel",
    "save_preview",
    "shade",
]
