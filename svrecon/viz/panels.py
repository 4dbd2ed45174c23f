"""Picture panels: input image, the extracted mesh from the input view and from novel
views, and the ground truth."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import trimesh

from ..cameras import Camera, PerspectiveCamera
from ..data import evaluation_indices, view_camera
from .raster import render_mesh, render_points

__all__ = ["novel_cameras", "reconstruction_row", "save_panel", "save_preview"]

PANEL_TITLES = ["input", "input view", "novel 1", "novel 2", "novel 3", "truth (novel 1)"]


def novel_cameras(size: int, elevation: float = 0.45, count: int = 3) -> PerspectiveCamera:
    """``count`` cameras around the object at azimuths ``2 pi (k + 0.5) / count`` and
    ``elevation`` (radians), in the procedural data's camera convention."""
    azimuth = torch.tensor([2 * math.pi * (k + 0.5) / count for k in range(count)])
    return view_camera(azimuth, torch.full((count,), elevation), size)


def reconstruction_row(
    image: torch.Tensor,
    mesh: trimesh.Trimesh,
    input_camera: Camera | None,
    novel: Camera,
    truth: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """One panel row of ``[3, H, W]`` images: ``image``, the mesh from ``input_camera``
    (``[1]``; skipped if ``None``), from each of ``novel`` ``[V]``, and ``truth``."""
    size = image.shape[-1]
    row = [image.detach().float().cpu()]
    if input_camera is not None:
        row.append(render_mesh(mesh, input_camera, size)[0])
    row.extend(render_mesh(mesh, novel, size))
    if truth is not None:
        row.append(truth.detach().float().cpu())
    return row


def save_panel(rows: list[list[torch.Tensor]], path: str | Path, titles: list[str]) -> Path:
    """Write a grid of ``[3, H, W]`` images in ``[0, 1]`` as a PNG (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.6 * n_cols, 1.6 * n_rows), squeeze=False)
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(row):
                ax.imshow(row[c].permute(1, 2, 0).clamp(0, 1).cpu().numpy())
            else:
                ax.axis("off")
            if r == 0 and c < len(titles):
                ax.set_title(titles[c], fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _spread(dataset, count: int) -> list[dict]:
    """Up to ``count`` evaluation items, one per category first (in the dataset's
    order), then the next ones."""
    chosen, seen, rest = [], set(), []
    for i in evaluation_indices(dataset):
        item = dataset[i]
        label = int(item["label"])
        (rest if label in seen else chosen).append(item)
        seen.add(label)
        if len(chosen) == count or len(rest) >= count:
            break
    return (chosen + rest)[:count]


@torch.no_grad()
def save_preview(model, dataset, path, items: int = 4, resolution: int = 64) -> Path:
    """Panel for a few items of ``dataset`` (different categories first): input | the
    extracted mesh from the input view and three novel views | the ground-truth
    surface samples from novel view 1."""
    from ..models import batch_camera

    device = next(model.parameters()).device
    rows = []
    for item in _spread(dataset, items):
        batch = {k: (v[None].to(device) if isinstance(v, torch.Tensor) else v)
                 for k, v in item.items()}  # fmt: skip
        camera = batch_camera(batch)
        (mesh,) = model.reconstruct(
            batch["image"], camera, resolution=resolution, masks=batch.get("mask")
        )
        size = item["image"].shape[-1]
        novel = novel_cameras(size)
        truth = None
        if "surface_normals" in item:
            truth = render_points(item["surface_points"], item["surface_normals"], novel[0], size)
            truth = truth[0]
        rows.append(reconstruction_row(item["image"], mesh, camera.to("cpu"), novel, truth))
    return save_panel(rows, path, PANEL_TITLES)
