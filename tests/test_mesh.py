"""Mesh extraction, sampling and export against analytic shapes and trimesh."""

import math

import numpy as np
import pytest
import torch
import trimesh

from svrecon.fields import FieldOutput, SDFNetwork, field_from_function
from svrecon.mesh import export_mesh, extract_mesh, grid_points, sample_surface
from svrecon.metrics import chamfer_distance

from .reference.analytic import box_sdf, sphere_sdf

SHAPES = {
    "sphere": field_from_function(lambda p: sphere_sdf(p, radius=0.5)),
    "box": field_from_function(lambda p: box_sdf(p, half=(0.5, 0.3, 0.4))),
    "thin_plate": field_from_function(lambda p: box_sdf(p, half=(0.45, 0.012, 0.4))),
}


def test_sphere_mesh_is_accurate_and_watertight():
    mesh = extract_mesh(SHAPES["sphere"], resolution=128, bounds=(-0.6, 0.6))
    radii = np.linalg.norm(mesh.vertices, axis=1)
    assert np.abs(radii - 0.5).max() < 1e-3
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume == pytest.approx(4 / 3 * math.pi * 0.5**3, rel=2e-3)  # outward faces
    # Outward normals: each face normal points away from the centre.
    assert ((mesh.face_normals * mesh.triangles_center).sum(-1) > 0).all()
    assert mesh.metadata["field_evaluations"] == 129**3


@pytest.mark.parametrize("shape", ["sphere", "box", "thin_plate"])
def test_hierarchical_equals_dense_with_5x_fewer_evaluations(shape):
    dense = extract_mesh(SHAPES[shape], 128, (-0.6, 0.6), method="dense")
    fast = extract_mesh(SHAPES[shape], 128, (-0.6, 0.6), method="hierarchical")
    assert len(dense.vertices) == len(fast.vertices) and len(dense.faces) == len(fast.faces)
    cd = chamfer_distance(
        torch.from_numpy(dense.vertices)[None], torch.from_numpy(fast.vertices)[None]
    )
    assert cd.chamfer.item() < 1e-6
    ratio = dense.metadata["field_evaluations"] / fast.metadata["field_evaluations"]
    assert ratio >= 5, ratio


def test_seed_scaling_shrinks_by_n_over_n_plus_one():
    lo = -0.6
    correct = extract_mesh(SHAPES["box"], 32, (lo, 0.6))
    seed = extract_mesh(SHAPES["box"], 32, (lo, 0.6), seed_scaling=True)
    expected = (correct.vertices - lo) * 32 / 33 + lo
    assert np.allclose(seed.vertices, expected, atol=1e-12)
    # The box's x extent: correct is 1.0 (half 0.5), the seed code's is smaller.
    assert np.ptp(correct.vertices[:, 0]) == pytest.approx(1.0, abs=1e-6)
    assert np.ptp(seed.vertices[:, 0]) < 0.98


def test_grid_points_match_linspace():
    points = grid_points(4, ((-1, 0, 0), (1, 2, 4)))
    assert points.shape == (125, 3)
    assert torch.allclose(points[:5, 2], torch.linspace(0, 4, 5, dtype=torch.float64))
    assert torch.allclose(points[::25, 0], torch.linspace(-1, 1, 5, dtype=torch.float64))


def occupancy_field(points):
    # A svrecon-style field: [1, N, 3] -> FieldOutput with an occupancy.
    if points.dim() != 3:
        raise ValueError("points: expected shape [B, N, 3]")
    return FieldOutput(occupancy=torch.sigmoid(-100 * sphere_sdf(points, radius=0.5)))


@pytest.mark.parametrize("method", ["dense", "hierarchical"])
def test_occupancy_field_output_uses_level_one_half(method):
    mesh = extract_mesh(occupancy_field, 64, (-0.6, 0.6), method=method)
    radii = np.linalg.norm(mesh.vertices, axis=1)
    assert np.abs(radii - 0.5).max() < 2e-3  # the 0.5 level set is the sphere
    assert mesh.is_watertight and mesh.volume > 0
    dense = extract_mesh(occupancy_field, 64, (-0.6, 0.6))
    assert len(mesh.vertices) == len(dense.vertices)


def test_bound_svrecon_field():
    torch.manual_seed(0)
    net = SDFNetwork(latent_dim=8, hidden_dim=64, num_layers=4, skip_layers=(2,), sphere_radius=0.5)
    code = torch.zeros(1, 8)
    mesh = extract_mesh(net.bind(code), 32, (-1, 1), method="hierarchical", lipschitz=2.0)
    assert len(mesh.faces) > 0 and mesh.is_watertight
    assert np.abs(np.linalg.norm(mesh.vertices, axis=1) - 0.5).mean() < 0.05


@pytest.mark.parametrize("value", [1.0, -1.0])
@pytest.mark.parametrize("method", ["dense", "hierarchical"])
def test_field_without_surface_gives_empty_mesh(value, method):
    mesh = extract_mesh(field_from_function(lambda p: torch.full(p.shape[:1], value)), 32,
                        method=method)  # fmt: skip
    assert len(mesh.vertices) == 0 and len(mesh.faces) == 0
    assert mesh.metadata["field_evaluations"] > 0
    with pytest.raises(ValueError, match="no surface"):
        sample_surface(mesh, 10)


def test_extract_mesh_rejects_bad_arguments():
    with pytest.raises(ValueError, match="bounds"):
        extract_mesh(SHAPES["sphere"], 16, (0.6, -0.6))
    with pytest.raises(ValueError, match="method"):
        extract_mesh(SHAPES["sphere"], 16, method="sparse")
    with pytest.raises(ValueError, match="power of 2"):
        extract_mesh(SHAPES["sphere"], 48, method="hierarchical", coarse_resolution=20)
    with pytest.raises(ValueError, match="NaN"):
        extract_mesh(field_from_function(lambda p: torch.full(p.shape[:1], float("nan"))), 8)
    with pytest.raises(ValueError, match="infinite"):
        extract_mesh(field_from_function(lambda p: torch.full(p.shape[:1], float("inf"))), 8)
    # One contract: a plain function of [N, 3] points is not a field until wrapped.
    with pytest.raises(TypeError, match="field_from_function"):
        extract_mesh(lambda p: sphere_sdf(p, radius=0.5), 8)
    with pytest.raises(ValueError, match="kind: asked for 'occupancy'"):
        extract_mesh(SHAPES["sphere"], 8, kind="occupancy")


def test_sample_surface_is_seeded_and_area_weighted():
    box = trimesh.creation.box(extents=(2.0, 1.0, 0.5))
    a, normals = sample_surface(box, 20000, seed=3)
    b, _ = sample_surface(box, 20000, seed=3)
    c, _ = sample_surface(box, 20000, seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c)
    # Faces with normal +-z have area 2 * (2 * 1) of the total 2 * (2 + 1 + 0.5) = 7.
    share_z = (normals[:, 2].abs() > 0.5).float().mean().item()
    expected = 4 / 7
    sigma = math.sqrt(expected * (1 - expected) / 20000)
    assert abs(share_z - expected) < 4 * sigma
    assert torch.allclose(a.abs().max(0).values, torch.tensor([1.0, 0.5, 0.25]), atol=1e-5)


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".glb"])
def test_export_round_trip(tmp_path, suffix):
    mesh = extract_mesh(SHAPES["sphere"], 16)
    path = export_mesh(mesh, tmp_path / f"out{suffix}")
    loaded = trimesh.load(path, force="mesh")
    assert len(loaded.faces) == len(mesh.faces)
    assert np.allclose(np.sort(loaded.vertices, axis=0), np.sort(mesh.vertices, axis=0), atol=1e-5)
    with pytest.raises(ValueError, match="obj"):
        export_mesh(mesh, tmp_path / "out.stl")


def test_auto_extraction_gives_the_dense_mesh_whichever_search_it_picks():
    torch.manual_seed(0)
    net = SDFNetwork(latent_dim=0, hidden_dim=32, num_layers=3, skip_layers=(), sphere_radius=0.4)
    for field in (field_from_function(lambda p: p.norm(dim=-1) - 0.45), lambda p: net(p)):
        dense = extract_mesh(field, 32, method="dense", lipschitz=1.5)
        auto = extract_mesh(field, 32, method="auto", coarse_resolution=8, lipschitz=1.5)
        assert dense.metadata["extraction"] == "dense"
        assert auto.metadata["extraction"] in ("hierarchical", "dense after hierarchical")
        np.testing.assert_allclose(np.sort(auto.vertices, 0), np.sort(dense.vertices, 0))
        assert len(auto.faces) == len(dense.faces)
    hier = extract_mesh(field, 32, method="hierarchical", coarse_resolution=8, lipschitz=1.5)
    assert hier.metadata["extraction"] == "hierarchical"
    with pytest.raises(ValueError, match="'dense', 'hierarchical' or 'auto'"):
        extract_mesh(field, 32, method="fast")


def test_auto_remembers_the_bookkeeping_cost_and_then_decides_after_the_coarse_grid(
    monkeypatch,
):
    from svrecon.mesh import extract

    sphere = field_from_function(lambda p: p.norm(dim=-1) - 0.45)
    dense = extract_mesh(sphere, 32, method="dense")
    monkeypatch.setitem(extract._BOOKKEEPING, "per_corner", None)
    extract_mesh(sphere, 32, method="auto", coarse_resolution=8)  # measures it
    assert extract._BOOKKEEPING["per_corner"] > 0
    # bookkeeping said to cost a second per corner: dense wins before any refinement,
    # so the field sees the coarse grid, one probe point and the dense grid, no more
    monkeypatch.setitem(extract._BOOKKEEPING, "per_corner", 1.0)
    auto = extract_mesh(sphere, 32, method="auto", coarse_resolution=8)
    assert auto.metadata["extraction"] == "dense after hierarchical"
    assert auto.metadata["field_evaluations"] == 9**3 + 1 + 33**3
    np.testing.assert_allclose(np.sort(auto.vertices, 0), np.sort(dense.vertices, 0))
    # free bookkeeping: the hierarchical search goes on past the coarse grid
    monkeypatch.setitem(extract._BOOKKEEPING, "per_corner", 0.0)
    auto = extract_mesh(sphere, 32, method="auto", coarse_resolution=8)
    assert auto.metadata["field_evaluations"] not in (9**3 + 1 + 33**3, 9**3 + 1)


def test_sparse_corner_points_reach_the_field_contiguous():
    from svrecon.mesh.extract import _corner_points

    index = np.argwhere(np.ones((3, 3, 3), dtype=bool))  # a transposed view
    points = _corner_points(index, 2, np.full(3, -1.0), np.full(3, 1.0))
    assert points.flags["C_CONTIGUOUS"] and torch.as_tensor(points).is_contiguous()


def _silhouette_cameras(dtype):
    from svrecon.cameras import PerspectiveCamera

    from .helpers import random_intrinsics, random_pose

    _, _, K = random_intrinsics(3, seed=4, dtype=dtype, size=(40, 56))
    return PerspectiveCamera.from_intrinsics(K, random_pose(3, seed=4, dtype=dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mesh_silhouette_matches_ray_casting(dtype):
    from svrecon.mesh import mesh_silhouette

    from .helpers import ray_hits

    mesh = trimesh.util.concatenate([trimesh.creation.icosphere(2, 0.6),
                                     trimesh.creation.box((1.4, 0.2, 0.3))])  # fmt: skip
    camera = _silhouette_cameras(dtype)
    masks = mesh_silhouette(torch.as_tensor(mesh.vertices), torch.as_tensor(mesh.faces),
                            camera, (40, 56))  # fmt: skip
    assert masks.shape == (3, 40, 56) and masks.dtype == torch.bool
    cols, rows = np.meshgrid(np.arange(56) + 0.5, np.arange(40) + 0.5)
    pixels = np.stack([cols, rows, np.ones_like(cols)], -1).reshape(-1, 3)
    for b in range(3):  # rays from K and the pose directly: d = R^T K^-1 (u, v, 1)
        K, pose = camera.K[b].double().numpy(), camera.pose[b].double().numpy()
        R, t = pose[:, :3], pose[:, 3]
        dirs = np.linalg.solve(K, pixels.T).T @ R
        truth = ray_hits(mesh, -R.T @ t, dirs).reshape(40, 56)
        assert truth.sum() > 50
        agree = (masks[b].numpy() == truth).mean()
        assert agree > 0.998, agree


def test_mesh_silhouette_rejects_bad_input():
    from svrecon.mesh import mesh_silhouette

    box = trimesh.creation.box((1, 1, 1))
    v, f = torch.as_tensor(box.vertices), torch.as_tensor(box.faces)
    camera = _silhouette_cameras(torch.float64)
    with pytest.raises(ValueError, match="vertices"):
        mesh_silhouette(v[:, :2], f, camera, (8, 8))
    with pytest.raises(ValueError, match="faces: indices"):
        mesh_silhouette(v, f + 100, camera, (8, 8))
    with pytest.raises(ValueError, match="faces: expected integer"):
        mesh_silhouette(v, f.double(), camera, (8, 8))
    with pytest.raises(ValueError, match="behind the camera"):
        mesh_silhouette(v * 10, f, camera, (8, 8))
    empty = mesh_silhouette(v, f[:0], camera, (8, 8))
    assert empty.shape == (3, 8, 8) and not empty.any()
