"""Every field and renderer under ``torch.compile`` (inductor; on CPU here) and under
``torch.autocast`` (bfloat16 on CPU, float16 on CUDA), against eager float32 with the
tolerances stated in docs/reliability.md.

Compiled: outputs and first-order gradients (parameters and points) equal eager to
float32 reassociation (``rtol 1e-4`` on values, ``1e-3`` of the largest gradient on
gradients). Double backward (``create_graph=True``: normal and eikonal losses) is not
supported by torch's compiled autograd (torch 2.14: "aot_autograd does not currently
support double backward"), so compiled renderers are run with ``create_graph=False``.

Autocast: the surface searches run in the rays' precision (hits and distances equal
eager exactly); what is evaluated under the autocast is within 0.05 (normals, unit
vectors) and a few 1e-2 relative (field values, colours, volume-rendered quantities).
"""

import shutil

import pytest
import torch

from svrecon.data import view_camera
from svrecon.fields import (
    BranchedAlbedo,
    BranchedOccupancy,
    DISNDecoder,
    FieldOutput,
    HyperSDFField,
    JointOccupancyField,
    OccupancyNetwork,
    PositionalEncoding,
    SDFNetwork,
    TextureNetwork,
)
from svrecon.renderers import (
    LaplaceDensity,
    LinearBinarySearch,
    LinearSearch,
    SphereTracer,
    SRNRayMarcher,
    VolumeRenderer,
    sh_shading,
)

needs_compiler = pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None,
    reason="torch.compile's CPU backend needs a C++ compiler",
)


def field_case(name):
    """(module, inputs, call(module, *inputs) -> tensor), float32, fixed inputs."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    points = torch.rand(2, 32, 3, generator=g) - 0.5

    def code(n):
        return torch.randn(2, n, generator=g)

    if name == "sdf":
        m = SDFNetwork(4, 32, 3, (2,), 4, PositionalEncoding(2, "nerf"), symmetric=True)
        return m, (points, code(4)), lambda m, p, z: m(p, z).sdf
    if name == "hyper":
        m = HyperSDFField(8, trunk_dims=(16, 16), hidden_dims=(16,))
        return m, (points, code(8)), lambda m, p, z: m(z)(p).sdf
    if name == "occupancy":
        m = OccupancyNetwork(4, (32, 32))
        return m, (points, code(4)), lambda m, p, z: m(p, z).occupancy
    if name == "joint":
        m = JointOccupancyField(
            BranchedOccupancy(4, 2, (16,), 3), BranchedAlbedo(4, 4, 2, (16,), 3)
        )
        inputs = (points, code(4), code(4), code(2))
        return m, inputs, lambda m, p, s, a, c: m(p, s, a, c).albedo
    if name == "disn":
        m = DISNDecoder(6, 5, (16,), (16,))
        local = torch.rand(2, 32, 5, generator=g)
        return m, (points, code(6), local), lambda m, p, z, f: m(p, z, f).sdf
    m = TextureNetwork(4, 2, (16,))
    features = torch.rand(2, 32, 4, generator=g)

    def texture(m, p, f, z):
        return m(p, FieldOutput(sdf=torch.zeros(2, 32), features=f), z).rgb

    return m, (points, features, code(2)), texture


FIELDS = ["sdf", "hyper", "occupancy", "joint", "disn", "texture"]


def gradients(module, inputs, call, fn=None):
    inputs = [x.clone().requires_grad_(True) for x in inputs]
    out = (fn or call)(module, *inputs)
    params = [p for p in module.parameters() if p.requires_grad]
    grads = torch.autograd.grad(out.square().sum(), [*params, inputs[0]], allow_unused=True)
    return out.detach(), grads


def assert_gradients_close(got, expected, rtol=1e-3):
    for g, e in zip(got, expected, strict=True):
        if e is None:
            assert g is None or g.abs().max() == 0
            continue
        scale = e.abs().max().item()
        torch.testing.assert_close(g, e, rtol=rtol, atol=rtol * scale + 1e-7)


@needs_compiler
@pytest.mark.slow
@pytest.mark.parametrize("name", FIELDS)
def test_field_under_torch_compile_equals_eager(name):
    module, inputs, call = field_case(name)
    eager, eager_grads = gradients(module, inputs, call)
    torch._dynamo.reset()
    compiled, compiled_grads = gradients(module, inputs, call, torch.compile(call))
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-5)
    assert_gradients_close(compiled_grads, eager_grads)


@pytest.mark.parametrize("name", FIELDS)
def test_field_under_bfloat16_autocast_is_close_to_eager(name):
    module, inputs, call = field_case(name)
    eager = call(module, *inputs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = call(module, *inputs)
    assert torch.isfinite(mixed).all()
    scale = eager.abs().max().item()
    torch.testing.assert_close(mixed.float(), eager, rtol=0.03, atol=0.03 * scale)


def render_case(name, size=8):
    """(renderer call(field, rays, create_graph) -> RenderOutput, field, rays, the
    trained parameters of field and renderer)."""
    torch.manual_seed(0)
    field = SDFNetwork(0, 32, 3, (), 4)
    camera = view_camera(torch.tensor([0.5, 1.0]), torch.tensor([0.3, 0.2]), size)
    rays = camera.rays(size, size).intersect_sphere(1.0)[0]
    if name == "srn":
        marcher = SRNRayMarcher(feature_dim=4, num_steps=4)
        params = [*field.parameters(), *marcher.parameters()]
        return (lambda f, r, cg: marcher(f, r, normals=True, create_graph=cg)), field, rays, params
    renderer = {
        "linear_binary": LinearBinarySearch(num_samples=32, num_refine=4),
        "linear": LinearSearch(num_samples=32),
        "tracer": SphereTracer(max_steps=32),
        "volume": VolumeRenderer(LaplaceDensity(0.05), num_samples=16),
    }[name]
    params = [*field.parameters(), *getattr(renderer, "parameters", list)()]
    return (lambda f, r, cg: renderer(f, r, create_graph=cg)), field, rays, params


RENDERERS = ["linear_binary", "linear", "tracer", "volume", "srn"]


def render_loss(render, field, rays):
    out = render(field, rays, False)
    lighting = torch.linspace(-0.5, 1.0, 27).view(1, 3, 9).expand(2, 3, 9)
    shading = sh_shading(out.normals, lighting)  # [B, R, 3]
    return out, out.distance.sum() + out.opacity.sum() + (shading * out.features[..., :3]).sum()


@needs_compiler
@pytest.mark.slow
@pytest.mark.parametrize("name", RENDERERS)
def test_renderer_under_torch_compile_equals_eager(name):
    render, field, rays, params = render_case(name)
    out, loss = render_loss(render, field, rays)
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    torch._dynamo.reset()
    compiled = torch.compile(lambda: render_loss(render, field, rays))
    c_out, c_loss = compiled()
    c_grads = torch.autograd.grad(c_loss, params, allow_unused=True)
    assert torch.equal(c_out.mask, out.mask)
    for key in ("distance", "opacity", "normals"):
        torch.testing.assert_close(getattr(c_out, key), getattr(out, key), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(c_loss, loss, rtol=1e-5, atol=1e-5)
    assert_gradients_close(c_grads, grads)


@pytest.mark.parametrize("name", RENDERERS)
def test_renderer_under_bfloat16_autocast_is_close_to_eager(name):
    render, field, rays, _ = render_case(name, size=16)
    eager = render(field, rays, True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = render(field, rays, True)
    for key in ("distance", "opacity", "normals", "depth"):
        assert torch.isfinite(getattr(mixed, key)).all(), key
    hits = eager.mask
    if name in ("linear_binary", "linear", "tracer"):  # the search ignores the autocast
        assert torch.equal(mixed.mask, eager.mask) and hits.any()
        assert torch.equal(mixed.distance, eager.distance)
    else:
        torch.testing.assert_close(mixed.opacity.float(), eager.opacity, rtol=0, atol=0.05)
        torch.testing.assert_close(mixed.distance.float(), eager.distance, rtol=0.03, atol=0.03)
    both = hits & mixed.mask
    if both.any():
        error = (mixed.normals[both].float() - eager.normals[both]).norm(dim=-1)
        assert error.max() < 0.1
