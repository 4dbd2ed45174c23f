"""Evaluating assembled models on the procedural dataset: metrics under a protocol,
the fitted-sphere baseline, and picture panels of reconstructions."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import trimesh

from .cameras import Camera, PerspectiveCamera
from .data import CATEGORIES, ProceduralDataset, view_camera
from .fields import FieldOutput
from .metrics import PROTOCOLS, average_results, evaluate
from .models import ReconstructionModel, batch_camera
from .renderers import SphereTracer

__all__ = [
    "evaluate_model",
    "evaluate_sphere",
    "fit_sphere_baseline",
    "render_views",
    "save_panel",
    "save_preview",
    "sphere_mesh",
]


def _first_views(dataset: ProceduralDataset, max_items: int | None) -> list[int]:
    """One item per shape (its first view), spread over the categories."""
    step = 1 if dataset.multiview else dataset.views
    indices = list(range(0, len(dataset), step))
    return indices if max_items is None else indices[:max_items]


def _item_batch(dataset, i: int, device) -> dict:
    item = dataset[i]
    return {k: (v[None].to(device) if isinstance(v, torch.Tensor) else v) for k, v in item.items()}


def evaluate_model(
    model: ReconstructionModel,
    dataset: ProceduralDataset,
    protocol: str = "procedural",
    max_items: int | None = None,
) -> dict[str, float]:
    """Reconstruct the first view of each shape in ``dataset`` and score the mesh
    against the shape's ground-truth surface points; category-averaged means."""
    device = next(model.parameters()).device
    results, categories = [], []
    for i in _first_views(dataset, max_items):
        batch = _item_batch(dataset, i, device)
        camera = batch_camera(batch)
        (mesh,) = model.reconstruct(batch["image"], camera, resolution=_resolution(protocol))
        results.append(_score(mesh, batch["surface_points"][0], protocol))
        categories.append(CATEGORIES[int(batch["label"])])
    return {**average_results(results, protocol, categories), "items": float(len(results))}


def _resolution(protocol: str) -> int:
    return PROTOCOLS[protocol].resolution


def _score(mesh: trimesh.Trimesh, gt_points: torch.Tensor, protocol: str) -> dict[str, float]:
    if len(mesh.faces) == 0:  # no surface predicted: score it as the worst case, not NaN
        return _empty_score(protocol)
    return evaluate(mesh, gt_points.detach().cpu().double(), protocol)


def _empty_score(protocol: str) -> dict[str, float]:
    p = PROTOCOLS[protocol]
    out = {"accuracy": 1.0, "completeness": 1.0, "chamfer": 1.0}
    for t in p.thresholds:
        out.update({f"fscore@{t}": 0.0, f"precision@{t}": 0.0, f"recall@{t}": 0.0})
    return out


def sphere_mesh(radius: float) -> trimesh.Trimesh:
    """An icosphere of ``radius`` about the origin (the baseline's prediction)."""
    return trimesh.creation.icosphere(subdivisions=5, radius=radius)


def fit_sphere_baseline(
    train: ProceduralDataset, radii=None, max_items: int | None = None
) -> float:
    """The radius of the origin-centred sphere with the lowest mean Chamfer distance to
    the training shapes' surface points (a grid search; the baseline the models must
    beat). Completeness is exact (``||p| - r|``); accuracy uses the sphere mesh's
    vertices, as the protocol would sample them."""
    from scipy.spatial import cKDTree

    radii = np.linspace(0.05, 0.6, 56) if radii is None else np.asarray(radii)
    directions = sphere_mesh(1.0).vertices
    totals = np.zeros(len(radii))
    items = _first_views(train, max_items)
    candidates = radii[:, None, None] * directions[None]  # [R, V, 3], every radius at once
    for i in items:
        cloud = train[i]["surface_points"].double().numpy()
        norms = np.linalg.norm(cloud, axis=1)
        nearest = cKDTree(cloud).query(candidates.reshape(-1, 3), workers=-1)[0]
        accuracy = nearest.reshape(len(radii), -1).mean(axis=1)
        completeness = np.abs(norms[None] - radii[:, None]).mean(axis=1)
        totals += (accuracy + completeness) / 2
    return float(radii[int(np.argmin(totals))])


def evaluate_sphere(
    radius: float, dataset: ProceduralDataset, protocol: str = "procedural", max_items=None
) -> dict[str, float]:
    """The sphere baseline scored exactly as :func:`evaluate_model` scores a model."""
    mesh = sphere_mesh(radius)
    results, categories = [], []
    for i in _first_views(dataset, max_items):
        item = dataset[i]
        results.append(_score(mesh, item["surface_points"], protocol))
        categories.append(CATEGORIES[int(item["label"])])
    return {**average_results(results, protocol, categories), "items": float(len(results))}


@torch.no_grad()
def render_views(field, cameras: Camera, size: int) -> torch.Tensor:
    """Grey Lambertian renders ``[V, 3, size, size]`` of a batch-1 SDF ``field`` seen by
    each of ``cameras`` (light from the camera, white background)."""
    images = []
    for v in range(len(cameras)):
        rays, _ = cameras[v].rays(size, size).intersect_sphere(0.6)

        def traced(points):
            out = field(points)
            return out if isinstance(out, FieldOutput) else FieldOutput(sdf=out)

        out = SphereTracer(max_steps=96, tolerance=1e-4, step_scale=0.9)(traced, rays)
        light = -rays.directions + torch.tensor([0.0, -0.6, 0.0], dtype=rays.directions.dtype)
        light = light / light.norm(dim=-1, keepdim=True)
        shade = 0.25 + 0.7 * (out.normals * light).sum(-1).clamp_min(0)
        grey = torch.where(out.mask, shade, torch.ones_like(shade))
        images.append(grey.reshape(size, size)[None].expand(3, -1, -1))
    return torch.stack(images)


def _novel_cameras(elevation: float, size: int, count: int = 3) -> PerspectiveCamera:
    azimuth = torch.tensor([2 * math.pi * (k + 0.5) / count for k in range(count)])
    return view_camera(azimuth, torch.full((count,), elevation), size)


def save_panel(rows: list[list[torch.Tensor]], path: str | Path, titles: list[str]) -> Path:
    """Write a grid of ``[3, H, W]`` images in ``[0, 1]`` as a PNG (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_rows, n_cols = len(rows), len(rows[0])
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.6 * n_cols, 1.6 * n_rows), squeeze=False)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            ax = axes[r][c]
            ax.imshow(image.permute(1, 2, 0).clamp(0, 1).cpu().numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


@torch.no_grad()
def save_preview(
    model: ReconstructionModel, dataset: ProceduralDataset, path, items: int = 4
) -> Path:
    """Panel: input | the reconstruction from three novel views, for a few test shapes."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    rows = []
    size = int(dataset.settings["image_size"])
    picks = _first_views(dataset, None)
    picks = picks[:: max(1, len(picks) // items)][:items]
    for i in picks:
        batch = _item_batch(dataset, i, device)
        field = model.field_for(batch["image"], batch_camera(batch))
        views = render_views(field, _novel_cameras(0.4, size).to(device), size)
        rows.append([batch["image"][0], *views])
    model.train(was_training)
    return save_panel(rows, path, ["input", "novel 1", "novel 2", "novel 3"])
