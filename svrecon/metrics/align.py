"""Aligning point clouds before evaluation: view-centric frames, scale normalisation,
Kabsch/Umeyama, ICP and brute-force rotation search."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..cameras.rotations import euler_to_matrix
from ..checks import as_floats, check_rotation, check_shape
from .distances import chamfer_distance, nearest_neighbors

__all__ = [
    "ICPResult",
    "icp",
    "kabsch",
    "normalize_cloud",
    "rotation_grid",
    "rotation_search",
    "to_view_frame",
]


def to_view_frame(points: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """Rotate canonical points ``[B, N, 3]`` into the camera's orientation, ``x -> R x``
    (``rotation`` ``[B, 3, 3]``, world-to-camera). Cat3D and ShapeClipper compare the
    prediction in its predicted view frame with the ground truth in its true view frame.
    A ``rotation`` that is not one (zero, scaled, sheared, reflecting; checked to
    ``1e-3``, float32's rounding passes) is a ``ValueError``.
    """
    points, rotation = as_floats(("points", points), ("rotation", rotation))
    dims = check_shape("points", points, ("B", "N", 3))
    check_shape("rotation", rotation, (dims["B"], 3, 3))
    check_rotation("rotation", rotation, tol=1e-3)
    return points @ rotation.transpose(1, 2)


def normalize_cloud(
    points: torch.Tensor, mode: str = "xy_extent", center: str | None = None
) -> torch.Tensor:
    """Centre each cloud ``[B, N, 3]`` and scale it.

    Modes: ``"xy_extent"`` (divide by the larger of the x and y extents, i.e. the
    projected extent in a view frame), ``"bbox_diagonal"`` (unit bounding-box
    diagonal), ``"unit_sphere"`` (farthest point at distance 1 from the centre).
    ``center``: ``"bbox"`` (the bounding box's centre; the default for the first two
    modes) or ``"centroid"`` (the mean; the default for ``"unit_sphere"``, and what
    ShapeClipper's ``normalize_pc`` uses before its x/y-extent scaling). A degenerate
    cloud (zero extent) is only centred; an empty one is a ``ValueError``.
    """
    dims = check_shape("points", points, ("B", "N", 3))
    if dims["N"] == 0:
        raise ValueError("points: expected at least one point, got 0")
    lo, hi = points.min(1).values, points.max(1).values
    if center is None:
        center = "centroid" if mode == "unit_sphere" else "bbox"
    if center not in ("bbox", "centroid"):
        raise ValueError(f"center: expected 'bbox' or 'centroid', got {center!r}")
    origin = points.mean(1) if center == "centroid" else (lo + hi) / 2
    if mode == "unit_sphere":
        scale = (points - origin[:, None]).norm(dim=-1).max(1).values
    elif mode in ("xy_extent", "bbox_diagonal"):
        extent = hi - lo
        scale = extent[:, :2].max(-1).values if mode == "xy_extent" else extent.norm(dim=-1)
    else:
        raise ValueError(
            f"mode: expected 'xy_extent', 'bbox_diagonal' or 'unit_sphere', got {mode!r}"
        )
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return (points - origin[:, None]) / scale[:, None, None]


def kabsch(
    source: torch.Tensor, target: torch.Tensor, scale: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Least-squares similarity ``target ~ s R source + t`` for paired points ``[B, N, 3]``
    (Kabsch; Umeyama 1991 with ``scale=True``). Returns ``(R [B, 3, 3], t [B, 3], s [B])``,
    ``R`` a proper rotation (det +1), ``s = 1`` without ``scale``. Fewer than 3 point
    pairs leave the rotation undetermined (and its SVD gradient undefined): refused.
    Collinear points are not checked (that would read the values); their rotation
    about the line is arbitrary. Integer points are promoted; half-precision ones are
    solved in float32 (there is no half SVD) and returned in their own dtype.
    """
    source, target = as_floats(("source", source), ("target", target))
    dims = check_shape("source", source, ("B", "N", 3))
    check_shape("target", target, (dims["B"], dims["N"], 3))
    if dims["N"] < 3:
        raise ValueError(f"source: kabsch needs at least 3 point pairs, got {dims['N']}")
    if source.dtype in (torch.float16, torch.bfloat16):
        return tuple(x.to(source.dtype) for x in kabsch(source.float(), target.float(), scale))
    mu_s, mu_t = source.mean(1), target.mean(1)
    xs, xt = source - mu_s[:, None], target - mu_t[:, None]
    cov = xt.transpose(1, 2) @ xs / source.shape[1]  # [B, 3, 3]
    u, sigma, vh = torch.linalg.svd(cov)
    d = torch.sign(torch.det(u @ vh))
    d = torch.where(d == 0, torch.ones_like(d), d)
    fix = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1))
    rotation = u @ fix @ vh
    if scale:
        var = (xs * xs).sum((1, 2)) / source.shape[1]
        s = (sigma * torch.diagonal(fix, dim1=-2, dim2=-1)).sum(-1) / var.clamp_min(1e-12)
    else:
        s = torch.ones_like(d)
    t = mu_t - s[:, None] * (rotation @ mu_s[..., None])[..., 0]
    return rotation, t, s


@dataclass
class ICPResult:
    """``target ~ scale * source @ rotation.T + translation`` after ICP."""

    rotation: torch.Tensor  # [B, 3, 3]
    translation: torch.Tensor  # [B, 3]
    scale: torch.Tensor  # [B]
    aligned: torch.Tensor  # [B, N, 3], the transformed source
    error: torch.Tensor  # [B], mean nearest-neighbour distance after alignment


def icp(
    source: torch.Tensor,
    target: torch.Tensor,
    iterations: int = 50,
    scale: bool = False,
    tolerance: float = 1e-10,
) -> ICPResult:
    """Iterative closest point (Besl & McKay 1992) from ``source`` ``[B, N, 3]`` to
    ``target`` ``[B, M, 3]``: match each source point to its nearest target point, solve
    :func:`kabsch`, repeat (SDF-SRN aligns Pascal3D predictions with 50 rigid
    iterations). Stops early when the mean error changes by less than ``tolerance``.
    """
    source, target = as_floats(("source", source), ("target", target))
    dims = check_shape("source", source, ("B", "N", 3))
    check_shape("target", target, (dims["B"], "M", 3))
    if iterations < 0:
        raise ValueError(f"iterations: expected >= 0, got {iterations}")
    b = source.shape[0]
    rotation = torch.eye(3, dtype=source.dtype, device=source.device).expand(b, 3, 3)
    translation = source.new_zeros(b, 3)
    s = source.new_ones(b)
    aligned, previous = source, None
    for _ in range(iterations):
        dist, index = nearest_neighbors(aligned, target)
        error = dist.mean(-1)
        if previous is not None and (previous - error).abs().max() < tolerance:
            break
        previous = error
        matched = torch.gather(target, 1, index[..., None].expand(-1, -1, 3))
        rotation, translation, s = kabsch(source, matched, scale)
        aligned = s[:, None, None] * source @ rotation.transpose(1, 2) + translation[:, None]
    error = nearest_neighbors(aligned, target)[0].mean(-1)
    return ICPResult(rotation, translation, s, aligned, error)


def rotation_grid(
    azimuths: int = 12, elevations: int = 5, rolls: int = 1, convention: str = "YXZ"
) -> torch.Tensor:
    """A grid of rotations ``[K, 3, 3]``: azimuth in ``[0, 2 pi)``, elevation in
    ``[-pi/2, pi/2]`` (``elevations`` evenly spaced, endpoints included if more than one),
    roll in ``[0, 2 pi)``, combined with :func:`~svrecon.cameras.euler_to_matrix`."""
    for name, count in (("azimuths", azimuths), ("elevations", elevations), ("rolls", rolls)):
        if count < 1:
            raise ValueError(f"{name}: expected >= 1, got {count}")
    az = torch.arange(azimuths, dtype=torch.float64) * (2 * math.pi / azimuths)
    el = (
        torch.linspace(-math.pi / 2, math.pi / 2, elevations, dtype=torch.float64)
        if elevations > 1
        else torch.zeros(1, dtype=torch.float64)
    )
    ro = torch.arange(rolls, dtype=torch.float64) * (2 * math.pi / rolls)
    angles = torch.cartesian_prod(az, el, ro)
    return euler_to_matrix(angles, convention)


def rotation_search(
    source: torch.Tensor, target: torch.Tensor, rotations: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The rotation of ``rotations`` ``[K, 3, 3]`` that best aligns each ``source``
    ``[B, N, 3]`` (rotated about the origin) with ``target`` ``[B, M, 3]`` by Chamfer
    distance. Returns ``(rotation [B, 3, 3], chamfer [B])``.
    """
    dims = check_shape("source", source, ("B", "N", 3))
    check_shape("target", target, (dims["B"], "M", 3))
    if check_shape("rotations", rotations, ("K", 3, 3))["K"] == 0:
        raise ValueError("rotations: expected at least one candidate rotation, got 0")
    rotations = rotations.to(source)
    scores = torch.stack(
        [chamfer_distance(source @ r.T, target).chamfer for r in rotations], dim=-1
    )  # [B, K]
    best = scores.argmin(-1)
    return rotations[best], scores.gather(-1, best[:, None])[:, 0]
