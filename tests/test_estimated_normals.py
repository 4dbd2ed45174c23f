"""The procedural set's "off-the-shelf" normals: over-smoothed, tilted, with outlier
regions of the stated size, unit length on the mask, deterministic per view."""

import math

import pytest
import torch

from svrecon.data import ProceduralDataset, estimated_normals


def sphere_normals(size=48, radius=18.0):
    """Camera-frame normals of a sphere seen head-on (the camera looks along +z)."""
    v, u = torch.meshgrid(torch.arange(size) + 0.5 - size / 2,
                          torch.arange(size) + 0.5 - size / 2, indexing="ij")  # fmt: skip
    r2 = (u**2 + v**2) / radius**2
    mask = r2 < 1
    z = -torch.sqrt((1 - r2).clamp_min(0))
    n = torch.stack([u / radius, v / radius, z])
    return torch.where(mask[None], n, 0.0), mask


def angle_errors(a, b, mask):
    cos = (a * b).sum(0).clamp(-1, 1)
    return torch.rad2deg(torch.acos(cos))[mask]


def test_outlier_fraction_and_accuracy_elsewhere():
    n, mask = sphere_normals()
    g = torch.Generator().manual_seed(0)
    est = estimated_normals(n, mask, g, outlier_fraction=0.1, bias_degrees=5.0)
    assert torch.allclose(est.norm(dim=0)[mask], torch.ones(int(mask.sum())), atol=1e-5)
    assert (est[:, ~mask] == 0).all()
    errors = angle_errors(est, n, mask)
    # the outlier regions are 10% of the mask; random camera-facing directions are
    # mostly far off, the rest is within the blur and the tilt
    far = (errors > 30).float().mean()
    assert 0.05 < far <= 0.105
    assert errors.median() < 15


def test_no_corruption_settings_return_the_truth():
    n, mask = sphere_normals()
    g = torch.Generator().manual_seed(0)
    est = estimated_normals(n, mask, g, blur_sigma=0, bias_degrees=0, outlier_fraction=0)
    assert torch.allclose(est, n, atol=1e-6)


def test_deterministic_and_edge_cases():
    n, mask = sphere_normals()
    a = estimated_normals(n, mask, torch.Generator().manual_seed(3))
    b = estimated_normals(n, mask, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    empty = torch.zeros_like(mask)
    assert (estimated_normals(n, empty, torch.Generator()) == 0).all()
    with pytest.raises(ValueError, match="outlier_fraction"):
        estimated_normals(n, mask, torch.Generator(), outlier_fraction=1.0)
    with pytest.raises(ValueError, match="mask"):
        estimated_normals(n, mask[:3], torch.Generator())


def test_procedural_items_carry_them(tiny_procedural):
    ds = ProceduralDataset(tiny_procedural, "train")
    item = ds[0]
    est, true, mask = item["normals_estimated"], item["normals_camera"], item["mask"]
    assert est.shape == true.shape
    assert torch.equal(est, ds[0]["normals_estimated"])  # the same every time
    errors = angle_errors(est, true, mask)
    # at 32 x 32 the blur spans thin parts; most pixels stay within 30 degrees
    assert errors.median() < 30 and math.isfinite(float(errors.max()))
    multi = ProceduralDataset(tiny_procedural, "train", multiview=True)[0]["normals_estimated"]
    assert torch.equal(multi[0], est)
