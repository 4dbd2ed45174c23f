"""Volumetric intersection over union: of occupancies, and of voxelised meshes (DISN)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    import trimesh

__all__ = ["solid_voxels", "volumetric_iou", "voxel_iou"]


def volumetric_iou(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """IoU ``[B]`` of boolean occupancies ``[B, ...]`` (voxel grids or occupancy of shared
    sample points): ``|pred & gt| / |pred | gt|``. Two empty shapes score 1 (they agree).
    """
    if pred.shape != gt.shape or pred.dim() < 2:
        raise ValueError(
            f"pred, gt: expected equal shapes [B, ...], got {list(pred.shape)} and {list(gt.shape)}"
        )
    if pred.dtype != torch.bool or gt.dtype != torch.bool:
        raise ValueError("pred, gt: expected boolean occupancies (threshold the field first)")
    p, g = pred.flatten(1), gt.flatten(1)
    inter = (p & g).sum(-1).double()
    union = (p | g).sum(-1).double()
    return torch.where(union > 0, inter / union.clamp_min(1), 1.0)


def solid_voxels(
    mesh: trimesh.Trimesh, resolution: int = 110, bounds: tuple[float, float] = (-1.1, 1.1)
) -> np.ndarray:
    """A solid occupancy grid ``[resolution]^3`` (bool) of ``mesh`` over the cube
    ``bounds``: every cell that the surface passes through (found by sampling the
    surface at a spacing below a third of a cell), then the enclosed cells
    (``scipy.ndimage.binary_fill_holes``). Parts outside the cube are dropped; an
    empty mesh gives an empty grid."""
    from scipy import ndimage

    if resolution < 2:
        raise ValueError(f"resolution: expected >= 2, got {resolution}")
    lo, hi = bounds
    if not hi > lo:
        raise ValueError(f"bounds: expected low < high, got {bounds}")
    grid = np.zeros((resolution,) * 3, dtype=bool)
    if len(mesh.faces) == 0:
        return grid
    cell = (hi - lo) / resolution
    # sub-divide every face until its edges are shorter than a third of a cell
    vertices, faces = np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces)
    tri = vertices[faces]  # [F, 3, 3]
    longest = np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=-1).max(-1)
    points = [vertices]
    for n in np.unique(np.ceil(longest / (cell / 3)).astype(int)):
        group = tri[np.ceil(longest / (cell / 3)).astype(int) == n]
        if n <= 1:
            points.append(group.reshape(-1, 3))
            continue
        i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
        keep = i + j <= n
        a, b = i[keep] / n, j[keep] / n  # barycentric samples of the face
        w = np.stack([1 - a - b, a, b], -1)  # [S, 3]
        points.append(np.einsum("sk,fkd->fsd", w, group).reshape(-1, 3))
    index = np.floor((np.concatenate(points) - lo) / cell).astype(np.int64)
    inside = ((index >= 0) & (index < resolution)).all(-1)
    grid[tuple(index[inside].T)] = True
    return ndimage.binary_fill_holes(grid)


def voxel_iou(
    pred: trimesh.Trimesh,
    gt: trimesh.Trimesh,
    resolution: int = 110,
    bounds: tuple[float, float] = (-1.1, 1.1),
) -> float:
    """DISN's IoU (``test/test_iou.py``: both meshes voxelised solid with cells of
    ``2 / 110``, then the grids compared): :func:`solid_voxels` of both on the same
    ``resolution^3`` grid over ``bounds``, ``|P & G| / |P | G|``. Two empty meshes
    score 1. DISN voxelises with pymesh's ``VoxelGrid``; this follows it up to where
    that grid's cells fall."""
    a, b = solid_voxels(pred, resolution, bounds), solid_voxels(gt, resolution, bounds)
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)
