"""Shared test inputs: random but valid cameras, built without the code under test."""

import torch
from scipy.spatial.transform import Rotation


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
