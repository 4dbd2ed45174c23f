"""``svrecon demo``: reconstruct held-out procedural shapes with every shipped
checkpoint, write meshes, input images and picture panels, and print Chamfer and
F-score against the truth (the procedural protocol, through the one evaluation path)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from ..data import (
    CATEGORIES,
    ELEVATION_PRIORS,
    make_shape,
    random_lighting,
    render_shape,
    shape_samples,
    view_camera,
)
from ..mesh import export_mesh
from ..metrics import PROTOCOLS, evaluate
from ..models import MODELS, rotate_mesh
from ..viz import novel_cameras, part_colors, reconstruction_row, render_mesh, save_panel
from ..viz.panels import PANEL_TITLES
from .checkpoints import load_model

__all__ = ["held_out_shapes", "run_demo", "save_input_image"]


def held_out_shapes(shapes: int, seed: int, size: int) -> list[dict]:
    """``shapes`` new shapes (categories in turn) with one rendered input view each.
    Their seed differs from the training set's, so none of them was trained on."""
    out = []
    for k in range(shapes):
        category = CATEGORIES[k % len(CATEGORIES)]
        rng = np.random.default_rng([seed, k])
        shape = make_shape(category, rng)
        lo, hi = ELEVATION_PRIORS[category]
        azimuth = rng.uniform(0, 2 * math.pi)
        elevation = math.radians(rng.uniform(lo, hi))
        camera = view_camera(
            torch.tensor([azimuth], dtype=torch.float64),
            torch.tensor([elevation], dtype=torch.float64),
            size,
        )
        light = random_lighting(rng, (camera.camera_center[0] / 2.732).numpy())
        render = render_shape(shape, camera, size, torch.from_numpy(light)[None])
        gt = torch.from_numpy(shape_samples(shape, rng, num_surface=4096)["surface_points"])
        out.append({
            "name": f"{k:02d}_{category}", "category": category, "shape": shape,
            "image": render.rgb.float(), "mask": render.mask, "camera": camera.to(torch.float32),
            "azimuth": math.degrees(azimuth), "elevation": math.degrees(elevation),
            "surface_points": gt,
        })  # fmt: skip
    return out


def save_input_image(image: torch.Tensor, mask: torch.Tensor, path: Path) -> Path:
    """Write ``image`` ``[3, H, W]`` in ``[0, 1]`` as an RGBA PNG whose alpha is ``mask``
    ``[H, W]`` (what ``svrecon reconstruct`` reads back)."""
    from PIL import Image

    rgb = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    alpha = (mask.to(torch.uint8) * 255).numpy()[..., None]
    Image.fromarray(np.concatenate([rgb, alpha], -1), "RGBA").save(path)
    return path


def run_demo(out: Path, shapes: int = 6, seed: int = 12345, size: int = 64) -> dict:
    """Run the demo into ``out``; returns ``{model: [per-shape metrics]}``."""
    torch.manual_seed(0)
    out = Path(out)
    (out / "meshes").mkdir(parents=True, exist_ok=True)
    (out / "inputs").mkdir(parents=True, exist_ok=True)
    protocol = PROTOCOLS["procedural"]
    threshold = protocol.thresholds[1]
    cases = held_out_shapes(shapes, seed, size)
    novel = novel_cameras(size)
    inputs = {}
    light = torch.from_numpy(random_lighting(np.random.default_rng(0), np.array([0, 0, 1.0])))
    for case in cases:
        save_input_image(case["image"][0], case["mask"][0], out / "inputs" / f"{case['name']}.png")
        inputs[case["name"]] = {"azimuth": case["azimuth"], "elevation": case["elevation"]}
        case["truth"] = render_shape(case["shape"], novel[0], size, light[None]).rgb[0].float()
    (out / "inputs" / "cameras.json").write_text(json.dumps(inputs, indent=1))
    print(f"input images (RGBA, alpha = mask) and their cameras: {out / 'inputs'}")
    results = {}
    for name, spec in MODELS.items():
        path = spec.checkpoint_path()
        if path is None:
            print(f"\n{name}: no shipped checkpoint in this version")
            continue
        model = load_model(path).eval()
        rows, scores = [], []
        print(f"\n{name}: Chamfer (lower is better) and F-score@{threshold} per held-out shape")
        for case in cases:
            image, camera = case["image"], case["camera"]
            with torch.no_grad():  # the mesh the evaluation path extracts, scored as is
                field = model.field_for(image, camera)
                mesh = protocol.extract(field, level=model.surface_level, kind=spec.surface_kind)
                colours = None
                if model.num_part_labels is not None:
                    centres = torch.as_tensor(np.array(mesh.triangles_center)).to(image)
                    labels = model.segment(image, centres[None])[0] if len(centres) else None
                    colours = (
                        np.zeros((0, 3)) if labels is None else part_colors(labels.cpu().numpy())
                    )
                # a model that estimates the viewpoint is scored view-centric: its mesh
                # rotated into the input camera's world frame by R_cam^T R_estimated
                rotation = model.canonical_to_world(image, camera, case["mask"])
                if rotation is not None:
                    mesh = rotate_mesh(mesh, rotation[0])
            export_mesh(mesh, out / "meshes" / f"{name}_{case['name']}.obj")
            score = evaluate(mesh, case["surface_points"], protocol)
            scores.append(score)
            print(
                f"  {case['category']:9s} chamfer {score['chamfer']:.4f}  "
                f"fscore {score[f'fscore@{threshold}']:.3f}"
            )
            row = reconstruction_row(image[0], mesh, camera, novel, case["truth"])
            if colours is not None:  # the segmentation: faces coloured by part label
                row.append(render_mesh(mesh, novel[0], size, face_colors=colours)[0])
            rows.append(row)
        mean_cd = float(np.mean([s["chamfer"] for s in scores]))
        mean_f = float(np.mean([s[f"fscore@{threshold}"] for s in scores]))
        print(f"  mean      chamfer {mean_cd:.4f}  fscore {mean_f:.3f}")
        titles = PANEL_TITLES + (["parts (novel 1)"] if model.num_part_labels else [])
        print(f"  panel: {save_panel(rows, out / f'demo_{name}.png', titles)}")
        results[name] = scores
    example = next(iter(inputs), None)
    if example is not None:
        cam = inputs[example]
        print(
            f"\nreconstruct one yourself: svrecon reconstruct {out / 'inputs' / example}.png "
            f"--azimuth {cam['azimuth']:.1f} --elevation {cam['elevation']:.1f}"
        )
    return results
