import math

import pytest
import torch

from svrecon.cameras import PerspectiveCamera, RayBundle, sample_pixels_uniform

f64 = torch.float64


def camera_on_z(distance=3.0, focal=50.0, size=32):
    pose = torch.tensor([[[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, distance]]], dtype=f64)
    return PerspectiveCamera(focal, size / 2, pose)


def test_intersect_sphere_matches_analytic():
    cam = camera_on_z()
    rays = cam.rays(32, 32)
    clipped, hit = rays.intersect_sphere(1.0)
    # Analytic: camera at (0, 0, -3); a ray with angle a to the axis hits the unit sphere
    # iff 3 sin(a) < 1, entering at t = 3 cos(a) - sqrt(1 - 9 sin(a)^2).
    cos_a = rays.depth_per_distance
    sin_a = torch.sqrt(1 - cos_a**2)
    expected_hit = 3 * sin_a < 1
    assert torch.equal(hit, expected_hit)
    disc = torch.sqrt((1 - 9 * sin_a**2).clamp_min(0))
    torch.testing.assert_close(clipped.near[hit], (3 * cos_a - disc)[hit])
    torch.testing.assert_close(clipped.far[hit], (3 * cos_a + disc)[hit])
    # Misses get an empty, finite interval at the closest approach to the centre.
    assert torch.equal(clipped.near[~hit], clipped.far[~hit])
    torch.testing.assert_close(clipped.near[~hit], (3 * cos_a)[~hit])
    assert hit.any() and (~hit).any()


def test_intersect_sphere_respects_near_far_and_centre():
    cam = camera_on_z()
    centre = torch.tensor([[0.0, 0.0, 10.0]], dtype=f64)  # 13 units ahead
    rays = cam.rays(32, 32, near=0.0, far=5.0)
    _, hit = rays.intersect_sphere(1.0, centre)
    assert not hit.any()  # beyond far
    _, hit = cam.rays(32, 32, far=100.0).intersect_sphere(1.0, centre)
    assert hit.any()


def test_select_equals_rays_at_sampled_pixels():
    cam = camera_on_z()
    cam = cam[[0, 0]]
    rays = cam.rays(16, 16)
    sample = sample_pixels_uniform(
        2, 16, 16, 20, generator=torch.Generator().manual_seed(1), dtype=f64
    )
    sub = rays.select(sample.indices)
    direct = cam.rays_at(sample.pixels)
    torch.testing.assert_close(sub.pixels, direct.pixels)
    torch.testing.assert_close(sub.directions, direct.directions)
    torch.testing.assert_close(sub.depth_per_distance, direct.depth_per_distance)


def test_ray_bundle_validates_shapes():
    z = torch.zeros(2, 5, 3)
    with pytest.raises(ValueError, match=r"near: expected shape \[B=2, R=5\], got \[2, 4\]"):
        RayBundle(z, z, z[..., :2], torch.zeros(2, 4), torch.zeros(2, 5), torch.ones(2, 5))
    rays = RayBundle(z, z, z[..., :2], torch.zeros(2, 5), torch.zeros(2, 5), torch.ones(2, 5))
    with pytest.raises(ValueError, match=r"t: expected shape \[B=2, R=5, \.\.\.\]"):
        rays.distance_to_depth(torch.zeros(3, 5))


def test_depth_per_distance_is_cosine_to_axis():
    cam = camera_on_z(focal=10.0, size=20)
    rays = cam.rays(20, 20)
    axis = torch.tensor([0.0, 0.0, 1.0], dtype=f64)
    torch.testing.assert_close(rays.depth_per_distance, rays.directions @ axis)
    # Corner pixel (0.5, 0.5): direction (-0.95, -0.95, 1) before normalising.
    torch.testing.assert_close(
        rays.depth_per_distance[0, 0], torch.tensor(1 / math.sqrt(1 + 2 * 0.95**2), dtype=f64)
    )


def test_ray_bundle_indexing_keeps_batch():
    cam = camera_on_z()[[0, 0, 0]]
    rays = cam.rays(4, 4)
    assert rays[-1].batch_size == 1 and rays[1:].batch_size == 2
    with pytest.raises(IndexError, match="out of range"):
        rays[3]


def test_near_far_must_be_numbers_or_per_ray():
    cam = camera_on_z()[[0, 0]]
    with pytest.raises(ValueError, match=r"near: expected shape \[2, 2\], got \[2\]"):
        cam.rays_at(torch.zeros(2, 2, 2, dtype=f64), near=torch.zeros(2, dtype=f64))
    rays = cam.rays_at(torch.zeros(2, 2, 2, dtype=f64), far=torch.full((2, 2), 5.0, dtype=f64))
    assert (rays.far == 5).all() and (rays.near == 0).all()
