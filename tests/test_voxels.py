"""Coloured voxel grids (MSU's pretraining targets) against the analytic shapes."""

import math

import numpy as np
import pytest
import torch

from svrecon.data import Part, PartShape, coloured_voxels, make_shape, voxel_centres


def two_parts():
    box = Part("box", np.array([0.15, 0.2, 0.2]), translation=np.array([-0.3, 0.0, 0.0]),
               albedo=np.array([1.0, 0.0, 0.0]))  # fmt: skip
    ball = Part("sphere", np.array([0.25]), translation=np.array([0.25, 0.1, 0.0]),
                albedo=np.array([0.0, 0.0, 1.0]))  # fmt: skip
    return PartShape("chair", [box, ball])


def test_voxel_grid_index_is_xyz():
    c = voxel_centres(4, bound=1.0, dtype=torch.float64)
    assert c.shape == (4, 4, 4, 3)
    assert c[0, 0, 0].tolist() == [-0.75, -0.75, -0.75]
    assert c[3, 1, 2].tolist() == [0.75, -0.25, 0.25]  # [i, j, k] -> (x, y, z)
    with pytest.raises(ValueError, match="resolution"):
        voxel_centres(0)


def test_occupancy_albedo_and_parts_match_a_naive_evaluation():
    shape = two_parts()
    v = coloured_voxels(shape, 24, bound=0.6)
    lo, cell = -0.6, 1.2 / 24
    gen = np.random.default_rng(0)
    for i, j, k in gen.integers(0, 24, size=(300, 3)):
        x, y, z = (lo + (np.array([i, j, k]) + 0.5) * cell).tolist()
        box = np.linalg.norm(np.maximum(np.abs([x + 0.3, y, z]) - [0.15, 0.2, 0.2], 0))
        box += min(max(abs(x + 0.3) - 0.15, abs(y) - 0.2, abs(z) - 0.2), 0)
        ball = math.dist((x, y, z), (0.25, 0.1, 0.0)) - 0.25
        if min(abs(box), abs(ball)) < 1e-6:
            continue  # on a surface: the sign is a rounding question
        assert v.occupancy[i, j, k] == float(min(box, ball) < 0)
        part = int(ball < box)
        assert v.part[i, j, k] == part
        assert v.albedo[i, j, k].tolist() == ([1.0, 0.0, 0.0] if part == 0 else [0.0, 0.0, 1.0])


def test_volume_converges_to_the_analytic_one():
    ball = PartShape("mug", [Part("sphere", np.array([0.4]))])
    for resolution, tol in ((16, 0.1), (64, 0.02)):
        v = coloured_voxels(ball, resolution, bound=0.5)
        volume = v.occupancy.sum().item() * (1.0 / resolution) ** 3
        assert volume == pytest.approx(4 / 3 * math.pi * 0.4**3, rel=tol)


def test_procedural_shapes_fill_the_grid_sensibly():
    shape = make_shape("table", np.random.default_rng(3))
    coarse, fine = coloured_voxels(shape, 16), coloured_voxels(shape, 32)
    assert 0 < coarse.occupancy.mean() < 0.5 and coarse.resolution == 16
    assert fine.part[fine.occupancy > 0].unique().numel() == len(shape.parts)
    assert ((fine.albedo >= 0) & (fine.albedo <= 1)).all()
