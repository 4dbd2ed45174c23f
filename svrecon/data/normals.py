"""Stand-ins for an off-the-shelf monocular normal estimator (ShapeClipper supervises
with Omnidata's normals): the true camera-frame normals corrupted the way such an
estimator errs, so that a normal loss with outlier dropout has outliers to drop.

Three kinds of error, applied in this order:

1. **over-smoothing**: the normals are blurred inside the mask with a Gaussian of
   ``blur_sigma`` pixels (estimators round off creases and thin parts);
2. **a low-frequency bias**: the whole map is rotated by a random small angle
   (``bias_degrees`` standard deviation) about a random axis (a global tilt);
3. **outlier regions**: ``outlier_fraction`` of the mask's pixels, in a few discs
   centred on random mask pixels, get a wrong direction: a random unit vector facing
   the camera (the estimator's gross failures, e.g. on unusual parts).

The result is unit length inside the mask and zero outside.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..cameras import axis_angle_to_matrix
from ..checks import check_shape

__all__ = ["estimated_normals"]


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """``x`` ``[C, H, W]`` blurred separably (reflect padding)."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = x.shape[0]
    y = F.pad(x[None], (radius, radius, 0, 0), mode="reflect")
    y = F.conv2d(y, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    y = F.pad(y, (0, 0, radius, radius), mode="reflect")
    y = F.conv2d(y, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return y[0]


def estimated_normals(
    normals: torch.Tensor,
    mask: torch.Tensor,
    generator: torch.Generator,
    *,
    blur_sigma: float = 0.75,
    bias_degrees: float = 8.0,
    outlier_fraction: float = 0.1,
    outlier_regions: int = 3,
) -> torch.Tensor:
    """Corrupted copy ``[3, H, W]`` of camera-frame unit ``normals`` ``[3, H, W]``
    (zero off the ``mask`` ``[H, W]``), drawn from ``generator`` (CPU). See the module
    docstring for the error model. An empty mask gives zeros."""
    dims = check_shape("normals", normals, (3, "H", "W"))
    check_shape("mask", mask, (dims["H"], dims["W"]))
    if not 0 <= outlier_fraction < 1:
        raise ValueError(f"outlier_fraction: expected in [0, 1), got {outlier_fraction}")
    mask = mask.bool()
    n = normals.double() * mask
    if not mask.any():
        return torch.zeros_like(normals)
    weight = mask.double()[None]
    if blur_sigma > 0:  # a normalised blur: only mask pixels contribute
        n = _gaussian_blur(n, blur_sigma) / _gaussian_blur(weight, blur_sigma).clamp_min(1e-6)
        n = torch.where(mask[None], n, 0.0)
    axis = torch.randn(3, generator=generator, dtype=torch.float64)
    angle = math.radians(bias_degrees) * float(torch.randn((), generator=generator))
    rotation = axis_angle_to_matrix(angle * axis / axis.norm())
    n = torch.einsum("ij,jhw->ihw", rotation, n)

    ys, xs = mask.nonzero(as_tuple=True)
    target = int(round(outlier_fraction * len(ys)))
    bad = torch.zeros_like(mask)
    if target and outlier_regions:
        centres = torch.randint(0, len(ys), (outlier_regions,), generator=generator)
        # grow the discs together until they cover the target number of mask pixels
        # [regions, P] squared pixel distances to the region centres
        d = (ys[None] - ys[centres, None]) ** 2 + (xs[None] - xs[centres, None]) ** 2
        nearest = d.min(0).values.double()
        order = torch.argsort(nearest, stable=True)[:target]
        bad[ys[order], xs[order]] = True
        wrong = torch.randn(3, outlier_regions, generator=generator, dtype=torch.float64)
        wrong[2] = -wrong[2].abs()  # facing the camera (OpenCV: the camera looks along +z)
        wrong = wrong / wrong.norm(dim=0, keepdim=True)
        region = d[:, order].argmin(0)  # which disc each outlier pixel belongs to
        n[:, ys[order], xs[order]] = wrong[:, region]
    out = n / n.norm(dim=0, keepdim=True).clamp_min(1e-12)
    return torch.where(mask[None], out, 0.0).to(normals.dtype)
