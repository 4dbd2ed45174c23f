"""Pictures: the mesh rasteriser against the analytic silhouette of a sphere, lighting
from above, point splats, and the panel files."""

import math

import numpy as np
import pytest
import torch
import trimesh

from svrecon.data import view_camera
from svrecon.viz import (
    PART_PALETTE,
    novel_cameras,
    part_colors,
    reconstruction_row,
    render_mesh,
    render_points,
    save_panel,
)


def analytic_sphere_mask(camera, size, radius):
    """Pixel centres whose ray passes within ``radius`` of the origin."""
    rays = camera.rays(size, size)
    o, d = rays.origins.double(), rays.directions.double()
    closest = o - (o * d).sum(-1, keepdim=True) * d
    return (closest.norm(dim=-1) < radius).reshape(len(camera), size, size)


def iou(a, b):
    return (a & b).sum().item() / (a | b).sum().item()


def test_mesh_silhouette_matches_the_analytic_sphere():
    camera = view_camera(torch.tensor([0.3, 2.0]), torch.tensor([0.4, -0.2]), 48)
    mesh = trimesh.creation.icosphere(subdivisions=5, radius=0.45)
    image = render_mesh(mesh, camera, 48)
    assert image.shape == (2, 3, 48, 48) and image.min() >= 0 and image.max() <= 1
    mask = image[:, 0] < 1.0
    assert iou(mask, analytic_sphere_mask(camera, 48, 0.45)) > 0.97
    assert torch.equal(image[:, 0], image[:, 2])  # grey


def test_box_is_lit_from_above_and_empty_mesh_is_background():
    # Looking down at 40 degrees: the top face is brighter than the sides.
    camera = view_camera(torch.tensor([0.6]), torch.tensor([math.radians(40)]), 64)
    box = trimesh.creation.box(extents=(0.6, 0.3, 0.6))
    image = render_mesh(box, camera, 64)[0, 0].numpy()
    project = lambda p: camera.project(torch.tensor([[p]]).float())[0, 0].long()  # noqa: E731
    top = project([0.0, 0.15, 0.0])
    side = project([0.3 * math.sin(0.6), -0.05, 0.3 * math.cos(0.6)])
    assert image[top[1], top[0]] > image[side[1], side[0]] + 0.05
    empty = trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
    assert torch.equal(render_mesh(empty, camera, 16), torch.ones(1, 3, 16, 16))


def test_point_splats_cover_the_sphere_silhouette(tmp_path):
    camera = view_camera(torch.tensor([1.0]), torch.tensor([0.3]), 32)
    d = torch.randn(20000, 3, generator=torch.Generator().manual_seed(0))
    normals = d / d.norm(dim=-1, keepdim=True)
    image = render_points(0.45 * normals, normals, camera, 32, radius=0)
    assert iou(image[:, 0] < 1.0, analytic_sphere_mask(camera, 32, 0.45)) > 0.9
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.45)
    row = reconstruction_row(torch.rand(3, 32, 32), mesh, camera, novel_cameras(32), image[0])
    assert len(row) == 6 and all(r.shape == (3, 32, 32) for r in row)
    assert save_panel([row], tmp_path / "p.png", ["a", "b"]).stat().st_size > 1000


def test_face_colours_tint_the_shading_of_each_face():
    # Two halves of a sphere, coloured by the sign of x: every covered pixel is its
    # face's colour times the grey the uncoloured render gives there, the face being
    # the one the pixel's ray meets first (analytic ray-sphere hit).
    camera = view_camera(torch.tensor([0.7]), torch.tensor([0.2]), 48)
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=0.45)
    labels = (mesh.triangles_center[:, 0] > 0).astype(np.int64)
    colours = part_colors(labels)
    assert np.array_equal(colours[labels == 1][0], PART_PALETTE[1])
    grey = render_mesh(mesh, camera, 48)[0]
    tinted = render_mesh(mesh, camera, 48, face_colors=colours)[0]
    rays = camera.rays(48, 48)
    o, d = rays.origins[0].double(), rays.directions[0].double()
    b = (o * d).sum(-1)
    disc = b**2 - ((o * o).sum(-1) - 0.45**2)
    hit_x = (o - (b + disc.clamp(min=0).sqrt())[:, None] * d)[:, 0].reshape(48, 48)
    covered = grey[0] < 1.0
    clear = covered & (disc.reshape(48, 48) > 0.01) & (hit_x.abs() > 0.03)
    assert clear.sum() > 500
    for side, label in ((hit_x > 0, 1), (hit_x < 0, 0)):
        pixels = clear & side
        expected = grey[:, pixels] * torch.from_numpy(PART_PALETTE[label]).float()[:, None]
        torch.testing.assert_close(tinted[:, pixels], expected)
    assert torch.equal(tinted[:, ~covered], grey[:, ~covered])


def test_face_colours_and_labels_are_checked():
    mesh = trimesh.creation.box()
    camera = view_camera(torch.tensor([0.0]), torch.tensor([0.2]), 8)
    with pytest.raises(ValueError, match=r"face_colors: expected shape \(12, 3\)"):
        render_mesh(mesh, camera, 8, face_colors=np.ones((3, 3)))
    with pytest.raises(ValueError, match="labels: expected a 1-D integer"):
        part_colors(np.array([0.5]))
    assert np.array_equal(part_colors(np.array([12, 0])), PART_PALETTE[[0, 0]])
