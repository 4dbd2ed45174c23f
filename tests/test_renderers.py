"""Renderers against analytic shapes, hand-worked formulas and naive loops."""

import math

import pytest
import torch

from svrecon.cameras import PerspectiveCamera, RayBundle, look_at
from svrecon.fields import FieldOutput
from svrecon.losses import ray_free_space_loss, ray_intersection_loss
from svrecon.renderers import (
    FACE3DMM_SH_CONSTANTS,
    SH_CONSTANTS,
    LaplaceDensity,
    LinearBinarySearch,
    LinearSearch,
    RenderOutput,
    SphereTracer,
    SRNRayMarcher,
    VolumeRenderer,
    render_chunked,
    sh_basis,
    sh_shading,
)

from .helpers import random_rays
from .reference.analytic import (
    as_field,
    box_sdf,
    plane_sdf,
    ray_box,
    ray_plane,
    ray_sphere,
    sphere_sdf,
)
from .reference.compositing import composite_loop

SHAPES = {
    # name: (sdf, reference intersection, bounding radius)
    "sphere": (sphere_sdf, ray_sphere, 0.8),
    "box": (box_sdf, ray_box, 0.75),
    "plane": (plane_sdf, None, 1.0),
}


def reference_hits(name, rays):
    """Exact hits (inf for a miss) and normals, computed in float64 for any ray dtype."""
    rays = rays.to(torch.float64)
    if name == "plane":
        t, n = ray_plane(rays.origins, rays.directions, rays.near)
    else:
        t, n = SHAPES[name][1](rays.origins, rays.directions)
    t = torch.where((t <= rays.far) & (rays.far > rays.near), t, torch.full_like(t, float("inf")))
    return t, n


def iou(a, b):
    return ((a & b).sum() / (a | b).sum()).item()


@pytest.mark.parametrize("shape", ["sphere", "box", "plane"])
@pytest.mark.parametrize(
    "renderer,kind",
    [
        (SphereTracer(), "sdf"),
        (LinearBinarySearch(), "sdf"),
        (LinearBinarySearch(), "occupancy"),
    ],
    ids=["sphere-tracing", "linear-binary-sdf", "linear-binary-occupancy"],
)
def test_search_matches_analytic_intersections(shape, renderer, kind):
    sdf = SHAPES[shape][0]
    for seed in range(2):
        rays = random_rays(seed=seed, radius=SHAPES[shape][2])
        t_true, n_true = reference_hits(shape, rays)
        hit_true = torch.isfinite(t_true)
        out = renderer(as_field(sdf, kind), rays)
        assert iou(out.mask, hit_true) > 0.99
        both = out.mask & hit_true
        assert both.sum() > 500
        assert (out.distance.double() - t_true)[both].abs().max() < 1e-4
        z_true = t_true * rays.depth_per_distance.double()
        assert (out.depth.double() - z_true)[both].abs().max() < 1e-4
        # Normals: skip box edges (within 1e-3 of two faces), where the normal jumps,
        # and plane rays that start inside the solid (no surface there).
        p = (
            rays.origins.double()
            + torch.where(hit_true, t_true, 0)[..., None] * rays.directions.double()
        )
        smooth = both & (n_true.norm(dim=-1) > 0)
        if shape == "box":
            near_face = (p.abs() - torch.tensor([0.5, 0.3, 0.4], dtype=p.dtype)).abs() < 1e-3
            smooth &= near_face.sum(-1) == 1
        assert (out.normals.double() - n_true)[smooth].norm(dim=-1).max() < 1e-3
        assert torch.isfinite(out.normals).all() and torch.isfinite(out.distance).all()


def test_linear_binary_beats_linear_at_equal_evaluations():
    # MSU, Sec. 3.3: 128 samples + 8 bisections = 136 evaluations per ray for both.
    rays = random_rays(seed=4, radius=0.8)
    t_true, _ = ray_sphere(rays.origins, rays.directions)
    field = as_field(sphere_sdf, "occupancy")
    linear = LinearSearch(num_samples=136)(field, rays)
    binary = LinearBinarySearch(num_samples=128, num_refine=8)(field, rays)
    both = linear.mask & binary.mask & torch.isfinite(t_true)
    err_linear = (linear.distance - t_true)[both].abs()
    err_binary = (binary.distance - t_true)[both].abs()
    assert err_binary.mean() < 0.05 * err_linear.mean()
    assert err_binary.max() < err_linear.max()


def test_linear_search_returns_first_interior_sample_and_closest_miss():
    # One ray through a sphere of radius 0.5, from z = -2 along +z, samples at
    # near + k * (far - near) / 4 for near = 0, far = 4: t = 0, 1, 2, 3, 4.
    o = torch.tensor([[[0.0, 0.0, -2.0], [0.0, 0.7, -2.0]]])
    d = torch.tensor([[[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]])
    rays = RayBundle(
        o, d, torch.zeros(1, 2, 2), torch.zeros(1, 2), torch.full((1, 2), 4.0), torch.ones(1, 2)
    )
    out = LinearSearch(num_samples=5)(as_field(sphere_sdf, radius=0.5), rays)
    assert out.mask.tolist() == [[True, False]]
    assert out.distance[0, 0].item() == 2.0  # the centre, the first sample inside
    assert out.distance[0, 1].item() == 2.0  # the miss: closest sample to the surface
    assert out.opacity.tolist() == [[1.0, 0.0]]


class ParamSphere(torch.nn.Module):
    def __init__(self, radius, center, dtype=torch.float64):
        super().__init__()
        self.radius = torch.nn.Parameter(torch.tensor(radius, dtype=dtype))
        self.center = torch.nn.Parameter(torch.tensor(center, dtype=dtype))

    def forward(self, points):
        diff = points - self.center
        sdf = (diff * diff).sum(-1).sqrt() - self.radius
        return FieldOutput(sdf=sdf, rgb=torch.sigmoid(points))


@pytest.mark.parametrize(
    "renderer", [SphereTracer(tolerance=1e-12), LinearBinarySearch(num_refine=40)]
)
def test_implicit_gradient_matches_finite_differences(renderer):
    rays = random_rays(batch=2, size=8, seed=5, radius=1.5, dtype=torch.float64)
    sphere = ParamSphere(0.6, [0.05, -0.02, 0.03])
    out = renderer(sphere, rays)
    hit = out.mask
    assert hit.sum() > 10
    weights = torch.randn(out.distance.shape, dtype=torch.float64) * hit
    (weights * out.distance).sum().backward()
    h = 1e-6
    for param, index in [(sphere.radius, None), (sphere.center, 0), (sphere.center, 2)]:
        with torch.no_grad():
            base = param.detach().clone()
            values = []
            for sign in (1, -1):
                bumped = base.clone()
                if index is None:
                    bumped += sign * h
                else:
                    bumped[index] += sign * h
                param.copy_(bumped)
                values.append((weights * renderer(sphere, rays).distance).sum())
            param.copy_(base)
        fd = (values[0] - values[1]) / (2 * h)
        grad = param.grad if index is None else param.grad[index]
        assert torch.allclose(grad, fd, rtol=1e-5, atol=1e-6)
    # dt/dr is also known in closed form: 1 / (n . d) at the hit (n . d < 0).
    sphere.zero_grad()
    out = renderer(sphere, rays)
    out.distance[hit].sum().backward()
    n = (out.points - sphere.center).detach() / 0.6
    expected = (1 / (n * rays.directions).sum(-1))[hit].sum()
    assert torch.allclose(sphere.radius.grad, expected, rtol=1e-6)


def test_surface_normals_gradcheck_gradgradcheck():
    # The normal path (create_graph) is differentiable twice in the field's parameters,
    # through the implicit derivative of the hit distance.
    rays = random_rays(batch=1, size=4, seed=6, radius=1.5, dtype=torch.float64)

    def render(radius, center):
        def field(points):
            diff = points - center
            return FieldOutput(sdf=((diff * diff).sum(-1) + 1e-3).sqrt() - radius)

        out = SphereTracer(tolerance=1e-13)(field, rays, create_graph=True)
        assert out.mask.sum() > 4
        return out.normals, out.distance

    radius = torch.tensor(0.6, dtype=torch.float64, requires_grad=True)
    center = torch.tensor([0.01, 0.02, -0.01], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(render, (radius, center))
    assert torch.autograd.gradgradcheck(render, (radius, center))


def constant_field(points):
    return FieldOutput(sdf=torch.ones(points.shape[:2], dtype=points.dtype) * 0.3)


def quadratic_field(scale):
    # sdf = scale * |x|^2 - 0.1: the spatial gradient is zero at the origin.
    def field(points):
        return FieldOutput(
            sdf=scale * (points * points).sum(-1) - 0.1,
            features=points.repeat(1, 1, 2) * scale,
            rgb=torch.sigmoid(points * scale),
        )

    return field


def tangent_and_axis_rays(dtype=torch.float64):
    # A ray tangent to the unit-radius-0.6 sphere, one through the origin, one that misses.
    o = torch.tensor([[[0.0, 0.6, -3.0], [0.0, 0.0, -3.0], [0.0, 2.0, -3.0]]], dtype=dtype)
    d = torch.tensor([[[0.0, 0.0, 1.0]] * 3], dtype=dtype)
    rays = RayBundle(
        o,
        d,
        torch.zeros(1, 3, 2, dtype=dtype),
        torch.zeros(1, 3, dtype=dtype),
        torch.full((1, 3), float("inf"), dtype=dtype),
        torch.ones(1, 3, dtype=dtype),
    )
    return rays.intersect_sphere(1.0)[0]


@pytest.mark.parametrize("name", ["tracer", "linear-binary", "volume", "srn"])
def test_no_nan_for_misses_grazing_rays_and_zero_gradients(name):
    rays = tangent_and_axis_rays()
    scale = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    marcher = SRNRayMarcher(feature_dim=6, initial_depth=2.0).double()
    render = {
        "tracer": lambda f: SphereTracer()(f, rays, create_graph=True),
        "linear-binary": lambda f: LinearBinarySearch()(f, rays, create_graph=True),
        "volume": lambda f: VolumeRenderer(background=1.0).double()(f, rays, create_graph=True),
        "srn": lambda f: marcher(f, rays, normals=True, create_graph=True),
    }[name]
    fields = [quadratic_field(scale)]
    if name != "srn":
        fields.append(constant_field)  # no surface at all, zero gradient everywhere
    for field in fields:
        out = render(field)
        for key in ("distance", "depth", "points", "opacity", "normals"):
            assert torch.isfinite(getattr(out, key)).all(), key
        if field is constant_field:
            assert not out.mask.any()
            assert (out.normals == 0).all()
            continue
        loss = out.distance.sum() + out.normals.sum() + out.opacity.sum() + out.rgb.sum()
        grads = torch.autograd.grad(
            loss, [scale, *marcher.parameters()] if name == "srn" else [scale], allow_unused=True
        )
        assert all(g is None or torch.isfinite(g).all() for g in grads)


def test_renderers_refuse_unbounded_rays_and_wrong_fields():
    rays = random_rays(batch=1, size=4)
    unbounded = RayBundle(
        rays.origins,
        rays.directions,
        rays.pixels,
        rays.near,
        torch.full_like(rays.far, float("inf")),
        rays.depth_per_distance,
    )
    with pytest.raises(ValueError, match="finite near and far"):
        SphereTracer()(as_field(sphere_sdf), unbounded)
    with pytest.raises(ValueError, match="finite near and far"):
        VolumeRenderer()(as_field(sphere_sdf), unbounded)
    with pytest.raises(ValueError, match="must return an sdf"):
        SphereTracer()(as_field(sphere_sdf, "occupancy"), rays)
    with pytest.raises(ValueError, match="must return an sdf"):
        VolumeRenderer()(as_field(sphere_sdf, "occupancy"), rays)
    with pytest.raises(ValueError, match=r"field\(points\): expected values of shape"):
        SphereTracer()(lambda p: FieldOutput(sdf=p[..., 0].reshape(-1)), rays)


# --- volume rendering ---------------------------------------------------------------------


def test_laplace_density_hand_values_and_gradcheck():
    density = LaplaceDensity(beta_init=0.25, beta_min=0.0).double()  # 0.25 is exact in float32
    s = torch.tensor([0.0, 0.25, -0.25, 5.0, -5.0], dtype=torch.float64)
    e = math.exp(-1)
    expected = torch.tensor(
        [2.0, 2.0 * e, 4 * (1 - 0.5 * e), 2.0 * math.exp(-20), 4 * (1 - 0.5 * math.exp(-20))],
        dtype=torch.float64,
    )
    assert torch.allclose(density(s), expected, rtol=1e-12)
    shifted = LaplaceDensity(beta_init=0.1, beta_min=1e-4)
    with torch.no_grad():
        shifted.beta_param.fill_(-0.1)  # beta = |beta_param| + beta_min
    assert shifted.beta.item() == pytest.approx(0.1001)
    # (Psi is not twice differentiable at s = 0, so the points avoid it.)
    x = torch.linspace(-0.5, 0.5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(density, (x,))
    assert torch.autograd.gradgradcheck(density, (x,))
    huge = torch.tensor([-1e6, 1e6], dtype=torch.float64, requires_grad=True)
    density(huge).sum().backward()
    assert torch.isfinite(huge.grad).all()


@pytest.mark.parametrize("last_delta", [0.0, 1e10])
def test_volume_weights_equal_naive_compositing_loop(last_delta):
    rays = random_rays(batch=2, size=4, seed=7, radius=1.0, dtype=torch.float64)
    renderer = VolumeRenderer(LaplaceDensity(0.05), num_samples=16, last_delta=last_delta).double()
    out = renderer(as_field(sphere_sdf), rays, normals=False)
    density = renderer.density
    for b in range(2):
        for r in range(0, 16, 3):
            t = out.samples[b, r]
            points = rays.origins[b, r] + t[:, None] * rays.directions[b, r]
            sigma = density(sphere_sdf(points)).tolist()
            colors = ((points.sin() + 1) / 2).tolist()
            w, opacity, color = composite_loop(t.tolist(), sigma, colors, last_delta)
            assert torch.allclose(
                out.weights[b, r], torch.tensor(w, dtype=torch.float64), atol=1e-12
            )
            assert out.opacity[b, r].item() == pytest.approx(opacity, abs=1e-12)
            assert torch.allclose(
                out.rgb[b, r], torch.tensor(color, dtype=torch.float64), atol=1e-12
            )
    assert torch.allclose(out.weights.sum(-1), out.opacity)
    if last_delta == 1e10:
        assert torch.allclose(out.opacity, torch.ones_like(out.opacity))


def test_volume_sharp_sphere_matches_silhouette_and_depth():
    rays = random_rays(batch=2, size=64, seed=8, radius=0.8)
    t_true, _ = ray_sphere(rays.origins, rays.directions)
    hit = torch.isfinite(t_true)
    errors = []
    for beta in (0.1, 0.01, 0.001):
        renderer = VolumeRenderer(LaplaceDensity(beta, beta_min=0.0), num_samples=256)
        out = renderer(as_field(sphere_sdf), rays, normals=False)
        errors.append((out.distance - t_true)[hit & out.mask].abs().mean().item())
    assert errors[0] > errors[1] > errors[2]
    spacing = (rays.far - rays.near).max().item() / 255
    assert errors[2] < spacing
    assert iou(out.mask, hit) > 0.99
    assert (out.opacity - hit.float()).abs().mean() < 0.01
    assert torch.allclose(out.weights.sum(-1), out.opacity)


def test_volume_normals_composite_unit_normals_and_gradcheck():
    rays = random_rays(batch=1, size=3, seed=9, radius=1.0, dtype=torch.float64)

    def render(radius):
        def field(points):
            return FieldOutput(
                sdf=(points * points).sum(-1).sqrt() - radius, rgb=torch.sigmoid(points)
            )

        renderer = VolumeRenderer(LaplaceDensity(0.05, learnable=False), num_samples=8).double()
        out = renderer(field, rays, create_graph=True)
        return out.normals, out.rgb, out.opacity

    radius = torch.tensor(0.6, dtype=torch.float64, requires_grad=True)
    normals, _, opacity = render(radius)
    # A composite of unit normals: its length is at most the opacity.
    assert (normals.norm(dim=-1) <= opacity + 1e-12).all()
    assert torch.autograd.gradcheck(render, (radius,))
    assert torch.autograd.gradgradcheck(render, (radius,))


def test_volume_stratified_samples_stay_in_their_bins():
    rays = random_rays(batch=2, size=4, seed=10)
    renderer = VolumeRenderer(num_samples=8, stratified=True)
    g = torch.Generator().manual_seed(0)
    t = renderer.sample_distances(rays, stratified=True, generator=g)
    u = (t - rays.near[..., None]) / (rays.far - rays.near).clamp_min(1e-9)[..., None] * 8
    hit = rays.far > rays.near
    bins = torch.arange(8.0)
    assert ((u[hit] >= bins - 1e-4) & (u[hit] <= bins + 1 + 1e-4)).all()
    again = renderer.sample_distances(
        rays, stratified=True, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(t, again)


def test_volume_background_composite():
    rays = random_rays(batch=1, size=16, seed=11, radius=0.8)
    bare = VolumeRenderer(LaplaceDensity(0.01))(as_field(sphere_sdf), rays, normals=False)
    white = VolumeRenderer(LaplaceDensity(0.01), background=1.0)(
        as_field(sphere_sdf), rays, normals=False
    )
    assert torch.allclose(white.rgb, bare.rgb + (1 - bare.opacity[..., None]), atol=1e-6)
    assert torch.allclose(white.rgb, bare.composite(1.0), atol=1e-6)


# --- SRN marcher --------------------------------------------------------------------------


def test_srn_marcher_initialisation_and_bisection():
    marcher = SRNRayMarcher(feature_dim=4)
    h = 32
    for bias in (marcher.lstm.bias_ih, marcher.lstm.bias_hh):
        assert (bias[h : 2 * h] == 1).all()  # forget gate; effective bias 2
    # With the step head zeroed and its bias fixed, the march is deterministic:
    # z = 1, 1.5, ..., and bisection finds the sphere of radius 0.6 seen from z = -3.
    with torch.no_grad():
        marcher.step.weight.zero_()
        marcher.step.bias.fill_(0.5)
    o = torch.tensor([[[0.0, 0.0, -3.0], [0.0, 0.1, -3.0]]])
    d = torch.nn.functional.normalize(torch.tensor([[[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]]), dim=-1)
    rays = RayBundle(
        o, d, torch.zeros(1, 2, 2), torch.zeros(1, 2), torch.full((1, 2), 9.0), torch.ones(1, 2)
    )
    out = marcher(as_field(sphere_sdf), rays, initial_depth=1.0)
    expected_depths = torch.arange(11) * 0.5 + 1.0
    assert torch.allclose(out.samples[0, 0], expected_depths)
    assert out.marched_values.shape == (1, 2, 11)
    # The last two marched points (z = 5.5 and 6) are both past the sphere (exit at 3.6):
    # no sign change, so bisection walks to the right end, as in the seed code.
    assert out.depth[0, 0].item() == pytest.approx(6.0, abs=1e-2)
    with torch.no_grad():
        marcher.step.bias.fill_(0.15)  # z = 1, 1.15, ..., 2.5; only [2.35, 2.5] holds 2.4
    out = marcher(as_field(sphere_sdf), rays, initial_depth=1.0)
    assert out.mask[0, 0]
    assert out.depth[0, 0].item() == pytest.approx(2.4, abs=0.15 / 2**10)
    # The smallest marched SDF is at z = 2.5, 0.5 from the centre: SDF -0.1.
    soft = torch.sigmoid(torch.tensor(3.0)).item()
    assert out.opacity[0, 0].item() == pytest.approx(soft, abs=1e-5)


def test_srn_marcher_max_depth_caps_every_step():
    marcher = SRNRayMarcher(feature_dim=4)
    with torch.no_grad():
        marcher.step.weight.zero_()
        marcher.step.bias.fill_(0.5)  # uncapped: z = 1, 1.5, ..., 6
    o = torch.tensor([[[0.0, 0.0, -3.0], [0.0, 0.1, -3.0]]])
    d = torch.tensor([[[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]])
    rays = RayBundle(
        o, d, torch.zeros(1, 2, 2), torch.zeros(1, 2), torch.full((1, 2), 9.0), torch.ones(1, 2)
    )
    cap = torch.tensor([[2.2, 3.0]])
    out = marcher(as_field(sphere_sdf), rays, initial_depth=1.0, max_depth=cap)
    # Hand-worked: min(1 + 0.5 k, cap) for k = 0..10.
    steps = torch.arange(11) * 0.5 + 1.0
    assert torch.allclose(out.samples[0, 0], steps.clamp(max=2.2))
    assert torch.allclose(out.samples[0, 1], steps.clamp(max=3.0))
    # Ray 0 stops at z = 2.2, outside the sphere (entry 2.4): SDF 0.2 and no hit.
    assert not out.mask[0, 0] and out.marched_values[0, 0, -1].item() == pytest.approx(0.2)
    # Ray 1 stops at z = 3, inside: SDF = |(0, 0.1, 0)| - 0.6 = -0.5.
    assert out.mask[0, 1] and out.marched_values[0, 1, -1].item() == pytest.approx(-0.5)
    # A number works as well as a tensor; a start past the cap is pulled back to it.
    out = marcher(as_field(sphere_sdf), rays, initial_depth=4.0, max_depth=3.0)
    assert (out.samples == 3.0).all()
    with pytest.raises(ValueError, match=r"max_depth: expected a number or shape \[1, 2\]"):
        marcher(as_field(sphere_sdf), rays, max_depth=torch.ones(2, 2))


def test_srn_marcher_learns_to_reach_a_sphere():
    torch.manual_seed(0)
    size = 12
    eye = torch.tensor([[0.0, -0.5, -2.8]])
    pose = look_at(eye, torch.zeros(1, 3), torch.tensor([[0.0, -1.0, 0.0]]))
    camera = PerspectiveCamera.from_focal_fraction(1.2, (size, size), pose)
    rays = camera.rays(size, size)
    t_true, _ = ray_sphere(rays.origins, rays.directions)
    hit = torch.isfinite(t_true)
    assert 0.2 < hit.float().mean() < 0.8
    field = as_field(sphere_sdf)
    marcher = SRNRayMarcher(feature_dim=4, initial_depth=1.0)
    opt = torch.optim.Adam(marcher.parameters(), lr=3e-3)
    for _ in range(250):
        out = marcher(field, rays)
        # A heavier free-space term than SDF-SRN's 0.1 keeps the march from overshooting
        # within this short fit.
        marched = out.marched_values
        loss = ray_intersection_loss(marched, hit) + 10 * ray_free_space_loss(marched)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = marcher(field, rays)
    assert iou(out.mask, hit) > 0.9
    surface_error = sphere_sdf(out.points)[hit & out.mask].abs()
    assert surface_error.max() < 0.02


# --- shading ------------------------------------------------------------------------------


def test_sh_basis_hand_values():
    c0, c1, c2, c3, c4 = SH_CONSTANTS
    assert c0 == pytest.approx(0.88622692545)  # pi / sqrt(4 pi) (A_0 = pi)
    assert FACE3DMM_SH_CONSTANTS[0] == pytest.approx(0.28209479177)  # 1 / sqrt(4 pi)
    assert FACE3DMM_SH_CONSTANTS[1:] == SH_CONSTANTS[1:]
    assert c1 == pytest.approx(1.02332670795)  # (2 pi / 3) sqrt(3 / (4 pi))
    assert c2 == pytest.approx(0.24770795610)
    assert c3 == pytest.approx(0.85808553081)
    assert c4 == pytest.approx(0.42904276540)
    s = 1 / math.sqrt(3)
    n = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [s, s, s]], dtype=torch.float64)
    expected = torch.tensor(
        [
            [c0, c1, 0, 0, 2 * c2, 0, 0, 0, 0],
            [c0, 0, 0, c1, -c2, 0, 0, 0, c4],
            [c0, c1 * s, c1 * s, c1 * s, 0, c3 / 3, c3 / 3, c3 / 3, 0],
        ],
        dtype=torch.float64,
    )
    assert torch.allclose(sh_basis(n), expected, atol=1e-12)


def test_sh_shading_hand_value_layouts_and_constant_light():
    c0, c1, c2, _, _ = SH_CONSTANTS
    coeffs = torch.arange(27, dtype=torch.float64).reshape(1, 27) / 10
    n = torch.tensor([[[0.0, 0.0, 1.0]]], dtype=torch.float64)  # [B=1, N=1, 3]
    shading = sh_shading(n, coeffs)
    for c in range(3):
        a = [(9 * c + k) / 10 for k in range(9)]
        assert shading[0, 0, c].item() == pytest.approx(a[0] * c0 + a[1] * c1 + a[4] * 2 * c2)
    assert torch.equal(sh_shading(n, coeffs.reshape(1, 3, 9)), shading)
    constant = torch.zeros(2, 3, 9, dtype=torch.float64)
    constant[:, :, 0] = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]], dtype=torch.float64)
    normals = torch.nn.functional.normalize(torch.randn(2, 5, 7, 3, dtype=torch.float64), dim=-1)
    shaded = sh_shading(normals, constant)
    assert shaded.shape == (2, 5, 7, 3)
    assert torch.allclose(shaded, constant[:, None, None, :, 0].expand_as(shaded) * c0)
    with pytest.raises(ValueError, match=r"coefficients: expected shape \[2, 27\]"):
        sh_shading(normals, torch.zeros(2, 26))


# --- chunking, devices --------------------------------------------------------------------


def test_chunked_rendering_equals_one_pass():
    rays = random_rays(batch=2, size=16, seed=12, radius=0.8)
    field = as_field(sphere_sdf)
    for render in (
        lambda r: SphereTracer()(field, r),
        lambda r: VolumeRenderer(num_samples=16)(field, r),
    ):
        whole = render(rays)
        chunked = render_chunked(render, rays, chunk_size=37)
        for key in ("distance", "depth", "opacity", "rgb", "normals", "points"):
            assert torch.allclose(getattr(whole, key), getattr(chunked, key), atol=1e-6), key
        assert chunked.image("rgb", 16, 16).shape == (2, 3, 16, 16)
        assert chunked.image("mask", 16, 16).shape == (2, 16, 16)
    with pytest.raises(ValueError, match="chunk_size"):
        render_chunked(render, rays, chunk_size=0)


def test_render_output_concatenation_keeps_missing_fields_missing():
    parts = [
        RenderOutput(
            torch.zeros(1, n),
            torch.zeros(1, n),
            torch.zeros(1, n, 3),
            torch.zeros(1, n, dtype=torch.bool),
            torch.zeros(1, n),
        )
        for n in (2, 3)
    ]
    merged = RenderOutput.cat(parts)
    assert merged.distance.shape == (1, 5) and merged.rgb is None


@pytest.mark.cuda
def test_renderers_cuda_parity():
    rays = random_rays(batch=2, size=16, seed=13, radius=0.8)
    field = as_field(sphere_sdf)
    marcher = SRNRayMarcher(feature_dim=4, initial_depth=2.0)
    for render in (
        lambda f, r: SphereTracer()(f, r),
        lambda f, r: LinearBinarySearch()(f, r),
        lambda f, r: VolumeRenderer(num_samples=32).to(r.origins.device)(f, r),
        lambda f, r: marcher.to(r.origins.device)(f, r),
    ):
        cpu = render(field, rays)
        gpu = render(field, rays.to("cuda"))
        assert torch.allclose(cpu.distance, gpu.distance.cpu(), atol=1e-4)
        assert torch.equal(cpu.mask, gpu.mask.cpu())
