"""A fuzz (hypothesis) of the fields, renderers, cameras and volumetric metrics, each
against something independent: the analytic sphere and its exact ray hits, camera
round trips, and numpy. Policy (docs/reliability.md): any batch and point count (0
included) gives outputs of the documented shape, finite for finite input; a NaN input
stays NaN in its own entries and nowhere else; wrong shapes are refused by name."""

import math

import numpy as np
import pytest
import torch
import trimesh
from hypothesis import given, settings
from hypothesis import strategies as st

from svrecon.cameras import PerspectiveCamera, ProjectionMatrixCamera, RayBundle
from svrecon.fields import (
    BranchedAlbedo,
    BranchedOccupancy,
    DISNDecoder,
    HyperSDFField,
    JointOccupancyField,
    OccupancyNetwork,
    PositionalEncoding,
    SDFNetwork,
)
from svrecon.metrics import solid_voxels, volumetric_iou
from svrecon.renderers import (
    LaplaceDensity,
    LinearBinarySearch,
    LinearSearch,
    SphereTracer,
    SRNRayMarcher,
    VolumeRenderer,
)

from .helpers import random_intrinsics, random_pose, random_rays
from .reference.analytic import as_field, ray_sphere, sphere_sdf

f64 = torch.float64
FUZZ = settings(max_examples=12, deadline=None)

# -- fields -------------------------------------------------------------------------


def _field(name):
    """(module, call(module, points [B, N, 3]) -> the field's value [B, N])."""
    torch.manual_seed(0)
    if name == "sdf":
        m = SDFNetwork(4, 16, 3, (2,), 4, PositionalEncoding(2, "nerf")).double()
        return m, lambda m, p: m(p, torch.ones(len(p), 4, dtype=f64)).sdf
    if name == "hyper":
        m = HyperSDFField(8, trunk_dims=(8, 8), hidden_dims=(16,)).double()
        return m, lambda m, p: m(torch.ones(len(p), 8, dtype=f64))(p).sdf
    if name == "occupancy":
        m = OccupancyNetwork(4, (16, 16)).double()
        return m, lambda m, p: m(p, torch.ones(len(p), 4, dtype=f64)).occupancy
    if name == "joint":
        m = JointOccupancyField(
            BranchedOccupancy(4, 2, (16,), 3), BranchedAlbedo(4, 4, 2, (16,), 3)
        ).double()

        def joint(m, p):
            z = torch.ones(len(p), 4, dtype=f64)
            return m(p, z, z, torch.ones(len(p), 2, dtype=f64)).occupancy

        return m, joint
    m = DISNDecoder(6, 5, (8,), (8,)).double()
    return m, lambda m, p: m(p, torch.ones(len(p), 6, dtype=f64), p.new_ones(*p.shape[:2], 5)).sdf


FIELDS = ["sdf", "hyper", "occupancy", "joint", "disn"]


@pytest.mark.parametrize("name", FIELDS)
@FUZZ
@given(b=st.integers(0, 3), n=st.integers(0, 7), seed=st.integers(0, 2**16))
def test_fields_give_finite_values_of_any_size_and_keep_nan_in_its_point(name, b, n, seed):
    module, call = _field(name)
    g = torch.Generator().manual_seed(seed)
    points = (torch.rand(b, n, 3, generator=g, dtype=f64) * 4 - 2).requires_grad_()
    value = call(module, points)
    assert value.shape == (b, n) and torch.isfinite(value).all()
    if b * n:
        (grad,) = torch.autograd.grad(value.sum(), points)
        assert torch.isfinite(grad).all()
        poisoned = points.detach().clone()
        poisoned[0, 0, 1] = float("nan")
        out = call(module, poisoned)
        assert torch.isnan(out[0, 0])
        others = torch.ones(b, n, dtype=torch.bool)
        others[0, 0] = False
        torch.testing.assert_close(out[others], value.detach()[others])


@pytest.mark.parametrize("name", FIELDS)
def test_fields_name_points_when_the_shape_is_wrong(name):
    module, call = _field(name)
    for bad in (torch.rand(2, 5, dtype=f64), torch.rand(2, 5, 2, dtype=f64)):
        with pytest.raises(ValueError, match="points"):
            call(module, bad)


# -- renderers ----------------------------------------------------------------------


RAY_FIELDS = ("origins", "directions", "pixels", "near", "far", "depth_per_distance")
SEARCHES = {
    "linear": lambda: LinearSearch(num_samples=256),
    "linear_binary": lambda: LinearBinarySearch(num_samples=64, num_refine=12),
    "tracer": lambda: SphereTracer(max_steps=200, tolerance=1e-7),
}


@pytest.mark.parametrize("name", sorted(SEARCHES))
@FUZZ
@given(
    b=st.integers(1, 3),
    size=st.integers(1, 9),
    seed=st.integers(0, 2**16),
    radius=st.floats(0.05, 0.9),
)
def test_searches_find_the_exact_sphere_hits_from_random_cameras(name, b, size, seed, radius):
    rays = random_rays(b, size, seed, dtype=f64)
    search = SEARCHES[name]()
    out = search(as_field(sphere_sdf, radius=radius), rays)
    t, _ = ray_sphere(rays.origins, rays.directions, radius=radius)
    for key in ("distance", "depth", "points", "normals", "opacity"):
        assert torch.isfinite(getattr(out, key)).all(), key
    # rays that pass the sphere's rim within 2% of its radius may go either way; a
    # sampled search (linear, linear-binary) is sure to hit only where the chord
    # through the sphere is longer than its sample spacing
    rim = (rays.origins - (rays.origins * rays.directions).sum(-1, keepdim=True)
           * rays.directions).norm(dim=-1)  # fmt: skip
    samples = getattr(search, "num_samples", None)  # None: the sphere tracer
    spacing = (rays.far - rays.near) / (samples - 1 if samples else 1)
    chord = 2 * (radius**2 - rim**2).clamp_min(0).sqrt()
    clear = ((rim - radius).abs() > 0.02 * radius) & ((rim > radius) | (chord > spacing)
                                                      | (samples is None))  # fmt: skip
    assert torch.equal(out.mask[clear], torch.isfinite(t)[clear])
    hit = out.mask & torch.isfinite(t)
    # a linear search resolves one sample spacing; the refined searches far less
    tolerance = spacing if name == "linear" else torch.full_like(spacing, 1e-4)
    assert ((out.distance - t).abs()[hit] <= tolerance[hit]).all()


@pytest.mark.parametrize("name", [*sorted(SEARCHES), "volume", "srn"])
@FUZZ
@given(b=st.integers(0, 2), size=st.integers(0, 4), seed=st.integers(0, 2**16))
def test_renderers_of_empty_batches_and_fields_without_a_surface(name, b, size, seed):
    rays = random_rays(max(b, 1), max(size, 1), seed, dtype=f64)
    if b == 0:  # no cameras or no rays: empty outputs of the right shape
        rays = rays[:0]
    if size == 0:
        rays = RayBundle(*(getattr(rays, f)[:, :0] for f in RAY_FIELDS))
    nothing = as_field(lambda p: p.new_full(p.shape[:-1], 0.5))  # an SDF with no zero
    renderer = {
        "volume": lambda: VolumeRenderer(LaplaceDensity(0.05), num_samples=16).double(),
        "srn": lambda: SRNRayMarcher(feature_dim=4, num_steps=3).double(),
        **SEARCHES,
    }[name]()
    out = renderer(nothing, rays)
    assert out.distance.shape == rays.near.shape
    for key in ("distance", "depth", "points", "opacity"):
        assert torch.isfinite(getattr(out, key)).all(), key
    if name in SEARCHES:
        assert not out.mask.any()
    if name == "volume":
        assert (out.opacity < 0.01).all()  # almost no density anywhere


# -- cameras ------------------------------------------------------------------------


@FUZZ
@given(b=st.integers(1, 4), n=st.integers(0, 9), seed=st.integers(0, 2**16))
def test_cameras_unproject_what_they_project(b, n, seed):
    g = torch.Generator().manual_seed(seed)
    pose = random_pose(b, seed=seed)
    focal, principal, K = random_intrinsics(b, seed=seed)
    scale = torch.rand(b, generator=g, dtype=f64) * 4 - 2
    scale = torch.where(scale.abs() < 0.1, torch.full_like(scale, 0.5), scale)
    cameras = [
        PerspectiveCamera(focal, principal, pose),
        ProjectionMatrixCamera(scale[:, None, None] * (K @ pose)),
    ]
    points = torch.rand(b, n, 3, generator=g, dtype=f64) - 0.5
    for camera in cameras:
        pixels = camera.project(points)
        if isinstance(camera, ProjectionMatrixCamera):
            depth = camera.depth(points)
        else:  # z in the camera frame, from the pose
            depth = (points @ pose[:, :, :3].transpose(1, 2) + pose[:, None, :, 3])[..., 2]
        assert pixels.shape == (b, n, 2) and (depth > 0).all()
        torch.testing.assert_close(camera.unproject(pixels, depth), points)
        rays = camera.rays_at(pixels)
        torch.testing.assert_close(rays.directions.norm(dim=-1), torch.ones(b, n, dtype=f64))
        # the ray through a point's pixel passes through the point
        offset = points - rays.origins
        along = (offset * rays.directions).sum(-1, keepdim=True)
        torch.testing.assert_close(offset, along * rays.directions)


@FUZZ
@given(b=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_degenerate_cameras_are_refused_by_name(b, seed):
    pose = random_pose(b, seed=seed)
    focal, principal, K = random_intrinsics(b, seed=seed)
    for bad in (focal * 0, -focal, focal * float("nan")):
        with pytest.raises(ValueError, match="focal"):
            PerspectiveCamera(bad, principal, pose)
    flat = K @ pose
    flat[:, 2, :3] = 0  # a camera at infinity: no finite centre
    with pytest.raises(ValueError, match="P: the left 3x3 block is singular"):
        ProjectionMatrixCamera(flat)


# -- volumetric metrics -------------------------------------------------------------


@FUZZ
@given(
    b=st.integers(1, 3),
    dims=st.lists(st.integers(0, 5), min_size=1, max_size=3),
    seed=st.integers(0, 2**16),
    density=st.floats(0, 1),
)
def test_volumetric_iou_against_numpy(b, dims, seed, density):
    rng = np.random.default_rng(seed)
    a = rng.random((b, *dims)) < density
    c = rng.random((b, *dims)) < density
    iou = volumetric_iou(torch.from_numpy(a), torch.from_numpy(c))
    for i in range(b):
        union = np.logical_or(a[i], c[i]).sum()
        expected = 1.0 if union == 0 else np.logical_and(a[i], c[i]).sum() / union
        assert math.isclose(iou[i].item(), expected, rel_tol=1e-12)
    torch.testing.assert_close(iou, volumetric_iou(torch.from_numpy(c), torch.from_numpy(a)))


@FUZZ
@given(
    extents=st.tuples(*[st.floats(0.1, 1.6)] * 3),
    centre=st.tuples(*[st.floats(-0.2, 0.2)] * 3),
    resolution=st.integers(4, 24),
)
def test_solid_voxels_of_a_box_lie_between_its_inner_and_overlapping_cells(
    extents, centre, resolution
):
    # Exact bounds from the box alone: every cell whose centre is inside the box is
    # solid, and no cell that does not overlap the box is.
    box = trimesh.creation.box(extents=extents)
    box.apply_translation(centre)
    grid = solid_voxels(box, resolution, (-1.0, 1.0))
    cell = 2.0 / resolution
    lo = np.asarray(centre) - np.asarray(extents) / 2
    hi = np.asarray(centre) + np.asarray(extents) / 2
    edges = -1.0 + cell * np.arange(resolution + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    inside = [(centres > lo[k]) & (centres < hi[k]) for k in range(3)]
    overlap = [(edges[1:] >= lo[k]) & (edges[:-1] <= hi[k]) for k in range(3)]
    inner = inside[0][:, None, None] & inside[1][None, :, None] & inside[2][None, None, :]
    outer = overlap[0][:, None, None] & overlap[1][None, :, None] & overlap[2][None, None, :]
    assert not (inner & ~grid).any(), "a cell inside the box is empty"
    assert not (grid & ~outer).any(), "a cell away from the box is solid"


# -- mesh silhouettes ---------------------------------------------------------------


@FUZZ
@given(b=st.integers(1, 3), seed=st.integers(0, 2**16), radius=st.floats(0.2, 0.8))
def test_mesh_silhouette_of_a_box_is_the_pixels_whose_ray_meets_it(b, seed, radius):
    # A box's projection is the union of its faces' projections, so the silhouette is
    # exactly the pixel centres whose ray meets the box (slab test), off its rim.
    from svrecon.mesh import mesh_silhouette

    from .reference.analytic import ray_box

    half = (radius, 0.6 * radius, 0.8 * radius)
    box = trimesh.creation.box(extents=[2 * h for h in half])
    pose = random_pose(b, seed=seed)
    focal, principal, _ = random_intrinsics(b, seed=seed, size=(24, 32))
    camera = PerspectiveCamera(focal, principal, pose)
    silhouette = mesh_silhouette(torch.from_numpy(box.vertices), torch.from_numpy(box.faces),
                                 camera, (24, 32))  # fmt: skip
    rays = camera.rays(24, 32)
    t, _ = ray_box(rays.origins, rays.directions, half=half)
    hit = torch.isfinite(t).reshape(b, 24, 32)
    grown, _ = ray_box(rays.origins, rays.directions, half=[1.02 * h for h in half])
    shrunk, _ = ray_box(rays.origins, rays.directions, half=[0.98 * h for h in half])
    clear = (torch.isfinite(grown) == torch.isfinite(shrunk)).reshape(b, 24, 32)
    assert silhouette.shape == (b, 24, 32) and silhouette.dtype == torch.bool
    assert torch.equal(silhouette[clear], hit[clear])
