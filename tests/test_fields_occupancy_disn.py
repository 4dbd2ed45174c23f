import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck, gradgradcheck

from svrecon.cameras import PerspectiveCamera
from svrecon.encoders import bilinear_sample, sample_features
from svrecon.fields import (
    BranchedAlbedo,
    BranchedOccupancy,
    DISNDecoder,
    FieldOutput,
    JointOccupancyField,
    OccupancyNetwork,
    PositionalEncoding,
    TextureNetwork,
    sdf_gradient,
)

from .helpers import random_pose

f64 = torch.float64


def test_bae_max_and_argmax_albedo_hand_example():
    occ = BranchedOccupancy(shape_dim=2, category_dim=1, hidden_dims=(4,), num_branches=3)
    alb = BranchedAlbedo(
        shape_dim=2, albedo_dim=2, category_dim=1, hidden_dims=(4,), num_branches=3
    )
    with torch.no_grad():
        for p in [*occ.parameters(), *alb.parameters()]:
            p.zero_()
        # Branch logits are the final biases: [0, 2, -1] -> sigmoid = [0.5, 0.881, 0.269].
        occ.net[-1].bias.copy_(torch.tensor([0.0, 2.0, -1.0]))
        # Branch colours (pre-tanh): branch 1 is atanh of (0.2, 0.6, 0.9) mapped to [-1, 1].
        target = torch.tensor([[0.1, 0.1, 0.1], [0.2, 0.6, 0.9], [0.7, 0.7, 0.7]])
        alb.net[-1].bias.copy_(torch.atanh(target * 2 - 1).flatten())
    field = JointOccupancyField(occ, alb)
    out = field(torch.randn(2, 5, 3), torch.randn(2, 2), torch.randn(2, 2), torch.randn(2, 1))
    sig = torch.sigmoid(torch.tensor([0.0, 2.0, -1.0]))
    torch.testing.assert_close(out.branch_values, sig.expand(2, 5, 3))
    torch.testing.assert_close(out.occupancy, torch.full((2, 5), float(sig[1])))
    assert (out.branch_index == 1).all()
    torch.testing.assert_close(out.albedo, torch.tensor([0.2, 0.6, 0.9]).expand(2, 5, 3))


def test_argmax_albedo_follows_branch_index_per_point():
    torch.manual_seed(0)
    occ = BranchedOccupancy(shape_dim=4, category_dim=2, hidden_dims=(16,), num_branches=4)
    alb = BranchedAlbedo(
        shape_dim=4,
        albedo_dim=3,
        category_dim=2,
        hidden_dims=(16,),
        num_branches=4,
        encoding=PositionalEncoding(2, "nerf"),
    )
    pts, s, a, c = torch.randn(2, 50, 3), torch.randn(2, 4), torch.randn(2, 3), torch.randn(2, 2)
    o = occ(pts, s, c)
    torch.testing.assert_close(o.occupancy, o.branch_values.max(-1).values)
    coloured = alb(pts, o, s, a, c)
    chosen, colours = coloured.albedo, coloured.branch_albedo
    assert torch.equal(coloured.occupancy, o.occupancy)
    for b in range(2):
        for n in range(50):
            torch.testing.assert_close(chosen[b, n], colours[b, n, o.branch_index[b, n]])
    assert chosen.min() >= 0 and chosen.max() <= 1
    assert len(set(o.branch_index.flatten().tolist())) > 1  # a non-trivial case


def test_occupancy_network_outputs():
    net = OccupancyNetwork(latent_dim=8, hidden_dims=(16, 16))
    out = net(torch.randn(2, 10, 3), torch.randn(2, 8))
    assert out.occupancy.shape == (2, 10) and 0 <= out.occupancy.min() and out.occupancy.max() <= 1
    leaky = OccupancyNetwork(latent_dim=8, hidden_dims=(16, 16), output="leaky_clamp")
    leaky.load_state_dict(net.state_dict())
    y = net.net(torch.cat([torch.zeros(1, 1, 3), torch.zeros(1, 1, 8)], -1))[..., 0]
    expected = torch.maximum(torch.minimum(y, 0.01 * y + 0.99), 0.01 * y)
    torch.testing.assert_close(leaky(torch.zeros(1, 1, 3), torch.zeros(1, 8)).occupancy, expected)
    with pytest.raises(ValueError, match=r"latent: expected shape \[2, 8\], got \[3, 8\]"):
        net(torch.randn(2, 10, 3), torch.randn(3, 8))


# -- feature sampling ---------------------------------------------------------------------
def test_bilinear_sample_by_hand():
    fmap = torch.arange(12, dtype=f64).view(1, 1, 3, 4)  # value = 4 * row + column
    # At a pixel centre the value is exact; between centres it interpolates linearly.
    pixels = torch.tensor(
        [[[0.5, 0.5], [2.5, 1.5], [1.0, 0.5], [1.25, 2.0], [-3.0, 0.5], [9.0, 9.0]]], dtype=f64
    )
    out = bilinear_sample(fmap, pixels)[0, :, 0]
    expected = torch.tensor([0.0, 6.0, 0.5, 0.75 + 4 * 1.5, 0.0, 11.0], dtype=f64)
    torch.testing.assert_close(out, expected)


def test_bilinear_sample_matches_grid_sample():
    fmap = torch.randn(2, 5, 7, 9, dtype=f64)
    pixels = torch.rand(2, 30, 2, dtype=f64) * torch.tensor([11.0, 9.0], dtype=f64) - 1
    grid = torch.stack([2 * pixels[..., 0] / 9 - 1, 2 * pixels[..., 1] / 7 - 1], -1)[:, :, None]
    ref = F.grid_sample(fmap, grid, mode="bilinear", padding_mode="border", align_corners=False)
    torch.testing.assert_close(bilinear_sample(fmap, pixels), ref[..., 0].transpose(1, 2))


def test_bilinear_sample_gradcheck_and_gradgradcheck():
    fmap = torch.randn(1, 2, 4, 5, dtype=f64, requires_grad=True)
    pixels = (torch.rand(1, 6, 2, dtype=f64) * 3 + 0.7).requires_grad_(True)
    assert gradcheck(bilinear_sample, (fmap, pixels))
    assert gradgradcheck(bilinear_sample, (fmap, pixels))


def test_sample_features_projects_and_concatenates():
    pose = random_pose(2)
    cam = PerspectiveCamera(40.0, 16.0, pose)
    pixels = torch.rand(2, 7, 2, dtype=f64) * 30 + 1
    points = cam.unproject(pixels, torch.full((2, 7), 3.0, dtype=f64))
    maps = [torch.randn(2, 3, 32, 32, dtype=f64), torch.randn(2, 4, 16, 16, dtype=f64)]
    out = sample_features(maps, points, cam, (32, 32), mode="normalized")
    assert out.shape == (2, 7, 7)
    torch.testing.assert_close(out[..., :3], bilinear_sample(maps[0], pixels))
    torch.testing.assert_close(out[..., 3:], bilinear_sample(maps[1], pixels / 2))
    resized = sample_features(maps, points, cam, (32, 32))  # the default: resize first
    up = F.interpolate(maps[1], size=(32, 32), mode="bilinear", align_corners=False)
    torch.testing.assert_close(resized[..., 3:], bilinear_sample(up, pixels))


# -- DISN ---------------------------------------------------------------------------------
def test_disn_is_the_sum_of_two_streams():
    torch.manual_seed(0)
    dec = DISNDecoder(global_dim=6, local_dim=5, point_dims=(8, 8), head_dims=(8,))
    pts, g, loc = torch.randn(2, 4, 3), torch.randn(2, 6), torch.randn(2, 4, 5)
    both = dec(pts, g, loc).sdf
    global_only = dec(pts, g, None).sdf
    local_only = dec.local_head(torch.cat([dec.local_points(pts), loc], -1))[..., 0] / 10
    torch.testing.assert_close(both, global_only + local_only)


def test_disn_local_features_survive_an_eikonal_term():
    torch.manual_seed(0)
    dec = DISNDecoder(global_dim=3, local_dim=2, point_dims=(6,), head_dims=(6,)).double()
    pose = random_pose(1)
    cam = PerspectiveCamera(20.0, 8.0, pose)
    fmap = torch.randn(1, 2, 8, 8, dtype=f64)
    g = torch.randn(1, 3, dtype=f64)

    field = dec.bind(g, lambda p: sample_features([fmap], p, cam, (16, 16)))

    def sdf(p):
        return field(p).sdf

    points = cam.unproject(
        torch.rand(1, 4, 2, dtype=f64) * 12 + 2, torch.full((1, 4), 3.5, dtype=f64)
    )
    points = points.requires_grad_(True)
    assert gradcheck(sdf, (points,))
    assert gradgradcheck(sdf, (points,))
    _, grad = sdf_gradient(field, points.detach(), create_graph=True)
    eik = ((grad.norm(dim=-1) - 1) ** 2).mean()
    (gl,) = torch.autograd.grad(eik, [dec.local_points[0].weight])
    assert gl.abs().sum() > 0


def test_texture_network():
    tex = TextureNetwork(feature_dim=4, latent_dim=2, encoding=PositionalEncoding(2, "nerf"))
    shape = FieldOutput(sdf=torch.randn(2, 5), features=torch.randn(2, 5, 4))
    out = tex(torch.randn(2, 5, 3), shape, torch.randn(2, 2))
    assert out.rgb.shape == (2, 5, 3) and out.rgb.min() >= 0 and out.rgb.max() <= 1
    assert out.sdf is shape.sdf
    bad = FieldOutput(sdf=torch.randn(2, 5), features=torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match=r"shape.features: expected shape \[2, 5, 4\]"):
        tex(torch.randn(2, 5, 3), bad, torch.randn(2, 2))
    with pytest.raises(ValueError, match="features=None"):
        tex(torch.randn(2, 5, 3), FieldOutput(sdf=torch.randn(2, 5)), torch.randn(2, 2))
