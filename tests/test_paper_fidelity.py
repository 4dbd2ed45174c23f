"""Points where svrecon followed a seed's code or a slip instead of the paper
(seed-implementations.md section 7), each checked against a hand-worked value or the
formula written out here."""

import math

import numpy as np
import pytest
import torch

from svrecon.cameras import Rotation6DHead, matrix_to_rotation_6d, rotation_6d_to_matrix
from svrecon.fields import PositionalEncoding

f64 = torch.float64
S = 1 / math.sqrt(2)


def test_positional_encoding_is_exact_in_float64():
    # Section 7.12: pi * 2^k must follow the input's dtype.
    x = torch.linspace(-1, 1, 101, dtype=f64)[:, None].expand(-1, 3).contiguous()
    out = PositionalEncoding(10, "sdf_srn", include_input=False)(x)
    freq = np.pi * 2.0 ** np.arange(10)
    spectrum = x.numpy()[:, :, None] * freq  # [N, 3, L]
    expected = np.concatenate([np.sin(spectrum), np.cos(spectrum)], -1).reshape(101, -1)
    assert np.abs(out.numpy() - expected).max() < 1e-12
    nerf = PositionalEncoding(10, "nerf", include_input=False)(x)
    spectrum = x.numpy()[:, None, :] * 2.0 ** np.arange(10)[:, None]  # [N, L, 3]
    expected = np.stack([np.sin(spectrum), np.cos(spectrum)], -2).reshape(101, -1)
    assert np.abs(nerf.numpy() - expected).max() < 1e-12


def test_rotation_6d_rows_layout_is_disns():
    # DISN Eq. 1: x = N(a1), z = N(x cross a2), y = z cross x are the ROWS of R.
    # a1 = (1, 1, 0), a2 = (0, 0, 1): x = (1, 1, 0)/sqrt2, z = (1, -1, 0)/sqrt2, y = (0, 0, 1).
    d6 = torch.tensor([1.0, 1, 0, 0, 0, 1], dtype=f64)
    rows = torch.tensor([[S, S, 0], [0, 0, 1], [S, -S, 0]], dtype=f64)
    torch.testing.assert_close(rotation_6d_to_matrix(d6, "rows"), rows)
    torch.testing.assert_close(rotation_6d_to_matrix(d6), rows.T)  # Zhou et al.: columns
    first_two_rows = torch.tensor([S, S, 0, 0, 0, 1], dtype=f64)
    torch.testing.assert_close(matrix_to_rotation_6d(rows, "rows"), first_two_rows)
    torch.testing.assert_close(rotation_6d_to_matrix(first_two_rows, "rows"), rows)
    with pytest.raises(ValueError, match="layout"):
        rotation_6d_to_matrix(d6, "diagonal")


def test_disn_camera_head_reads_rows():
    head = Rotation6DHead(4).double()
    with torch.no_grad():
        head.linear.weight.zero_()
        head.linear.bias[:6] = torch.tensor([1.0, 1, 0, 0, 0, 1])
    pose, _ = head(torch.zeros(1, 4, dtype=f64))
    rows = torch.tensor([[S, S, 0], [0, 0, 1], [S, -S, 0]], dtype=f64)
    torch.testing.assert_close(pose[0, :, :3], rows)
    assert Rotation6DHead(4, layout="columns").layout == "columns"


# --- SDF-SRN (section 7.2-7.4) -----------------------------------------------------------


def _sdf_srn(**kw):
    from svrecon.models import SDFSRN

    args = dict(encoder="conv", latent_dim=16, trunk_dims=(16, 16), hidden_dims=(16,),
                num_rays=16 * 16, silhouette_samples=3, eikonal_points=64)  # fmt: skip
    return SDFSRN(**{**args, **kw})


def _batch(masks):
    """Images 0.5 grey on the mask, white elsewhere, seen by the NMR camera."""
    from svrecon.data import view_camera

    masks = torch.stack(masks)
    b = len(masks)
    images = torch.where(masks[:, None], 0.5, 1.0).expand(-1, 3, -1, -1).contiguous()
    camera = view_camera(torch.linspace(0, 1, b), torch.full((b,), 0.3), 16)
    return {"image": images, "mask": masks, "intrinsics": camera.K, "pose": camera.pose}


def _disc(radius=4):
    i = torch.arange(16)[:, None] + 0.5 - 8
    j = torch.arange(16)[None] + 0.5 - 8
    return i * i + j * j < radius * radius


def test_sdf_srn_colour_loss_covers_every_ray_background_toward_white():
    from svrecon.renderers import RenderOutput

    torch.manual_seed(0)
    masks = [_disc(), _disc(5)]
    batch = _batch(masks)

    def grey_marcher(field, rays):  # renders 0.5 grey everywhere
        b, r = rays.near.shape
        z = torch.zeros(b, r)
        return RenderOutput(distance=z, depth=z, points=torch.zeros(b, r, 3),
                            mask=z.bool(), opacity=z, rgb=torch.full((b, r, 3), 0.5),
                            marched_values=torch.zeros(b, r, 4))  # fmt: skip

    for rays, expected in (("all", None), ("foreground", 0.0)):
        model = _sdf_srn(rgb_rays=rays)
        model._march = grey_marcher
        colour = model.compute_losses(batch)["rgb"].item()
        if expected is None:  # every pixel is sampled: error 0.25 on background pixels
            background = 1 - torch.stack(masks).float().mean().item()
            expected = 0.25 * background
        assert colour == pytest.approx(expected, abs=1e-6)


def test_sdf_srn_an_empty_or_full_mask_keeps_the_batch_finite():
    torch.manual_seed(0)
    model = _sdf_srn()
    batch = _batch([torch.zeros(16, 16, dtype=torch.bool), torch.ones(16, 16, dtype=torch.bool),
                    _disc()])  # fmt: skip
    losses = model.losses(batch)
    assert all(torch.isfinite(v) for v in losses.values()), losses
    losses["total"].backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_sdf_srn_paper_recipe_is_the_default():
    from svrecon.models import SDFSRN, get_model

    model = SDFSRN(encoder="conv", latent_dim=16)
    hyper = model.field.trunk.hyper[0]
    widths = [m.out_features for m in hyper if isinstance(m, torch.nn.Linear)][:-1]
    assert widths == [512] * 5  # 5 hidden layers of 512 (both authors' configs)
    assert model.eikonal_points == 10_000 and model.silhouette_samples == 5
    assert model.silhouette_depths == (2.0, 3.5) and model.start_depth == 2.0
    spec = get_model("sdf_srn")
    assert spec.build("paper_airplane").loss_weights["silhouette"] == 1.0
    p3d = spec.preset("paper_pascal3d")
    assert p3d["start_depth"] == 1.2 and p3d["latent_dim"] == 256
    assert p3d["loss_weights"] == {"rgb": 10.0, "eikonal": 1.0}


def test_sdf_srn_silhouette_depths_and_march_start():
    torch.manual_seed(0)
    model = _sdf_srn()
    batch = _batch([_disc(), _disc(3)])
    seen = {}
    field_for = model.field_for

    def recording(images, camera=None):
        field = field_for(images, camera)

        def wrapped(points):
            seen.setdefault("silhouette", points.detach())  # the first call: Eq. 4's samples
            return field(points)

        return wrapped

    model.field_for = recording
    starts = []
    march = model.marcher.forward
    model.marcher.forward = lambda f, r, initial_depth=None, **k: (
        starts.append(initial_depth),
        march(f, r, initial_depth=initial_depth, **k),
    )[1]
    model.compute_losses(batch)
    depth = (seen["silhouette"] @ batch["pose"][:, 2, :3][:, :, None])[..., 0] + batch["pose"][
        :, 2, 3][:, None]  # fmt: skip
    assert depth.min() >= 2.0 - 1e-5 and depth.max() <= 3.5 + 1e-5
    assert depth.max() - depth.min() > 1.0  # spread over the range, not one depth
    assert torch.equal(starts[0], torch.full_like(starts[0], 2.0))


# --- MSU (section 7.10) --------------------------------------------------------------------


def test_msu_silhouette_loss_corrects_wrongly_covered_pixels():
    from svrecon.data import view_camera
    from svrecon.fields import FieldOutput
    from svrecon.losses import occupancy_silhouette_loss, searched_occupancy
    from svrecon.renderers import LinearBinarySearch

    radius = torch.tensor(0.5, dtype=f64, requires_grad=True)  # a too-large blob

    def blob(points):
        return FieldOutput(occupancy=torch.sigmoid(40 * (radius - points.norm(dim=-1))))

    camera = view_camera(torch.tensor([0.4]), torch.tensor([0.3]), 24).to(f64)
    rays, _ = camera.rays(24, 24).intersect_sphere(0.8)
    target = camera.rays(24, 24)
    o, d = target.origins, target.directions
    closest = (o - (o * d).sum(-1, keepdim=True) * d).norm(dim=-1)
    mask = closest < 0.3  # the silhouette of a sphere of radius 0.3
    search = LinearBinarySearch(64, 8)

    out = search(blob, rays)
    hits = out.mask & ~mask  # covered by the blob, outside the silhouette
    assert hits.sum() > 20
    # Through the render's own surface value the hit rays pass no gradient (Eq. 5 as
    # implemented by implicit differentiation); at the detached point they do.
    (held,) = torch.autograd.grad(out.surface_value[hits].sum(), radius, allow_unused=True)
    assert held is None or held.abs() < 1e-9
    (free,) = torch.autograd.grad(searched_occupancy(blob, out)[hits].sum(), radius)
    assert free.abs() > 1e-3
    opt = torch.optim.Adam([radius], lr=0.02)
    for _ in range(15):
        loss = occupancy_silhouette_loss(searched_occupancy(blob, search(blob, rays)), mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert radius.item() < 0.42  # the blob shrank toward the silhouette's 0.3


# --- DISN (section 7.7) --------------------------------------------------------------------


def test_disn_local_features_resize_each_map_to_the_image_first():
    from svrecon.cameras import OrthographicCamera
    from svrecon.encoders import sample_features

    fmap = torch.tensor([[[[0.0, 1.0]]]], dtype=f64)  # [1, 1, 1, 2], for a 1 x 4 image
    # Identity-like orthographic camera: pixel u = x, v = y.
    pose = torch.cat([torch.eye(3, dtype=f64), torch.tensor([[0.0], [0.0], [5.0]], dtype=f64)], 1)
    camera = OrthographicCamera(torch.ones(1, dtype=f64), torch.zeros(1, 2, dtype=f64), pose[None])
    points = torch.tensor([[[1.0, 0.5, 0.0], [1.5, 0.5, 0.0]]], dtype=f64)
    # Resized to width 4 (bilinear, half-pixel centres): [0, 0.25, 0.75, 1]; u = 1.0 lies
    # halfway between the first two pixel centres -> 0.125; u = 1.5 is a centre -> 0.25.
    resized = sample_features([fmap], points, camera, (1, 4))
    torch.testing.assert_close(resized[0, :, 0], torch.tensor([0.125, 0.25], dtype=f64))
    # Without resizing, u = 1.0 maps to 0.5 in the map's pixels: the first centre, 0.
    plain = sample_features([fmap], points, camera, (1, 4), mode="normalized")
    torch.testing.assert_close(plain[0, :, 0], torch.tensor([0.0, 0.25], dtype=f64))


def test_disn_sdf_loss_weights_strictly_below_delta():
    from svrecon.losses import disn_sdf_loss

    target = torch.tensor([[0.01, 0.005, 0.5]], dtype=f64)  # one exactly at delta
    pred = torch.zeros(1, 3, dtype=f64)
    # Paper (s < delta): weights 1, 4, 1 on |10 s| = 0.1, 0.05, 5.
    assert disn_sdf_loss(pred, target).item() == pytest.approx((0.1 + 4 * 0.05 + 5) / 3)
    # Code (s <= delta): weights 4, 4, 1.
    assert disn_sdf_loss(pred, target, inclusive=True).item() == pytest.approx(
        (4 * 0.1 + 4 * 0.05 + 5) / 3
    )


# --- Cat3D (section 7.5) -------------------------------------------------------------------


def test_cat3d_discriminator_widths_end_at_2048():
    from svrecon.encoders import ProjectionDiscriminator

    d = ProjectionDiscriminator(num_classes=3, spectral_norm=False)
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [256, 512, 1024, 2048]


def test_cat3d_view_consistency_is_one_minus_the_cosine_of_the_6_vectors():
    from svrecon.losses import view_consistency_loss

    angles = torch.tensor([[0.3, -0.2, 0.1]], dtype=f64)
    target = torch.stack([angles.cos(), angles.sin()], -1).reshape(1, 6)
    predicted = torch.stack([(angles + 0.5).cos(), (angles + 0.5).sin()], -1).reshape(1, 6)
    images = torch.zeros(1, 4, 8, 8, dtype=f64)
    loss = view_consistency_loss(lambda _: predicted, images, target)
    cosine = (target @ predicted.T).item() / (target.norm() * predicted.norm()).item()
    assert loss.item() == pytest.approx(1 - cosine)  # = 1 - cos(0.5) for every pair
    assert loss.item() == pytest.approx(1 - math.cos(0.5))


# --- spherical harmonics (section 7.9) -----------------------------------------------------

# Real SH Y_lm (l <= 2) in sh_basis's order, written out: z, y, x; the band-2 terms.
_Y = [
    lambda x, y, z: torch.full_like(x, 0.5 / math.sqrt(math.pi)),
    lambda x, y, z: math.sqrt(3 / (4 * math.pi)) * z,
    lambda x, y, z: math.sqrt(3 / (4 * math.pi)) * y,
    lambda x, y, z: math.sqrt(3 / (4 * math.pi)) * x,
    lambda x, y, z: 0.25 * math.sqrt(5 / math.pi) * (2 * z * z - x * x - y * y),
    lambda x, y, z: 0.5 * math.sqrt(15 / math.pi) * y * z,
    lambda x, y, z: 0.5 * math.sqrt(15 / math.pi) * x * z,
    lambda x, y, z: 0.5 * math.sqrt(15 / math.pi) * x * y,
    lambda x, y, z: 0.25 * math.sqrt(15 / math.pi) * (x * x - y * y),
]


def test_sh_basis_is_the_irradiance_of_sh_radiance():
    """E(n) = integral over the sphere of L(w) max(0, n . w) dw, by quadrature, for the
    radiance L = sum_k L_k Y_k, equals sum_k L_k sh_basis(n)_k (Ramamoorthi-Hanrahan)."""
    from svrecon.renderers import sh_basis

    count = 400_000  # a Fibonacci sphere: near-uniform directions
    k = torch.arange(count, dtype=f64) + 0.5
    z = 1 - 2 * k / count
    phi = math.pi * (1 + math.sqrt(5)) * k
    r = (1 - z * z).sqrt()
    w = torch.stack([r * phi.cos(), r * phi.sin(), z], -1)
    Y = torch.stack([f(*w.unbind(-1)) for f in _Y], -1)  # [count, 9]
    normals = torch.nn.functional.normalize(torch.randn(6, 3, dtype=f64), dim=-1)
    cosine = (normals @ w.T).clamp_min(0)  # [6, count]
    irradiance_per_basis = 4 * math.pi / count * cosine @ Y  # [6, 9]
    torch.testing.assert_close(sh_basis(normals), irradiance_per_basis, atol=2e-4, rtol=0)
    # The face-3DMM constants differ in band 0 only, by the factor pi.
    face = sh_basis(normals, "face3dmm")
    torch.testing.assert_close(face[:, 0] * math.pi, irradiance_per_basis[:, 0], atol=2e-4, rtol=0)
    torch.testing.assert_close(face[:, 1:], sh_basis(normals)[:, 1:])


# --- ShapeClipper (section 7.8) ------------------------------------------------------------


def test_shapeclipper_normalisation_centres_on_the_centroid():
    from svrecon.metrics import PROTOCOLS, evaluate, normalize_cloud

    points = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [4.0, 2.0, 1.0]]], dtype=f64)
    # centroid (5/3, 2/3, 1/3); x/y extent max(4, 2) = 4
    out = normalize_cloud(points, "xy_extent", center="centroid")
    expected = (points - torch.tensor([5 / 3, 2 / 3, 1 / 3], dtype=f64)) / 4
    torch.testing.assert_close(out, expected)
    # The protocol uses it: a cloud shifted within its own frame scores the same.
    import trimesh

    box = trimesh.creation.box(extents=(0.6, 0.3, 0.4))
    shifted = box.copy()
    shifted.vertices = box.vertices + np.array([0.05, -0.02, 0.0])
    eye = torch.eye(3, dtype=f64)
    p = PROTOCOLS["shapeclipper"].with_(num_points=4000)
    a = evaluate(box, box, p, pred_rotation=eye, gt_rotation=eye)
    b = evaluate(shifted, box, p, pred_rotation=eye, gt_rotation=eye)
    assert b["chamfer"] == pytest.approx(a["chamfer"], rel=1e-9)


def test_gt_axis_flips_mirror_the_ground_truth():
    import trimesh

    from svrecon.metrics import PROTOCOLS, evaluate

    box = trimesh.creation.box(extents=(0.6, 0.3, 0.4))
    box.vertices += np.array([0.1, 0.0, 0.0])  # not symmetric in x
    mirrored = box.copy()
    mirrored.vertices = box.vertices * np.array([-1.0, 1, 1])
    p = PROTOCOLS["sdf_srn"].with_(num_points=4000)
    plain = evaluate(mirrored, box, p)
    flipped = evaluate(mirrored, box, p.with_(gt_axis_flips=(-1.0, 1.0, 1.0)))
    assert flipped["accuracy"] < plain["accuracy"] / 3


def test_shapeclipper_uniform_azimuth_wasserstein_2():
    from svrecon.losses import uniform_azimuth_loss

    az = torch.tensor([0.1, 0.5, 2.0, 4.0], dtype=f64)
    trig = torch.stack([az.cos(), az.sin()], -1)
    grid = (2 * torch.arange(4, dtype=f64) + 1) * math.pi / 4
    stats = lambda a: np.stack([np.cos(a), np.sin(a), np.cos(a) * np.sin(a)], -1)  # noqa: E731
    gaps = np.sort(stats(grid.numpy()), 0) - np.sort(stats(az.numpy()), 0)
    w2 = np.sqrt((gaps**2).mean(0)).mean()
    w1 = np.abs(gaps).mean(0).mean()
    assert uniform_azimuth_loss(trig, p=2).item() == pytest.approx(w2, rel=1e-12)
    assert uniform_azimuth_loss(trig).item() == pytest.approx(w1, rel=1e-12)


def test_shapeclipper_rendered_normals_renormalised_as_in_its_code():
    from svrecon.fields import field_from_function
    from svrecon.renderers import VolumeRenderer

    from .helpers import random_rays

    rays = random_rays(batch=1, size=8, seed=3, radius=0.8)
    sphere = field_from_function(lambda p: p.norm(dim=-1) - 0.5)
    paper = VolumeRenderer(num_samples=32)(sphere, rays)
    code = VolumeRenderer(num_samples=32, renormalize_normals=True)(sphere, rays)
    norms = code.normals.norm(dim=-1)
    hit = paper.opacity > 0.05
    assert torch.allclose(norms[hit], torch.ones_like(norms[hit]), atol=1e-5)
    torch.testing.assert_close(code.normals[hit], torch.nn.functional.normalize(
        paper.normals[hit], dim=-1))  # fmt: skip
    assert (paper.normals.norm(dim=-1)[hit] < 1.0 + 1e-6).all()


def test_boundary_distance_transform_against_scipy():
    from scipy.ndimage import distance_transform_edt

    from svrecon.losses import boundary_distance_transform

    g = torch.Generator().manual_seed(0)
    masks = torch.zeros(2, 12, 10, dtype=torch.bool)
    masks[0, 3:9, 2:7] = True
    masks[1] = torch.rand(12, 10, generator=g) > 0.6
    got = boundary_distance_transform(masks)
    for b in range(2):
        m = masks[b].numpy()
        expected = distance_transform_edt(~m) + distance_transform_edt(m)
        np.testing.assert_allclose(got[b].numpy(), expected, rtol=1e-6)
    full = boundary_distance_transform(torch.ones(1, 4, 4, dtype=torch.bool))
    assert torch.equal(full, torch.zeros(1, 4, 4))


# -- DISN's voxel IoU (test/test_iou.py) ------------------------------------------
def test_voxel_iou_of_concentric_spheres_is_the_volume_ratio():
    import trimesh

    from svrecon.metrics import solid_voxels, voxel_iou

    big = trimesh.creation.icosphere(subdivisions=4, radius=0.8)
    small = trimesh.creation.icosphere(subdivisions=4, radius=0.6)
    grid = solid_voxels(big, 110)
    cell = 2.2 / 110
    # the solid grid's volume is the sphere's plus about half a shell of surface cells
    volume, exact = grid.sum() * cell**3, 4 / 3 * np.pi * 0.8**3
    shell = 4 * np.pi * 0.8**2 * cell
    assert exact < volume < exact + shell
    assert voxel_iou(big, big) == 1.0
    iou = voxel_iou(small, big)
    assert abs(iou - (0.6 / 0.8) ** 3) < 0.03  # 0.42, cells on both surfaces blur it a little
    far = trimesh.creation.icosphere(subdivisions=3, radius=0.2)
    far.apply_translation([0.8, 0.8, 0.8])
    assert voxel_iou(far, small) == 0.0
    empty = trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
    assert voxel_iou(empty, empty) == 1.0 and voxel_iou(empty, big) == 0.0


def test_disn_protocol_reports_iou_when_the_truth_is_a_mesh():
    import trimesh

    from svrecon.metrics import PROTOCOLS, evaluate

    gt = trimesh.creation.box(extents=(0.8, 0.5, 0.6))
    pred = trimesh.creation.box(extents=(0.8, 0.5, 0.3))
    scores = evaluate(pred, gt, PROTOCOLS["disn"])
    assert abs(scores["iou"] - 0.5) < 0.05
    assert "iou" not in evaluate(pred, torch.as_tensor(gt.vertices), PROTOCOLS["disn"])


# -- PSG's approximate EMD, DISN's published unit -----------------------------------
def test_approximate_match_cost_is_a_transport_plan_close_to_the_exact_one():
    from scipy.optimize import linear_sum_assignment

    from svrecon.metrics import approximate_match_cost, earth_movers_distance

    g = torch.Generator().manual_seed(0)
    a = torch.rand(1, 200, 3, generator=g, dtype=torch.float64)
    b = torch.rand(1, 200, 3, generator=g, dtype=torch.float64) * 0.8 + 0.1
    cost = np.linalg.norm(a[0, :, None].numpy() - b[0, None].numpy(), axis=-1)
    rows, cols = linear_sum_assignment(cost)
    exact_sum = cost[rows, cols].sum()
    approx = float(approximate_match_cost(a, b))
    assert exact_sum - 1e-6 <= approx <= 1.25 * exact_sum  # a full plan: never below
    assert math.isclose(float(earth_movers_distance(a, b)) * 200, exact_sum, rel_tol=1e-9)
    assert float(approximate_match_cost(a, a)) < 0.05 * exact_sum
    shift = torch.tensor([0.05, 0.0, 0.0], dtype=torch.float64)
    moved = float(approximate_match_cost(a, a + shift))
    assert 0.05 * 200 * 0.99 <= moved <= 0.05 * 200 * 1.3  # every point moves by 0.05


def test_disn_protocol_reports_both_emds():
    import trimesh

    from svrecon.metrics import PROTOCOLS, evaluate

    gt = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    pred = trimesh.creation.icosphere(subdivisions=3, radius=0.45)
    scores = evaluate(pred, gt, PROTOCOLS["disn"])
    # emd: mean x100; emd_psg: sum x0.01 x100 over 2048 points, i.e. about 20.48 x emd
    assert scores["emd_psg"] >= 2048 * 0.01 * scores["emd"] * 0.999
    assert scores["emd_psg"] <= 2048 * 0.01 * scores["emd"] * 1.3
