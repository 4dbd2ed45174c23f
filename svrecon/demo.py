"""``svrecon demo``: reconstruct held-out procedural shapes with the shipped checkpoints,
write meshes and picture panels, and print Chamfer and F-score against the truth."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from .data import (
    CATEGORIES,
    ELEVATION_PRIORS,
    make_shape,
    random_lighting,
    render_shape,
    shape_samples,
    view_camera,
)
from .evaluation import _novel_cameras, _score, render_views, save_panel
from .mesh import export_mesh
from .metrics import PROTOCOLS

__all__ = ["run_demo"]


def _held_out(shapes: int, seed: int, size: int):
    """``shapes`` new shapes (categories in turn) with one rendered input view each.
    Their seed differs from the training set's, so none of them was trained on."""
    out = []
    for k in range(shapes):
        category = CATEGORIES[k % len(CATEGORIES)]
        rng = np.random.default_rng([seed, k])
        shape = make_shape(category, rng)
        lo, hi = ELEVATION_PRIORS[category]
        azimuth = torch.tensor([rng.uniform(0, 2 * math.pi)], dtype=torch.float64)
        elevation = torch.tensor([math.radians(rng.uniform(lo, hi))], dtype=torch.float64)
        camera = view_camera(azimuth, elevation, size)
        light = random_lighting(rng, (camera.camera_center[0] / 2.732).numpy())
        render = render_shape(shape, camera, size, torch.from_numpy(light)[None])
        gt = torch.from_numpy(shape_samples(shape, rng, num_surface=4096)["surface_points"])
        out.append((category, shape, render.rgb.float(), camera.to(torch.float32), gt))
    return out


def run_demo(out: Path, shapes: int = 6, seed: int = 12345, size: int = 64) -> dict:
    """Run the demo into ``out``; returns ``{model: [per-shape metrics]}``."""
    from .cli import shipped_checkpoint
    from .train import load_model

    torch.manual_seed(0)
    out = Path(out)
    (out / "meshes").mkdir(parents=True, exist_ok=True)
    protocol = "procedural"
    threshold = PROTOCOLS[protocol].thresholds[1]
    cases = _held_out(shapes, seed, size)
    novel = _novel_cameras(0.45, size)
    gt_views = []
    for _, shape, _, _, _ in cases:
        light = torch.from_numpy(random_lighting(np.random.default_rng(0), np.array([0, 0, 1.0])))
        gt_views.append(render_shape(shape, novel[0], size, light[None]).rgb[0].float())
    results = {}
    for name in ("disn", "sdf_srn"):
        if not shipped_checkpoint(name).exists():
            print(f"\n{name}: no shipped checkpoint in this version (docs/procedural.md)")
            continue
        model = load_model(shipped_checkpoint(name)).eval()
        rows, scores = [], []
        print(f"\n{name}: Chamfer (lower is better) and F-score@{threshold} per held-out shape")
        for (category, _, image, camera, gt), gt_view in zip(cases, gt_views, strict=True):
            (mesh,) = model.reconstruct(image, camera, resolution=64)
            export_mesh(mesh, out / "meshes" / f"{name}_{category}.obj")
            score = _score(mesh, gt, protocol)
            scores.append(score)
            print(
                f"  {category:9s} chamfer {score['chamfer']:.4f}  "
                f"fscore {score[f'fscore@{threshold}']:.3f}"
            )
            with torch.no_grad():
                views = render_views(model.field_for(image, camera), novel, size)
            rows.append([image[0], *views, gt_view])
        mean_cd = float(np.mean([s["chamfer"] for s in scores]))
        mean_f = float(np.mean([s[f"fscore@{threshold}"] for s in scores]))
        print(f"  mean      chamfer {mean_cd:.4f}  fscore {mean_f:.3f}")
        titles = ["input", "novel 1", "novel 2", "novel 3", "truth (novel 1)"]
        path = save_panel(rows, out / f"demo_{name}.png", titles)
        print(f"  panel: {path}")
        results[name] = scores
    return results
