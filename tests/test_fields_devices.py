"""Every field runs in float32 and float64 and moves to CUDA with .to()."""

import pytest
import torch

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


def build(name):
    """(module, call(module, dtype, device) -> tensor)."""
    torch.manual_seed(0)

    def pts(dtype, device):
        return torch.rand(2, 16, 3, dtype=dtype).to(device)

    def code(n, dtype, device):
        return torch.randn(2, n, dtype=dtype).to(device)

    if name == "sdf":
        m = SDFNetwork(4, 16, 3, (2,), 4, PositionalEncoding(2, "nerf"), symmetric=True)
        return m, lambda m, d, dev: m(pts(d, dev), code(4, d, dev)).sdf
    if name == "hyper":
        m = HyperSDFField(8, trunk_dims=(8, 8), hidden_dims=(16,))
        return m, lambda m, d, dev: m(code(8, d, dev))(pts(d, dev)).sdf
    if name == "occupancy":
        m = OccupancyNetwork(4, (16, 16))
        return m, lambda m, d, dev: m(pts(d, dev), code(4, d, dev)).occupancy
    if name == "joint":
        m = JointOccupancyField(
            BranchedOccupancy(4, 2, (16,), 3), BranchedAlbedo(4, 4, 2, (16,), 3)
        )
        return (
            m,
            lambda m, d, dev: (
                m(pts(d, dev), code(4, d, dev), code(4, d, dev), code(2, d, dev)).albedo
            ),
        )
    if name == "disn":
        m = DISNDecoder(6, 5, (8,), (8,))
        return (
            m,
            lambda m, d, dev: (
                m(pts(d, dev), code(6, d, dev), torch.rand(2, 16, 5, dtype=d).to(dev)).sdf
            ),
        )
    m = TextureNetwork(4, 2, (8,))

    def texture(m, d, dev):
        shape = FieldOutput(sdf=torch.zeros(2, 16, dtype=d).to(dev),
                            features=torch.rand(2, 16, 4, dtype=d).to(dev))  # fmt: skip
        return m(pts(d, dev), shape, code(2, d, dev)).rgb

    return m, texture


NAMES = ["sdf", "hyper", "occupancy", "joint", "disn", "texture"]


@pytest.mark.parametrize("name", NAMES)
def test_float32_and_float64(name):
    module, call = build(name)
    out32 = call(module, torch.float32, "cpu")
    out64 = call(module.double(), torch.float64, "cpu")
    assert out32.dtype == torch.float32 and out64.dtype == torch.float64
    assert torch.isfinite(out64).all()


@pytest.mark.cuda
@pytest.mark.parametrize("name", NAMES)
def test_cuda_matches_cpu(name):
    module, call = build(name)
    torch.manual_seed(1)
    cpu = call(module, torch.float32, "cpu")
    torch.manual_seed(1)
    gpu = call(module.to("cuda"), torch.float32, "cuda")
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=1e-4)
