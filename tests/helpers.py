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
