import math

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from svrecon.fields import (
    FieldOutput,
    HyperMLP,
    HyperNetwork,
    HyperSDFField,
    PositionalEncoding,
    SDFNetwork,
    field_from_function,
    pretrain_sphere,
    sdf_gradient,
)

from .reference.hyper_loop import hyper_mlp_loop

f64 = torch.float64


# -- positional encodings ---------------------------------------------------------------
def test_sdf_srn_encoding_layout_by_hand():
    enc = PositionalEncoding(2, "sdf_srn")
    x = torch.tensor([[0.1, 0.2, 0.3]], dtype=f64)
    out = enc(x)[0]
    assert enc.out_dim == 15 and out.shape == (15,)
    expected = []
    for c in (0.1, 0.2, 0.3):  # x block, y block, z block; sin over k then cos over k
        expected += [math.sin(math.pi * c), math.sin(2 * math.pi * c)]
        expected += [math.cos(math.pi * c), math.cos(2 * math.pi * c)]
    expected += [0.1, 0.2, 0.3]  # raw xyz last
    torch.testing.assert_close(out, torch.tensor(expected, dtype=f64))
    assert PositionalEncoding(5, "sdf_srn").out_dim == 33


def test_nerf_encoding_layout_by_hand():
    enc = PositionalEncoding(2, "nerf")
    x = torch.tensor([[0.1, 0.2, 0.3]], dtype=f64)
    out = enc(x)[0]
    xs = [0.1, 0.2, 0.3]
    expected = list(xs)  # raw xyz first, then per frequency [sin(xyz), cos(xyz)], no pi
    for f in (1.0, 2.0):
        expected += [math.sin(f * c) for c in xs] + [math.cos(f * c) for c in xs]
    torch.testing.assert_close(out, torch.tensor(expected, dtype=f64))
    assert PositionalEncoding(6, "nerf").out_dim == 39
    assert PositionalEncoding(5, "sdf_srn", include_input=False).out_dim == 30


def test_encoding_validates():
    with pytest.raises(ValueError, match="layout"):
        PositionalEncoding(2, "fourier")
    with pytest.raises(ValueError, match=r"x: expected shape \[\.\.\., 3\], got \[4, 2\]"):
        PositionalEncoding(2)(torch.zeros(4, 2))


# -- SDFNetwork -------------------------------------------------------------------------
def test_geometric_init_is_close_to_a_sphere():
    # Issue bound: within 0.05 of |x| - r everywhere on [-1, 1]^3. Checked on random
    # points and on a grid that holds the origin (the cone tip of |x|, where smooth
    # features fit worst) and the cube's faces, edges and corners. Measured over 20
    # seeds: worst case 0.028-0.048, mean error 0.008-0.013.
    g = torch.linspace(-1, 1, 25)
    grid = torch.stack(torch.meshgrid(g, g, g, indexing="ij"), dim=-1).reshape(1, -1, 3)
    for seed in range(3):
        torch.manual_seed(seed)
        net = SDFNetwork(sphere_radius=0.5)
        points = torch.cat([torch.rand(1, 10000, 3) * 2 - 1, grid], dim=1)
        with torch.no_grad():
            err = (net(points).sdf - (points.norm(dim=-1) - 0.5)).abs()
        assert err.max() <= 0.05
        assert err.mean() < 0.015


def test_geometric_init_ignores_latent_and_encoding_at_start():
    torch.manual_seed(0)
    net = SDFNetwork(
        latent_dim=8,
        hidden_dim=128,
        num_layers=4,
        skip_layers=(2,),
        encoding=PositionalEncoding(6, "nerf"),
        sphere_radius=0.3,
    )
    points = torch.rand(2, 1000, 3) * 2 - 1
    with torch.no_grad():
        a = net(points, torch.randn(2, 8)).sdf
        b = net(points, torch.randn(2, 8)).sdf
    torch.testing.assert_close(a, b)  # untrained: the same sphere for every code
    assert (a - (points.norm(dim=-1) - 0.3)).abs().mean() < 0.02


def test_sphere_pretraining_reaches_one_hundredth():
    torch.manual_seed(0)
    net = SDFNetwork(
        hidden_dim=64,
        num_layers=5,
        skip_layers=(1, 2),
        feature_dim=64,
        encoding=PositionalEncoding(6, "nerf"),
        symmetric=True,
    )
    losses = pretrain_sphere(
        net,
        net.parameters(),
        radius=0.5,
        iterations=300,
        batch_size=2,
        num_points=2048,
        lr=1e-3,
        generator=torch.Generator().manual_seed(0),
    )
    assert losses[-1] < losses[0]
    points = torch.rand(2, 5000, 3) * 2 - 1
    with torch.no_grad():
        err = (net(points).sdf - (points.norm(dim=-1) - 0.5)).abs()
    assert err.mean() < 0.01 and err.max() < 0.05


def test_mirror_symmetry_is_exact():
    torch.manual_seed(0)
    net = SDFNetwork(
        latent_dim=4,
        hidden_dim=32,
        num_layers=3,
        skip_layers=(1,),
        feature_dim=8,
        encoding=PositionalEncoding(4, "nerf"),
        symmetric=True,
    )
    for p in net.parameters():  # move away from the (symmetric anyway) sphere init
        p.data += 0.1 * torch.randn_like(p)
    points = torch.randn(2, 100, 3)
    mirrored = points * torch.tensor([-1.0, 1.0, 1.0])
    z = torch.randn(2, 4)
    a, b = net(points, z), net(mirrored, z)
    assert torch.equal(a.sdf, b.sdf) and torch.equal(a.features, b.features)


def test_sdf_network_shapes_and_errors():
    net = SDFNetwork(latent_dim=4, hidden_dim=16, num_layers=2, skip_layers=(1,), feature_dim=5)
    out = net(torch.zeros(3, 7, 3), torch.zeros(3, 4))
    assert (
        isinstance(out, FieldOutput) and out.sdf.shape == (3, 7) and out.features.shape == (3, 7, 5)
    )
    with pytest.raises(ValueError, match=r"latent: expected shape \[3, 4\], got \[2, 4\]"):
        net(torch.zeros(3, 7, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="latent: expected shape"):
        net(torch.zeros(3, 7, 3))
    with pytest.raises(ValueError, match=r"points: expected shape \[B, N, 3\], got \[7, 3\]"):
        net(torch.zeros(7, 3), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="skip_layers"):
        SDFNetwork(num_layers=3, skip_layers=(3,))


def test_sdf_network_gradcheck_and_gradgradcheck():
    torch.manual_seed(0)
    net = SDFNetwork(
        latent_dim=2,
        hidden_dim=8,
        num_layers=3,
        skip_layers=(2,),
        feature_dim=2,
        encoding=PositionalEncoding(2, "nerf"),
        weight_norm=True,
    ).double()
    z = torch.randn(1, 2, dtype=f64)
    points = (torch.rand(1, 4, 3, dtype=f64) - 0.5).requires_grad_(True)
    assert gradcheck(lambda p: net(p, z).sdf, (points,))
    assert gradgradcheck(lambda p: net(p, z).sdf, (points,))
    # The eikonal path: the gradient's norm is differentiable w.r.t. the parameters.
    _, g = sdf_gradient(lambda p: net(p, z), points.detach(), create_graph=True)
    loss = ((g.norm(dim=-1) - 1) ** 2).mean()
    grads = torch.autograd.grad(loss, list(net.parameters()), allow_unused=True)
    assert any(x is not None and x.abs().sum() > 0 for x in grads)


def test_sdf_gradient_of_analytic_sphere_and_no_parameter_grads():
    net = SDFNetwork(hidden_dim=16, num_layers=2, skip_layers=(1,), feature_dim=2)
    points = torch.randn(2, 50, 3, dtype=f64)
    values, grad = sdf_gradient(field_from_function(lambda p: p.norm(dim=-1) - 1.0), points)
    torch.testing.assert_close(grad, points / points.norm(dim=-1, keepdim=True))
    torch.testing.assert_close(values, points.norm(dim=-1) - 1.0)
    with torch.no_grad():
        _, g = sdf_gradient(net, points.float())
    assert g.shape == (2, 50, 3) and not g.requires_grad
    assert all(p.grad is None for p in net.parameters())


def test_sdf_gradient_of_a_field_that_ignores_the_points_is_zero():
    points = torch.randn(2, 7, 3, dtype=f64)
    offset = torch.tensor(0.3, dtype=f64, requires_grad=True)
    fields = {
        "constant": lambda p: torch.full(p.shape[:1], 0.5, dtype=p.dtype),
        "parameter only": lambda p: offset.expand(p.shape[:1]),
        "detached": lambda p: p.detach().norm(dim=-1) - 1.0,
    }
    for name, fn in fields.items():
        field = field_from_function(fn)
        for create_graph in (False, True):
            values, grad = sdf_gradient(field, points, create_graph=create_graph)
            assert values.shape == (2, 7), name
            assert torch.equal(grad, torch.zeros(2, 7, 3, dtype=f64)), name
    assert offset.grad is None


@pytest.mark.cuda
def test_sdf_network_cuda_matches_cpu():
    net = SDFNetwork(hidden_dim=32, num_layers=3, skip_layers=(2,), feature_dim=4)
    points = torch.rand(2, 100, 3)
    cpu = net(points).sdf
    gpu = net.to("cuda")(points.cuda()).sdf
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-5, rtol=1e-5)


# -- hypernetwork -------------------------------------------------------------------------
def make_hyper(dtype=torch.float32, B=3, layer_norm=True):
    torch.manual_seed(0)
    hyper = HyperNetwork(
        6,
        [5, 8, 8, 2],
        hidden_dims=(16,),
        concat_layers=(1, 2),
        concat_dim=5,
        layer_norm=layer_norm,
    ).to(dtype)
    return hyper, torch.randn(B, 6, dtype=dtype)


@pytest.mark.parametrize("layer_norm", [True, False])
def test_hyper_mlp_matches_python_loop(layer_norm):
    hyper, z = make_hyper(layer_norm=layer_norm)
    mlp = hyper(z)
    x = torch.randn(3, 40, 5)
    out = mlp(x, x)
    ref = hyper_mlp_loop(mlp.weights, mlp.biases, x, x, (1, 2), layer_norm)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("strategy", ["batched", "per_instance", "auto"])
def test_hyper_mlp_gradients_match_loop_float64(strategy):
    hyper, z = make_hyper(f64)
    x = torch.randn(3, 20, 5, dtype=f64, requires_grad=True)
    mlp = hyper(z)
    mlp.strategy, mlp.per_instance_from = strategy, 10  # auto: per instance on the CPU
    out = mlp(x, x)
    ref = hyper_mlp_loop(mlp.weights, mlp.biases, x, x, (1, 2), True)
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=1e-10)
    params = [x, *hyper.parameters()]
    g1 = torch.autograd.grad(out.square().sum(), params, retain_graph=True)
    g2 = torch.autograd.grad(ref.square().sum(), params)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize(
    ("threads", "points", "per_instance"),
    [(1, 20, True), (2, 20, False), (2, 40, True), (1, 40, True)],
)
def test_hyper_mlp_auto_strategy_picks_by_threads_and_points(
    monkeypatch, threads, points, per_instance
):
    hyper, z = make_hyper()
    mlp = hyper(z)
    mlp.per_instance_from = 30
    calls = []
    original = HyperMLP._forward_instance
    monkeypatch.setattr(
        HyperMLP, "_forward_instance", lambda self, *a: calls.append(1) or original(self, *a)
    )
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    x = torch.randn(3, points, 5)
    out = mlp(x, x)
    assert bool(calls) == per_instance
    ref = hyper_mlp_loop(mlp.weights, mlp.biases, x, x, (1, 2), True)
    torch.testing.assert_close(out, ref)


def test_hyper_mlp_gradcheck_and_gradgradcheck():
    hyper, z = make_hyper(f64, B=2)
    z = z.requires_grad_(True)
    x = torch.randn(2, 3, 5, dtype=f64, requires_grad=True)
    assert gradcheck(lambda x, z: hyper(z)(x, x), (x, z))
    assert gradgradcheck(lambda x, z: hyper(z)(x, x), (x, z))


def test_hyper_network_layout_bias_row_first():
    hyper = HyperNetwork(2, [3, 4], hidden_dims=())
    z = torch.randn(5, 2)
    raw = hyper.hyper[0](z).view(5, 4, 4)
    mlp = hyper(z)
    torch.testing.assert_close(mlp.biases[0], raw[:, 0])
    torch.testing.assert_close(mlp.weights[0], raw[:, 1:])


def test_hyper_sdf_field_shapes_and_rgb_range():
    field_net = HyperSDFField(latent_dim=16, trunk_dims=(16, 16), hidden_dims=(32,))
    field = field_net(torch.randn(2, 16))
    out = field(torch.rand(2, 9, 3))
    assert out.sdf.shape == (2, 9) and out.features.shape == (2, 9, 16)
    assert out.rgb.shape == (2, 9, 3) and out.rgb.min() >= 0 and out.rgb.max() <= 1
    cat3d = HyperSDFField(
        latent_dim=16,
        trunk_dims=(8, 8, 8, 8),
        trunk_concat=(1, 2),
        sdf_head_dims=(4,),
        rgb_head_dims=(8,),
        hidden_dims=(32,),
        layer_norm=False,
        head_concat=True,
        rgb_latent_dim=12,
    )
    out = cat3d(torch.randn(2, 16), torch.randn(2, 12))(torch.rand(2, 5, 3))
    assert out.sdf.shape == (2, 5) and out.features.shape == (2, 5, 8)
    with pytest.raises(ValueError, match="rgb_latent"):
        cat3d(torch.randn(2, 16))
    with pytest.raises(ValueError, match=r"points: expected shape \[B=2, N, 3\].*got \[3, 5, 3\]"):
        field(torch.rand(3, 5, 3))


def test_hyper_mlp_validates():
    with pytest.raises(
        ValueError, match=r"biases\[0\]: expected shape \[B=2, k_out0=4\], got \[2, 5\]"
    ):
        HyperMLP([torch.zeros(2, 3, 4)], [torch.zeros(2, 5)])
    mlp = HyperMLP([torch.zeros(2, 3, 4)], [torch.zeros(2, 4)], concat_layers=(0,))
    with pytest.raises(ValueError, match="extra"):
        mlp(torch.zeros(2, 5, 3))


def test_hyper_mlp_chunking_does_not_change_results():
    hyper, z = make_hyper(f64)
    mlp = hyper(z)
    x = torch.randn(3, 70, 5, dtype=f64)
    whole = mlp(x, x)
    mlp.chunk_size = 16
    torch.testing.assert_close(mlp(x, x), whole, atol=1e-12, rtol=0)


def test_geometric_init_needs_raw_xyz():
    with pytest.raises(ValueError, match="include_input=True"):
        SDFNetwork(encoding=PositionalEncoding(4, "nerf", include_input=False))
    SDFNetwork(encoding=PositionalEncoding(4, "nerf", include_input=False), geometric_init=False)
