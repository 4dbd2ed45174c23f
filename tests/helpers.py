"""Shared test inputs: random but valid cameras, built without the code under test."""

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from svrecon.cameras import PerspectiveCamera


def random_pose(batch, seed=0, dtype=torch.float64, distance=(3.0, 5.0)):
    """World-to-camera poses that put the world origin 3-5 units in front of the camera."""
    g = torch.Generator().manual_seed(seed)
    R = torch.from_numpy(Rotation.random(batch, random_state=seed).as_matrix()).to(dtype)
    t = torch.rand(batch, 3, generator=g, dtype=dtype) * 0.4 - 0.2
    t[:, 2] = (
        torch.rand(batch, generator=g, dtype=dtype) * (distance[1] - distance[0]) + distance[0]
    )
    return torch.cat([R, t[..., None]], dim=-1)


def random_intrinsics(batch, seed=0, dtype=torch.float64, size=(48, 64)):
    g = torch.Generator().manual_seed(seed + 100)
    H, W = size
    focal = torch.rand(batch, 2, generator=g, dtype=dtype) * 40 + 60
    principal = (
        torch.tensor([W / 2, H / 2], dtype=dtype)
        + torch.rand(batch, 2, generator=g, dtype=dtype) * 4
        - 2
    )
    K = torch.zeros(batch, 3, 3, dtype=dtype)
    K[:, 0, 0], K[:, 1, 1] = focal[:, 0], focal[:, 1]
    K[:, 0, 2], K[:, 1, 2] = principal[:, 0], principal[:, 1]
    K[:, 2, 2] = 1
    return focal, principal, K


def random_rays(batch=3, size=64, seed=0, radius=1.0, dtype=torch.float32):
    """Every pixel's ray ``[batch, size^2]`` of random cameras, clipped to the sphere of
    ``radius`` (through the library's camera, tested on its own in test_cameras)."""
    pose = random_pose(batch, seed=seed, dtype=dtype)
    focal, principal, _ = random_intrinsics(batch, seed=seed, dtype=dtype, size=(size, size))
    rays = PerspectiveCamera(focal, principal, pose).rays(size, size)
    return rays.intersect_sphere(radius)[0]


def projection_scores(item, size):
    """A reader's convention check: its item's ground-truth points projected by its own
    camera (pixels hit by at least one point) against its mask. Returns ``(iou,
    on_mask, covered)``: the IoU, the fraction of hit pixels on the mask dilated by one
    pixel, and the fraction of mask pixels next to a hit pixel (the one-pixel ring
    is where a pixel is partly covered but its centre is not)."""
    from svrecon.models import batch_camera

    camera = batch_camera({k: v[None] for k, v in item.items()})
    uv = camera.project(item["surface_points"][None])[0]
    cols, rows = uv[:, 0].floor().long(), uv[:, 1].floor().long()
    inside = (cols >= 0) & (cols < size) & (rows >= 0) & (rows < size)
    hit = torch.zeros(size, size, dtype=torch.bool)
    hit[rows[inside], cols[inside]] = True
    mask = item["mask"]

    def dilate(m):
        return torch.nn.functional.max_pool2d(m[None, None].float(), 3, 1, 1)[0, 0] > 0

    iou = float((hit & mask).sum() / (hit | mask).sum())
    on_mask = float((hit & dilate(mask)).sum() / hit.sum().clamp_min(1))
    covered = float((mask & dilate(hit)).sum() / mask.sum().clamp_min(1))
    return iou, on_mask, covered


def ray_hits(mesh, origin, dirs):
    """Whether each ray ``origin + s dirs[k]`` (s > 0) hits a triangle: Moller-Trumbore
    over every (ray, triangle) pair, a naive loop kept here."""
    tri = mesh.triangles  # [F, 3, 3]
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    hit = np.zeros(len(dirs), dtype=bool)
    for start in range(0, len(dirs), 4096):
        d = dirs[start : start + 4096, None, :]  # [R, 1, 3]
        p = np.cross(d, e2[None])
        det = np.einsum("rfk,fk->rf", p, e1)
        s = origin - tri[:, 0]  # [F, 3]
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.einsum("fk,rfk->rf", s, p) / det
            q = np.cross(s, e1)
            b = np.einsum("rk,fk->rf", d[:, 0], q) / det
            dist = np.einsum("fk,fk->f", e2, q)[None] / det
        ok = (np.abs(det) > 1e-12) & (a >= 0) & (b >= 0) & (a + b <= 1) & (dist > 0)
        hit[start : start + 4096] = ok.any(1)
    return hit


#: A tiny SDF-SRN for the readers' train-and-evaluate checks.
TINY_SDF_SRN = dict(encoder="conv", latent_dim=16, trunk_dims=(16, 16), hidden_dims=(16,),
                    num_rays=64, silhouette_samples=2, eikonal_points=64, bounding_radius=1.0,
                    silhouette_depths=None, start_depth=None)  # fmt: skip


def train_and_evaluate(data, out, model="sdf_srn", kwargs=None, protocol="procedural"):
    """Train ``model`` two steps on ``data`` through the engine, unchanged, then score
    two items under ``protocol`` (``None``: skip scoring); returns the summary."""
    import math

    from svrecon.engine import TrainConfig, evaluate_dataset, load_model, train

    kwargs = TINY_SDF_SRN if kwargs is None else kwargs
    config = TrainConfig(model=model, model_kwargs=kwargs, out_dir=str(out), iterations=2,
                         batch_size=2, checkpoint_every=2)  # fmt: skip
    history = train(config, progress=False, train_set=data)
    assert len(history) == 2 and all(math.isfinite(h["total"]) for h in history)
    if protocol is None:
        return None
    trained = load_model(out / "checkpoint.pt")
    summary = evaluate_dataset(data, protocol, model=trained, max_items=2).summary
    assert math.isfinite(summary["chamfer"])
    return summary
