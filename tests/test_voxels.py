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


def test_point_samples_are_voxel_centres_with_their_values():
    v = coloured_voxels(two_parts(), 16)
    points, occ, alb = v.point_samples()
    assert points.shape == (16**3, 3) and torch.equal(occ, v.occupancy.reshape(-1))
    gen = torch.Generator().manual_seed(0)
    points, occ, alb = v.point_samples(200, inside_fraction=0.5, generator=gen)
    assert occ.sum() == 100 and len(torch.unique(points, dim=0)) == 200
    index = ((points + 0.6) / (1.2 / 16) - 0.5).round().long()  # back to [i, j, k]
    assert torch.allclose(points, voxel_centres(16)[tuple(index.T)])
    assert torch.equal(occ, v.occupancy[tuple(index.T)])
    assert torch.equal(alb, v.albedo[tuple(index.T)])
    # More inside points asked than the grid has: all of them, the rest outside.
    inside = int(v.occupancy.sum())
    _, occ, _ = v.point_samples(inside + 50, inside_fraction=1.0, generator=gen)
    assert occ.sum() == inside
    with pytest.raises(ValueError, match="num_points"):
        v.point_samples(0)


def test_encoder_input_is_occupancy_and_occupied_colour():
    v = coloured_voxels(two_parts(), 8)
    x = v.encoder_input()
    assert x.shape == (4, 8, 8, 8) and torch.equal(x[0], v.occupancy)
    colour = x[1:].permute(1, 2, 3, 0)
    assert (colour[v.occupancy == 0] == 0).all()
    assert torch.equal(colour[v.occupancy > 0], v.albedo[v.occupancy > 0])


def test_stage_one_parts_fit_two_coloured_voxel_grids():
    """MSU's decoder pretraining (Eq. 8) assembled from the parts: the 3D encoder E'
    reads the coloured voxels, the branched decoders fit the point-value pairs."""
    from svrecon.encoders import ConvEncoder
    from svrecon.fields import BranchedAlbedo, BranchedOccupancy
    from svrecon.losses import occupancy_pretraining_losses

    torch.manual_seed(0)
    shapes = [two_parts(), make_shape("mug", np.random.default_rng(1))]
    grids = [coloured_voxels(s, 8) for s in shapes]
    voxels = torch.stack([g.encoder_input() for g in grids])
    samples = [g.point_samples() for g in grids]
    points, occ, alb = (torch.stack(x) for x in zip(*samples, strict=True))
    encoder = ConvEncoder(4, (8, 16), {"category": 3, "shape": 16, "albedo": 16}, spatial_dims=3)
    classifier = torch.nn.Linear(3, 2)
    shape_dec = BranchedOccupancy(16, 3, hidden_dims=(64, 32), num_branches=4)
    albedo_dec = BranchedAlbedo(16, 16, 3, hidden_dims=(32, 32), num_branches=4)
    params = [p for m in (encoder, classifier, shape_dec, albedo_dec) for p in m.parameters()]
    optimizer = torch.optim.Adam(params, lr=3e-3)
    labels = torch.tensor([0, 1])
    history = []
    for _ in range(400):
        codes = encoder(voxels)
        out = shape_dec(points, codes["shape"], codes["category"])
        out = albedo_dec(points, out, codes["shape"], codes["albedo"], codes["category"])
        terms = occupancy_pretraining_losses(out.occupancy, occ, out.albedo, alb,
                                             classifier(codes["category"]), labels)  # fmt: skip
        loss = sum(terms.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append({k: v.item() for k, v in terms.items()})
    assert history[-1]["occupancy"] < 0.1 * history[0]["occupancy"]
    assert history[-1]["albedo"] < 0.1 * history[0]["albedo"]
    assert history[-1]["category"] < 0.1


def test_a_dataset_gives_back_its_shapes_and_their_voxels(tiny_procedural):
    from svrecon.data import VOXEL_KEYS, ProceduralDataset, WithColouredVoxels

    data = ProceduralDataset(tiny_procedural, "train")
    for i in range(len(data)):
        shape, item = data.part_shape(i), data[i]
        assert shape.category == data.categories[int(item["label"])]
        assert shape.scale == pytest.approx(float(item["scale"]))
        # The stored surface points lie on the regenerated shape's surface.
        assert shape.sdf(item["surface_points"].double()).abs().max() < 1e-4
    with pytest.raises(IndexError):
        data.part_shape(len(data))
    voxels = WithColouredVoxels(data, 16, num_points=300, input_resolution=8)
    item = voxels[2]
    assert set(VOXEL_KEYS) <= set(item) and torch.equal(item["image"], data[2]["image"])
    assert item["voxels"].shape == (4, 8, 8, 8) and item["voxel_points"].shape == (300, 3)
    grid = coloured_voxels(data.part_shape(2), 16)
    index = ((item["voxel_points"] + 0.6) / (1.2 / 16) - 0.5).round().long()
    assert torch.equal(item["voxel_occupancy"], grid.occupancy[tuple(index.T)])
    assert torch.equal(item["voxel_albedo"], grid.albedo[tuple(index.T)])
    again = WithColouredVoxels(data, 16, num_points=300, input_resolution=8)[2]
    assert torch.equal(again["voxel_points"], item["voxel_points"])  # fixed for a seed
    assert voxels.categories == data.categories
    batch = torch.utils.data.default_collate([voxels[0], voxels[1]])
    assert batch["voxels"].shape == (2, 4, 8, 8, 8)
    with pytest.raises(TypeError, match="part_shape"):
        WithColouredVoxels([item], 16)
