import math

import pytest
import torch
from torch.autograd import gradcheck

from svrecon.cameras import (
    OrthographicCamera,
    PerspectiveCamera,
    ProjectionMatrixCamera,
    WeakPerspectiveCamera,
    pixel_grid,
    well_conditioned_projection,
)

from .helpers import random_intrinsics, random_pose

f64 = torch.float64
B, H, W = 3, 48, 64


def make_perspective(dtype=f64):
    focal, principal, _ = random_intrinsics(B, dtype=dtype)
    return PerspectiveCamera(focal, principal, random_pose(B, dtype=dtype))


def make_orthographic(dtype=f64):
    focal, principal, _ = random_intrinsics(B, dtype=dtype)
    return OrthographicCamera(focal / 4, principal, random_pose(B, dtype=dtype))


def make_weak(dtype=f64):
    R = random_pose(B, dtype=dtype)[..., :3]
    return WeakPerspectiveCamera(
        R,
        torch.tensor([20.0, 25.0, 30.0], dtype=dtype),
        torch.tensor([[30.0, 20.0], [33.0, 25.0], [31.0, 22.0]], dtype=dtype),
    )


def make_projection(dtype=f64):
    _, _, K = random_intrinsics(B, dtype=dtype)
    P = K @ random_pose(B, dtype=dtype)
    return ProjectionMatrixCamera(P * torch.tensor([-2.5, 0.3, 7.0], dtype=dtype)[:, None, None])


FACTORIES = {
    "perspective": make_perspective,
    "orthographic": make_orthographic,
    "weak_perspective": make_weak,
    "projection_matrix": make_projection,
}


def random_pixels_depths(n=50, dtype=f64):
    pixels = torch.rand(B, n, 2, dtype=dtype) * torch.tensor([W, H], dtype=dtype)
    depth = torch.rand(B, n, dtype=dtype) * 2 + 2
    return pixels, depth


@pytest.mark.parametrize("name", FACTORIES)
def test_project_inverts_unproject(name):
    cam = FACTORIES[name]()
    pixels, depth = random_pixels_depths()
    torch.testing.assert_close(cam.project(cam.unproject(pixels, depth)), pixels)


@pytest.mark.parametrize("name", FACTORIES)
def test_ray_through_pixel_passes_through_unprojected_point(name):
    cam = FACTORIES[name]()
    pixels, depth = random_pixels_depths()
    rays = cam.rays_at(pixels)
    torch.testing.assert_close(rays.directions.norm(dim=-1), torch.ones(B, 50, dtype=f64))
    t = rays.depth_to_distance(depth)
    torch.testing.assert_close(rays.points_at(t), cam.unproject(pixels, depth))
    torch.testing.assert_close(rays.distance_to_depth(t), depth)
    # Every point along the ray projects back to the same pixel.
    samples = rays.points_at(t[..., None] * torch.tensor([0.5, 1.0, 2.0], dtype=f64))
    for s in range(3):
        torch.testing.assert_close(cam.project(samples[:, :, s]), pixels)


@pytest.mark.parametrize("name", FACTORIES)
def test_batched_equals_per_item(name):
    cam = FACTORIES[name]()
    pixels, depth = random_pixels_depths()
    points = cam.unproject(pixels, depth)
    proj = cam.project(points)
    rays = cam.rays(H, W)
    for i in range(B):
        single = cam[i]
        assert len(single) == 1
        torch.testing.assert_close(single.project(points[i : i + 1]), proj[i : i + 1])
        torch.testing.assert_close(
            single.unproject(pixels[i : i + 1], depth[i : i + 1]), points[i : i + 1]
        )
        r = single.rays(H, W)
        torch.testing.assert_close(r.origins, rays.origins[i : i + 1])
        torch.testing.assert_close(r.directions, rays.directions[i : i + 1])


@pytest.mark.parametrize("name", FACTORIES)
def test_rays_cover_pixel_centres_in_row_major_order(name):
    cam = FACTORIES[name]()
    rays = cam.rays(H, W)
    assert rays.origins.shape == (B, H * W, 3)
    grid = rays.pixels.view(B, H, W, 2)
    assert grid[0, 0, 0].tolist() == [0.5, 0.5]
    assert grid[0, 0, 1].tolist() == [1.5, 0.5]  # next column: u grows along a row
    assert grid[0, 1, 0].tolist() == [0.5, 1.5]
    torch.testing.assert_close(
        cam.project(rays.points_at(torch.full((B, H * W), 3.0, dtype=f64))), rays.pixels
    )


@pytest.mark.parametrize("name", FACTORIES)
def test_to_dtype_and_indexing(name):
    cam = FACTORIES[name]()
    cam32 = cam.to(torch.float32)
    assert cam32.dtype == torch.float32 and cam.dtype == f64
    pixels, depth = random_pixels_depths()
    torch.testing.assert_close(
        cam32.unproject(pixels.float(), depth.float()),
        cam.unproject(pixels, depth).float(),
        atol=1e-4,
        rtol=1e-4,
    )
    sub = cam[torch.tensor([2, 0])]
    assert len(sub) == 2
    torch.testing.assert_close(
        sub.unproject(pixels[[2, 0]], depth[[2, 0]]), cam.unproject(pixels, depth)[[2, 0]]
    )
    assert len(cam[-1]) == 1
    with pytest.raises(IndexError):
        cam[B]


def test_perspective_hand_worked_opencv_example():
    # fx=100, fy=120, cx=32, cy=24. R = Rz(90 deg), t = (0, 0, 4).
    pose = torch.tensor([[[0.0, -1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 4]]], dtype=f64)
    cam = PerspectiveCamera(
        torch.tensor([[100.0, 120.0]], dtype=f64), torch.tensor([[32.0, 24.0]], dtype=f64), pose
    )
    # World (1, 0, 0) -> camera (0, 1, 4): below the centre (y down) by 120 * 1/4 = 30 px.
    # World (0, -2, 0) -> camera (2, 0, 4): right of the centre by 100 * 2/4 = 50 px.
    pts = torch.tensor([[[1.0, 0, 0], [0, -2, 0]]], dtype=f64)
    torch.testing.assert_close(
        cam.project(pts), torch.tensor([[[32.0, 54.0], [82.0, 24.0]]], dtype=f64)
    )
    # The top-left pixel's centre is (0.5, 0.5); its ray in camera coordinates is
    # ((0.5 - 32) / 100, (0.5 - 24) / 120, 1), up and to the left of the axis.
    rays = cam.rays(2, 2)
    d_cam = torch.tensor([(0.5 - 32) / 100, (0.5 - 24) / 120, 1.0], dtype=f64)
    expected = pose[0, :, :3].T @ (d_cam / d_cam.norm())
    torch.testing.assert_close(rays.directions[0, 0], expected)
    torch.testing.assert_close(rays.depth_per_distance[0, 0], 1 / d_cam.norm())
    torch.testing.assert_close(rays.origins[0, 0], torch.tensor([0.0, 0.0, -4.0], dtype=f64))
    torch.testing.assert_close(cam.camera_center, torch.tensor([[0.0, 0.0, -4.0]], dtype=f64))


def test_perspective_constructors_agree():
    pose = random_pose(2)
    f = 1.8660254
    a = PerspectiveCamera.from_focal_fraction(f, (64, 64), pose)
    torch.testing.assert_close(
        a.K[0], torch.tensor([[f * 64, 0, 32], [0, f * 64, 32], [0, 0, 1]], dtype=f64)
    )
    b = PerspectiveCamera.from_intrinsics(a.K, pose)
    torch.testing.assert_close(b.focal, a.focal)
    # NMR's f = 1.8660254 is a 30 degree horizontal field of view: tan(15 deg) = 0.5 / f.
    c = PerspectiveCamera.from_fov(torch.tensor(2 * math.atan(0.5 / f), dtype=f64), (64, 64), pose)
    torch.testing.assert_close(c.focal, a.focal)


def test_orthographic_sdf_srn_grid_is_linspace():
    pose = torch.cat([torch.eye(3, dtype=f64), torch.tensor([[0.0], [0], [2]], dtype=f64)], -1)[
        None
    ]
    cam = OrthographicCamera.from_sdf_srn_grid((5, 7), pose)
    rays = cam.rays(5, 7)
    origins_cam = cam.world_to_camera(rays.origins).view(5, 7, 3)
    torch.testing.assert_close(origins_cam[0, :, 0], torch.linspace(-1, 1, 7, dtype=f64))
    torch.testing.assert_close(origins_cam[:, 0, 1], torch.linspace(-1, 1, 5, dtype=f64))
    torch.testing.assert_close(origins_cam[..., 2], torch.zeros(5, 7, dtype=f64))
    torch.testing.assert_close(
        rays.directions[0], torch.tensor([0.0, 0, 1], dtype=f64).expand(35, 3)
    )
    torch.testing.assert_close(rays.depth_per_distance, torch.ones(1, 35, dtype=f64))


def test_weak_perspective_hand_worked():
    R = torch.tensor([[[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]]], dtype=f64)  # Ry(90 deg)
    cam = WeakPerspectiveCamera(R, 10.0, torch.tensor([[5.0, 6.0]], dtype=f64))
    # (0, 2, 3) -> R x = (3, 2, 0) -> (10*3 + 5, 10*2 + 6)
    torch.testing.assert_close(
        cam.project(torch.tensor([[[0.0, 2, 3]]], dtype=f64)),
        torch.tensor([[[35.0, 26.0]]], dtype=f64),
    )
    torch.testing.assert_close(cam.scale, torch.tensor([10.0], dtype=f64))


def test_projection_matrix_camera_matches_perspective():
    focal, principal, K = random_intrinsics(B)
    pose = random_pose(B)
    persp = PerspectiveCamera(focal, principal, pose)
    proj = ProjectionMatrixCamera(-3.0 * (K @ pose))  # the scale and sign of P are arbitrary
    pixels, depth = random_pixels_depths()
    torch.testing.assert_close(proj.unproject(pixels, depth), persp.unproject(pixels, depth))
    torch.testing.assert_close(proj.camera_center, persp.camera_center)
    points = persp.unproject(pixels, depth)
    torch.testing.assert_close(proj.depth(points), depth)
    r1, r2 = persp.rays(H, W), proj.rays(H, W)
    torch.testing.assert_close(r1.directions, r2.directions)
    torch.testing.assert_close(r1.depth_per_distance, r2.depth_per_distance)


def test_points_on_camera_plane_project_finite():
    cam = make_perspective()
    on_plane = cam.camera_to_world(torch.tensor([[[0.3, 0.1, 0.0]]], dtype=f64).expand(B, 1, 3))
    assert torch.isfinite(cam.project(on_plane)).all()


def test_bad_input_raises_with_names_and_shapes():
    cam = make_perspective()
    with pytest.raises(ValueError, match=r"points: expected shape \[3, N, 3\], got \[3, 10, 2\]"):
        cam.project(torch.zeros(B, 10, 2, dtype=f64))
    with pytest.raises(ValueError, match=r"points: expected shape \[3, N, 3\], got \[2, 10, 3\]"):
        cam.project(torch.zeros(2, 10, 3, dtype=f64))
    with pytest.raises(ValueError, match=r"depth: expected shape \[3, 10\], got \[3, 9\]"):
        cam.unproject(torch.zeros(B, 10, 2, dtype=f64), torch.zeros(B, 9, dtype=f64))
    with pytest.raises(ValueError, match=r"pixels: expected shape \[3, R, 2\], got \[3, 5\]"):
        cam.rays_at(torch.zeros(B, 5, dtype=f64))
    pose = random_pose(2)
    with pytest.raises(ValueError, match=r"pose: expected shape \[B, 3, 4\], got \[2, 4, 4\]"):
        PerspectiveCamera(100.0, 32.0, torch.zeros(2, 4, 4, dtype=f64))
    with pytest.raises(ValueError, match=r"focal: expected shape \[2, 2\], got \[3, 2\]"):
        PerspectiveCamera(torch.ones(3, 2, dtype=f64), 32.0, pose)
    with pytest.raises(ValueError, match="focal: a camera has zero focal length"):
        PerspectiveCamera(torch.tensor([100.0, 0.0], dtype=f64), 32.0, pose)
    bad = pose.clone()
    bad[0, 0, 0] = 2.0
    with pytest.raises(ValueError, match="pose: expected rotation matrices"):
        PerspectiveCamera(100.0, 32.0, bad)
    with pytest.raises(ValueError, match="pose: contains NaN"):
        PerspectiveCamera(100.0, 32.0, torch.full((1, 3, 4), float("nan"), dtype=f64))
    singular = torch.zeros(1, 3, 4, dtype=f64)
    singular[0, :, :2] = torch.randn(3, 2, dtype=f64)
    with pytest.raises(ValueError, match="P: the left 3x3 block is singular"):
        ProjectionMatrixCamera(singular)
    with pytest.raises(ValueError, match=r"P: expected shape \[B, 3, 4\], got \[1, 12\]"):
        ProjectionMatrixCamera(torch.zeros(1, 12, dtype=f64))


def test_well_conditioned_projection_leaves_cameras_and_mends_singular_ones():
    # A real camera is returned unchanged; singular blocks (a rank-2 block, the mean
    # of cameras all around an object) get M + c m I, invertible, and their rays are
    # finite with finite gradients, with no check raising.
    P = random_intrinsics(B)[2] @ random_pose(B)
    assert torch.equal(well_conditioned_projection(P), P)
    azimuths = torch.linspace(0, 2 * math.pi, 9, dtype=f64)[:-1]
    ring = torch.stack([torch.tensor([[math.cos(a), 0, -math.sin(a)], [0, 1, 0],
                                      [math.sin(a), 0, math.cos(a)]], dtype=f64)
                        for a in azimuths]).mean(0)  # fmt: skip
    rank2 = torch.zeros(3, 3, dtype=f64)
    rank2[:, :2] = torch.randn(3, 2, dtype=f64)
    singular = torch.stack([ring, rank2])
    singular = torch.cat([singular, torch.tensor([[[0.0], [0.0], [2.5]]] * 2, dtype=f64)], -1)
    assert (singular[:, :, :3].det().abs() < 1e-12).all()
    mended = well_conditioned_projection(singular.requires_grad_(True))
    m = singular[:, :, :3].detach().abs().amax(dim=(-1, -2))
    expected = singular[:, :, :3].detach() + (1e-4 ** (1 / 3) * m)[:, None, None] * torch.eye(3)
    torch.testing.assert_close(mended[:, :, :3].detach(), expected)
    assert (mended[:, :, :3].det().abs() > 1e-6).all()
    rays = ProjectionMatrixCamera(mended, validate=False).rays_at(random_pixels_depths(5)[0][:2])
    assert torch.isfinite(rays.directions).all() and torch.isfinite(rays.origins).all()
    (grad,) = torch.autograd.grad(rays.directions.sum(), singular)
    assert torch.isfinite(grad).all()
    with pytest.raises(ValueError, match="P: the left 3x3 block is singular"):
        ProjectionMatrixCamera(singular.detach())


def test_gradients_through_projection():
    focal, principal, _ = random_intrinsics(2)
    pose = random_pose(2)
    points = (torch.rand(2, 5, 3, dtype=f64) - 0.5).requires_grad_(True)
    focal = focal.requires_grad_(True)
    assert gradcheck(lambda p, f: PerspectiveCamera(f, principal, pose).project(p), (points, focal))
    pixels, depth = random_pixels_depths(5)
    P = (random_intrinsics(B)[2] @ random_pose(B)).requires_grad_(True)
    assert gradcheck(lambda P: ProjectionMatrixCamera(P).rays_at(pixels[:, :5]).directions, (P,))


@pytest.mark.cuda
@pytest.mark.parametrize("name", FACTORIES)
def test_cuda_matches_cpu(name):
    cam = FACTORIES[name]()
    gpu = cam.to("cuda")
    assert gpu.device.type == "cuda"
    r_cpu, r_gpu = cam.rays(H, W), gpu.rays(H, W)
    torch.testing.assert_close(r_gpu.directions.cpu(), r_cpu.directions)
    torch.testing.assert_close(r_gpu.origins.cpu(), r_cpu.origins)
    pixels, depth = random_pixels_depths()
    torch.testing.assert_close(
        gpu.unproject(pixels.cuda(), depth.cuda()).cpu(), cam.unproject(pixels, depth)
    )


def test_pixel_grid_rejects_empty():
    with pytest.raises(ValueError, match="height, width"):
        pixel_grid(0, 4)


def test_projection_head_refuses_a_singular_starting_camera():
    from svrecon.cameras import ProjectionMatrixHead

    mean = torch.zeros(3, 4)
    mean[0, 0] = mean[1, 1] = 1.0
    with pytest.raises(ValueError, match="P: the left 3x3 block is singular"):
        ProjectionMatrixHead(8, mean)
    assert len(ProjectionMatrixHead(8)(torch.randn(2, 8))) == 2
