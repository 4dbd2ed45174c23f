"""Semantic neighbours for ShapeClipper's shape consistency: image embedders (open_clip
from a local weights file, or a weight-free thumbnail), dataset embedding with an
on-disk cache, chunked top-k cosine neighbours, the authors' neighbour CSV format, and
IoU-weighted neighbour picking."""

from .embedders import ImageEmbedder, OpenCLIPEmbedder, ThumbnailEmbedder
from .neighbours import (
    NEIGHBOUR_KEYS,
    Neighbours,
    WithNeighbours,
    embed_dataset,
    neighbour_weights,
    pick_neighbours,
    read_neighbour_csv,
    top_k_neighbours,
    write_neighbour_csv,
)

__all__ = [
    "ImageEmbedder",
    "NEIGHBOUR_KEYS",
    "Neighbours",
    "OpenCLIPEmbedder",
    "ThumbnailEmbedder",
    "WithNeighbours",
    "embed_dataset",
    "neighbour_weights",
    "pick_neighbours",
    "read_neighbour_csv",
    "top_k_neighbours",
    "write_neighbour_csv",
]
