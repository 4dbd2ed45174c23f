"""Losses against hand-worked values, naive per-item loops and autograd checks."""

import numpy as np
import pytest
import torch
from scipy.spatial import ConvexHull

from svrecon.cameras import OrthographicCamera, PerspectiveCamera
from svrecon.fields import FieldOutput
from svrecon.losses import (
    camera_point_cloud_loss,
    disn_sdf_loss,
    eikonal_loss,
    importance_weights,
    masked_l1_loss,
    masked_mse_loss,
    ray_free_space_loss,
    ray_intersection_loss,
    silhouette_lower_bound,
    silhouette_sdf_loss,
    soft_iou_loss,
    sphere_sdf_loss,
    symmetry_loss,
)

from .helpers import random_intrinsics, random_pose
from .reference.analytic import box_sdf, sphere_sdf

# --- SDF-SRN silhouette bound -------------------------------------------------------------


def silhouette_points(shape, camera):
    """World points whose projections' convex hull is the exact silhouette (one camera).

    Box: its 8 corners. Sphere (radius 0.6 at the origin): 4000 points on its occluding
    contour, the circle where the viewing rays are tangent.
    """
    if shape == "box":
        signs = torch.tensor(
            [[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=torch.float64
        )
        return signs * torch.tensor([0.5, 0.3, 0.4], dtype=torch.float64)
    r = 0.6
    R, t = camera.R[0], camera.t[0]
    axis = R[2]  # the optical axis in world coordinates
    if isinstance(camera, OrthographicCamera):
        center, rho, v = torch.zeros(3, dtype=torch.float64), r, axis
    else:
        eye = -R.T @ t
        v = -eye
        length = v.norm()
        center = eye + v * (1 - r**2 / length**2)
        rho = r * torch.sqrt(length**2 - r**2) / length
    e1 = torch.linalg.cross(v, torch.tensor([0.3, 0.5, 0.8], dtype=torch.float64))
    e1 = e1 / e1.norm()
    e2 = torch.linalg.cross(v / v.norm(), e1)
    theta = torch.linspace(0, 2 * np.pi, 4001, dtype=torch.float64)[:-1, None]
    return center + rho * (theta.cos() * e1 + theta.sin() * e2)


def distance_to_convex_polygon(points, polygon):
    """Distance from 2-D points [N, 2] outside a convex polygon [K, 2] (ordered) to it."""
    a, b = polygon, np.roll(polygon, -1, axis=0)
    ab = b - a
    ap = points[:, None] - a[None]
    t = np.clip((ap * ab).sum(-1) / (ab * ab).sum(-1), 0, 1)
    closest = a[None] + t[..., None] * ab[None]
    return np.linalg.norm(points[:, None] - closest, axis=-1).min(1)


def inside_convex_polygon(points, polygon):
    a, b = polygon, np.roll(polygon, -1, axis=0)
    cross = (b - a)[None, :, 0] * (points[:, None, 1] - a[None, :, 1]) - (b - a)[None, :, 1] * (
        points[:, None, 0] - a[None, :, 0]
    )
    return (cross >= 0).all(1) | (cross <= 0).all(1)


@pytest.mark.parametrize("shape", ["sphere", "box"])
@pytest.mark.parametrize("kind", ["perspective", "orthographic"])
def test_silhouette_bound_never_exceeds_the_sdf(shape, kind):
    sdf = (lambda p: sphere_sdf(p, radius=0.6)) if shape == "sphere" else box_sdf
    batch, size = 3, 32
    pose = random_pose(batch, seed=11)
    if kind == "perspective":
        focal, principal, _ = random_intrinsics(batch, seed=11, size=(size, size))
        focal = focal[:, :1].expand(-1, 2)  # square pixels
        camera = PerspectiveCamera(focal, principal, pose)
    else:
        camera = OrthographicCamera(
            torch.tensor([[12.0, 12.0], [10.0, 10.0], [14.0, 14.0]], dtype=torch.float64),
            torch.full((batch, 2), size / 2, dtype=torch.float64),
            pose,
        )
    rays = camera.rays(size, size)
    pixels = rays.pixels
    g = torch.Generator().manual_seed(0)
    checked = 0
    for b in range(batch):
        surface = silhouette_points(shape, camera[b])[None]
        pts = camera[b].project(surface)[0].numpy()
        hull = pts[ConvexHull(pts).vertices]
        px = pixels[b].numpy()
        outside = ~inside_convex_polygon(px, hull)
        distance = torch.zeros(size * size, dtype=torch.float64)
        distance[outside] = torch.from_numpy(distance_to_convex_polygon(px[outside], hull))
        cam_z = camera[b].world_to_camera(surface)[0, :, 2]
        depth = (
            cam_z.min()
            - 1.0
            + torch.rand(1, size * size, 16, generator=g, dtype=torch.float64)
            * (cam_z.max() - cam_z.min() + 2.0)
        )
        if kind == "orthographic":
            depth = depth - cam_z.min() + 0.5  # orthographic rays start on the plane z = 0
        bound = silhouette_lower_bound(camera[b], pixels[b : b + 1], distance[None], depth)
        points = rays[b].points_at(rays[b].depth_to_distance(depth))
        true_sdf = sdf(points)
        mask = torch.from_numpy(outside)[None, :, None].expand_as(bound)
        assert (bound[mask] <= true_sdf[mask] + 1e-9).all()
        if kind == "orthographic":
            scale = camera.scale[b, 0]
            assert torch.allclose(bound[0, :, 0], distance / scale)
            assert torch.equal(bound[..., 0:1].expand_as(bound), bound)  # same at every depth
        checked += int(mask.sum())
    assert checked > 1000


def test_silhouette_bound_perspective_hand_case():
    # Camera at the origin looking down +z, f = 100, principal point (50, 50). The pixel
    # (70, 50) moved D = 10 pixels outward is (80, 50): the angle between the rays is
    # atan(0.3) - atan(0.2), and the bound at z = 2 is |x| sin(angle), |x| = 2 sqrt(1.04).
    pose = torch.cat([torch.eye(3), torch.zeros(3, 1)], -1)[None].double()
    camera = PerspectiveCamera(
        torch.tensor([[100.0, 100.0]]).double(), torch.tensor([[50.0, 50.0]]).double(), pose
    )
    bound = silhouette_lower_bound(
        camera,
        torch.tensor([[[70.0, 50.0]]]).double(),
        torch.tensor([[10.0]]).double(),
        torch.tensor([[[2.0]]]).double(),
    )
    angle = np.arctan(0.3) - np.arctan(0.2)
    assert bound.item() == pytest.approx(2 * np.sqrt(1.04) * np.sin(angle), rel=1e-12)


def test_silhouette_sdf_loss_hand_value_batch_and_gradient():
    sdf = torch.tensor(
        [[[0.1, 0.5], [0.0, 0.0]], [[0.2, 0.2], [1.0, -1.0]]],
        dtype=torch.float64,
        requires_grad=True,
    )
    bound = torch.full((2, 2, 2), 0.3, dtype=torch.float64)
    background = torch.tensor([[True, False], [True, True]])
    weight = torch.tensor([[1.0, 5.0], [2.0, 0.5]], dtype=torch.float64)
    loss = silhouette_sdf_loss(sdf, bound, background, weight)
    # Background rays: (0,0) w1: relu(.2), relu(-.2); (1,0) w2: .1, .1; (1,1) w.5: 0, 1.3
    expected = (1 * 0.2 + 2 * 0.1 * 2 + 0.5 * 1.3) / (2 * (1 + 2 + 0.5))
    assert loss.item() == pytest.approx(expected)
    # The batch reduction is one weighted mean over all background samples, item by item:
    naive_num = naive_den = 0.0
    for b in range(2):
        for r in range(2):
            if background[b, r]:
                for s in range(2):
                    naive_num += weight[b, r].item() * max(0.3 - sdf[b, r, s].item(), 0)
                    naive_den += weight[b, r].item()
    assert loss.item() == pytest.approx(naive_num / naive_den)
    loss.backward()
    assert sdf.grad[0, 1].abs().sum() == 0 and sdf.grad[0, 0, 0] < 0
    empty = silhouette_sdf_loss(sdf, bound, torch.zeros(2, 2, dtype=torch.bool))
    assert empty.item() == 0 and empty.requires_grad
    assert importance_weights(torch.tensor([0.0, 1.0])).tolist() == pytest.approx(
        [1e8, 1 / (1 + 1e-8)]
    )


def test_silhouette_bound_rejects_bad_shapes():
    camera = PerspectiveCamera(
        torch.ones(1, 2) * 50, torch.ones(1, 2) * 16, random_pose(1, dtype=torch.float32)
    )
    with pytest.raises(ValueError, match=r"distance: expected shape \[1, 4\]"):
        silhouette_lower_bound(
            camera, torch.zeros(1, 4, 2), torch.zeros(1, 3), torch.zeros(1, 4, 5)
        )


# --- SDF-SRN ray losses -------------------------------------------------------------------


def test_ray_losses_hand_values_batch_and_gradient():
    marched = torch.tensor(
        [[[0.5, 0.2, -0.3], [0.4, -0.02, 0.05]], [[0.3, 0.0, 0.02], [-0.1, 0.2, 0.2]]],
        dtype=torch.float64,
        requires_grad=True,
    )
    mask = torch.tensor([[True, False], [False, True]])
    weight = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    # Foreground last values: -0.3 (w1) -> relu(-0.29) = 0; 0.2 (w4) -> 0.21.
    # Background last values: 0.05 (w2) -> relu(-0.04) = 0; 0.02 (w3) -> relu(-0.01) = 0.
    inter = ray_intersection_loss(marched, mask, weight)
    assert inter.item() == pytest.approx(4 * 0.21 / 5)
    # Free space on all but the last: relu(0.01 - f) = 0.03 (f=-0.02), 0.01 (f=0), 0.11 (f=-0.1).
    free = ray_free_space_loss(marched)
    assert free.item() == pytest.approx((0.03 + 0.01 + 0.11) / 8)
    (inter + free).backward()
    assert marched.grad[1, 1, 2].item() == pytest.approx(4 / 5)
    assert marched.grad[0, 1, 1].item() == pytest.approx(-1 / 8)
    # Per-item loop for the unweighted intersection loss.
    fg = [max(marched[b, r, -1].item() + 0.01, 0) for b in range(2) for r in range(2) if mask[b, r]]
    bg = [
        max(0.01 - marched[b, r, -1].item(), 0)
        for b in range(2)
        for r in range(2)
        if not mask[b, r]
    ]
    assert ray_intersection_loss(marched, mask).item() == pytest.approx(np.mean(fg) + np.mean(bg))
    all_background = ray_intersection_loss(marched, torch.zeros(2, 2, dtype=torch.bool))
    assert torch.isfinite(all_background)


# --- shared -------------------------------------------------------------------------------


def test_eikonal_loss_hand_value_gradcheck_and_zero_gradient():
    g = torch.tensor(
        [[[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]], [[0.0, 0.0, 0.0], [1.0, 2.0, 2.0]]],
        dtype=torch.float64,
    )
    # |g| = 5, 1, 0, 3 -> (16 + 0 + 1 + 4) / 4
    assert eikonal_loss(g).item() == pytest.approx(21 / 4)
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(eikonal_loss, (x,))
    assert torch.autograd.gradgradcheck(eikonal_loss, (x,))
    zero = torch.zeros(1, 2, 3, dtype=torch.float64, requires_grad=True)
    eikonal_loss(zero).backward()
    assert torch.isfinite(zero.grad).all()


def test_masked_photometric_losses():
    pred = torch.tensor(
        [[[0.0, 1.0, 0.5], [1.0, 1.0, 1.0]], [[0.2, 0.2, 0.2], [0.0, 0.0, 0.0]]], requires_grad=True
    )
    target = torch.zeros(2, 2, 3)
    mask = torch.tensor([[True, False], [True, False]])
    assert masked_l1_loss(pred, target, mask).item() == pytest.approx((1.5 + 0.6) / 6)
    assert masked_mse_loss(pred, target, mask).item() == pytest.approx((1.25 + 0.12) / 6)
    assert masked_l1_loss(pred, target).item() == pytest.approx((1.5 + 3 + 0.6) / 12)
    masked_l1_loss(pred, target, mask).backward()
    assert pred.grad[0, 1].abs().sum() == 0 and pred.grad[0, 0, 1].item() == pytest.approx(1 / 6)
    empty = masked_mse_loss(pred, target, torch.zeros(2, 2, dtype=torch.bool))
    assert empty.item() == 0
    with pytest.raises(ValueError, match="mask: expected a prefix"):
        masked_l1_loss(pred, target, torch.ones(2, 3, dtype=torch.bool))


def test_soft_iou_hand_value_batch_empty_and_full_masks():
    pred = torch.tensor([[0.5, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]], requires_grad=True)
    target = torch.tensor([[1.0, 1.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    # Item 0: I = 0.5 + 1 = 1.5, U = (1 + 1 + 0 + 1) = 3 -> IoU 0.5. Item 1: empty -> IoU 1.
    loss = soft_iou_loss(pred, target)
    assert loss.item() == pytest.approx((0.5 + 0.0) / 2)
    loss.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad[1].abs().sum() == 0
    full = torch.ones(1, 4, requires_grad=True)
    assert soft_iou_loss(full, torch.ones(1, 4)).item() == 0


def test_sphere_and_symmetry_losses():
    points = torch.tensor([[[0.0, 0.0, 1.0], [0.3, 0.4, 0.0]]])
    sdf = torch.tensor([[0.5, 0.0]])
    assert sphere_sdf_loss(sdf, points, 0.5).item() == pytest.approx((0 + 0.0) / 2)
    assert sphere_sdf_loss(torch.zeros(1, 2), points, 0.5).item() == pytest.approx((0.25 + 0.0) / 2)

    def field(p):
        return FieldOutput(sdf=p[..., 0] + p[..., 1])

    # f(x) - f(-x, y, z) = 2x: mean |2x| = (0 + 0.6) / 2
    assert symmetry_loss(field, points).item() == pytest.approx(0.3)


# --- DISN ---------------------------------------------------------------------------------


def test_disn_sdf_loss_hand_value_and_gradient():
    # 0.0078125 = 2^-7 keeps 10 s exact, so that entry has a zero residual.
    target = torch.tensor([[0.0, 0.0078125, 0.02, -0.3]], dtype=torch.float64)
    pred = torch.tensor([[0.1, 0.078125, 0.1, -3.0]], dtype=torch.float64, requires_grad=True)
    # |10 s - f| = 0.1, 0, 0.1, 0; weights 4, 4 (s <= 0.01), 1, 4
    loss = disn_sdf_loss(pred, target)
    assert loss.item() == pytest.approx((4 * 0.1 + 0 + 1 * 0.1 + 0) / 4)
    loss.backward()
    assert pred.grad[0].tolist() == pytest.approx([1.0, 0.0, -0.25, 0.0])  # sign(f - 10 s) * w / N
    batch = disn_sdf_loss(pred.detach().expand(3, 4), target.expand(3, 4))
    assert batch.item() == pytest.approx(loss.item())  # the mean over the batch


def test_camera_point_cloud_loss_hand_value():
    points = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], requires_grad=True)
    gt = torch.cat([torch.eye(3), torch.zeros(3, 1)], -1)[None]
    pred = gt.clone()
    pred[0, :, 3] = torch.tensor([0.0, 0.0, 2.0])  # translated by 2 along z
    assert camera_point_cloud_loss(points, pred, gt).item() == pytest.approx(4.0)
    rot = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # 90 deg about z
    pred = torch.cat([rot, torch.zeros(3, 1)], -1)[None]
    # (1,0,0) -> (0,1,0): distance^2 2; (0,1,0) -> (-1,0,0): 2.
    loss = camera_point_cloud_loss(points, pred, gt)
    assert loss.item() == pytest.approx(2.0)
    loss.backward()
    assert torch.isfinite(points.grad).all()
