"""Area-weighted surface sampling and mesh export."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    import trimesh

__all__ = ["export_mesh", "sample_surface"]


def sample_surface(
    mesh: trimesh.Trimesh, n: int, seed: int = 0, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points uniformly distributed over the surface (area-weighted), and their
    face normals, as tensors ``[n, 3]``; the same ``seed`` gives the same points.

    Raises ``ValueError`` for an empty mesh (the evaluation protocols decide what an
    empty prediction scores).
    """
    if n < 1:
        raise ValueError(f"n: expected a positive number of points, got {n}")
    if len(mesh.faces) == 0 or mesh.area <= 0:
        raise ValueError("mesh: has no surface to sample (0 faces or zero area)")
    import trimesh.sample

    points, face_index = trimesh.sample.sample_surface(mesh, n, seed=np.random.default_rng(seed))
    normals = mesh.face_normals[face_index]
    return torch.as_tensor(np.asarray(points), dtype=dtype), torch.as_tensor(normals, dtype=dtype)


def export_mesh(mesh: trimesh.Trimesh, path: str | Path) -> Path:
    """Write ``mesh`` to ``.obj``, ``.ply`` or ``.glb`` (by the suffix) with trimesh."""
    path = Path(path)
    if path.suffix.lower() not in (".obj", ".ply", ".glb"):
        raise ValueError(f"path: expected a .obj, .ply or .glb file, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    mesh.export(path)
    return path
