"""MSU's local feature consistency (Eq. 7): the principal direction of the image
features at projected part-boundary points should agree across images of a category."""

from __future__ import annotations

import torch

from ..checks import as_float, check_shape

__all__ = ["feature_consistency_loss", "largest_eigenvector", "part_boundary_points"]


def part_boundary_points(
    centres: torch.Tensor,
    occupied: torch.Tensor,
    branch_index: torch.Tensor,
    num_points: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``q`` boundary points between adjacent segments of a branched shape (MSU Sec.
    3.3: "a point and its spatial neighbour shall trigger different branches").

    A voxel is on a boundary when it is occupied and one of its 6 neighbours is
    occupied and has a different branch. ``num_points`` of them are drawn uniformly
    without replacement per item (without a host synchronisation); an item with fewer
    gets them all, the rest of its slots ``valid=False`` (at the origin).

    Shapes: ``centres`` ``[R, R, R, 3]`` or ``[B, R, R, R, 3]`` (e.g.
    :func:`svrecon.data.voxel_centres`), ``occupied`` (bool) and ``branch_index``
    ``[B, R, R, R]`` (a branched field's ``occupancy > level`` and ``branch_index`` at
    the centres) -> ``(points [B, q, 3], valid [B, q])``, for
    :func:`feature_consistency_loss` after projection and feature sampling.
    """
    dims = check_shape("occupied", occupied, ("B", "X", "Y", "Z"))
    check_shape("branch_index", branch_index, ("B", "X", "Y", "Z"), dims)
    if centres.dim() == 4:
        centres = centres.expand(dims["B"], *centres.shape)
    check_shape("centres", centres, (dims["B"], dims["X"], dims["Y"], dims["Z"], 3))
    if num_points < 1:
        raise ValueError(f"num_points: expected >= 1, got {num_points}")
    occ = occupied.bool()
    boundary = torch.zeros_like(occ)
    for axis in (1, 2, 3):
        n = occ.shape[axis]
        here = [slice(None)] * 4
        there = [slice(None)] * 4
        here[axis], there[axis] = slice(0, n - 1), slice(1, n)
        here, there = tuple(here), tuple(there)
        differ = occ[here] & occ[there] & (branch_index[here] != branch_index[there])
        boundary[here] |= differ
        boundary[there] |= differ
    flat = boundary.flatten(1)
    score = torch.rand(flat.shape, generator=generator, device=flat.device)
    score = torch.where(flat, score, -1.0)
    k = min(num_points, flat.shape[1])
    top, index = score.topk(k, dim=1)
    points = torch.gather(centres.flatten(1, 3), 1, index[..., None].expand(-1, -1, 3))
    valid = top >= 0
    points = torch.where(valid[..., None], points, 0.0)
    if k < num_points:  # fewer voxels than slots
        pad = num_points - k
        points = torch.cat([points, points.new_zeros(dims["B"], pad, 3)], 1)
        valid = torch.cat([valid, valid.new_zeros(dims["B"], pad)], 1)
    return points, valid


def largest_eigenvector(
    features: torch.Tensor, valid: torch.Tensor | None = None, rel_gap: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit eigenvector of the largest eigenvalue of ``(F - mu)^T (F - mu)``, per item.

    Shapes: ``features`` ``[B, q, D]``, ``valid`` ``[B, q]`` (points to use; all if
    ``None``). Returns ``(vectors [B, D], defined [B])``. The direction is undefined when
    the top eigenvalue is zero or repeated (relative gap below ``rel_gap``, e.g. fewer
    than two distinct points); such items get a zero vector, ``defined=False`` and no
    gradient. Invalid points are never read (a NaN there changes nothing); a
    non-finite valid feature makes its item's vector NaN (``defined=True``). The sign
    of an eigenvector is arbitrary. The gradient is the exact first derivative (finite
    with fewer points than dimensions, where the covariance has repeated zero
    eigenvalues); second derivatives are not provided.
    """
    dims = check_shape("features", features, ("B", "q", "D"))
    if valid is None:
        valid = features.new_ones(dims["B"], dims["q"], dtype=torch.bool)
    check_shape("valid", valid, ("B", "q"), dims)
    w = valid.to(features.dtype)[..., None]
    count = w.sum(1, keepdim=True).clamp_min(1)
    # where(), not a product: an invalid point's feature (e.g. NaN, projected from
    # behind the camera) is never read, so neither the value nor the gradient sees it.
    kept = torch.where(valid[..., None], features, 0.0)
    centred = torch.where(valid[..., None], kept - kept.sum(1, keepdim=True) / count, 0.0)
    cov = centred.transpose(1, 2) @ centred
    with torch.no_grad():
        # eigh refuses a non-finite matrix; such an item's vector is NaN instead, so a
        # NaN among the valid features propagates as in torch (and is not skipped).
        finite = torch.isfinite(cov).all(-1).all(-1)
        # Scaled to unit size and solved in float64: LAPACK's float32 eigh failed to
        # converge on an ill-conditioned covariance in MSU training. Vectors are the
        # same; values are scaled back.
        size = cov.abs().amax((-1, -2), keepdim=True)
        size = torch.where(finite[:, None, None] & (size > 0), size, 1.0)
        unit = torch.where(finite[:, None, None], cov / size, 0.0).double()
        values, basis = torch.linalg.eigh(unit)
        values, basis = (values * size[..., 0].double()).to(cov.dtype), basis.to(cov.dtype)
        top = values[:, -1]
        second = values[:, -2] if dims["D"] > 1 else torch.zeros_like(top)
        scale = values.abs().amax(-1)
        defined = (top > 0) & (top - second > rel_gap * scale)
        vector = basis[..., -1]
        # The first-order derivative of the top eigenvector, dv = sum_k v_k v_k^T dC v /
        # (lambda_1 - lambda_k) over k != 1, needs only the gaps to the top eigenvalue,
        # which `defined` bounds away from 0. torch's eigh backward divides by every
        # pairwise gap, and the repeated zero eigenvalues of a rank-deficient covariance
        # (fewer points than feature dimensions) would make it 0 * inf = NaN.
        gaps = top[:, None] - values
        inverse = torch.where(gaps > rel_gap * scale[:, None], 1.0 / gaps.clamp_min(1e-300), 0.0)
        inverse[:, -1] = 0.0
        pseudo = (basis * inverse[:, None, :]) @ basis.transpose(1, 2)
        # An undefined item (no gap, or a non-finite covariance whose eigh is NaN)
        # takes no part in the gradient: its factors are zeroed, not multiplied by 0.
        pseudo = torch.where(defined[:, None, None], pseudo, 0.0)
        vector = torch.where(defined[:, None], vector, 0.0)
    delta = (cov - cov.detach()) @ vector[..., None]
    vectors = vector + (pseudo @ delta)[..., 0]  # the value of v, the gradient of dv
    vectors = torch.where(defined[:, None], vectors, 0.0)
    vectors = torch.where(finite[:, None], vectors, torch.nan)
    return vectors, defined | ~finite


def feature_consistency_loss(
    features: torch.Tensor,
    labels: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """``mean_{(i, j)} |v_i - v_j|_1`` over pairs of images of the same category
    (MSU Eq. 7), with ``v`` the :func:`largest_eigenvector` of each image's local
    features at its boundary points.

    The eigenvector's sign is arbitrary, so each pair uses
    ``min(|v_i - v_j|_1, |v_i + v_j|_1)``: the loss is invariant to either sign.
    Shapes: ``features`` ``[B, q, D]`` (features sampled at the projected boundary
    points, e.g. with :func:`svrecon.encoders.sample_features`), ``labels`` ``[B]``
    (all one category if ``None``), ``valid`` ``[B, q]``. Pairs where either direction
    is undefined are skipped; no pair gives 0 with zero gradients.
    """
    features = as_float("features", features)
    vectors, defined = largest_eigenvector(features, valid)
    b = features.shape[0]
    if labels is None:
        labels = torch.zeros(b, dtype=torch.long, device=features.device)
    check_shape("labels", labels, (b,))
    i, j = torch.triu_indices(b, b, offset=1, device=features.device)
    keep = (labels[i] == labels[j]) & defined[i] & defined[j]
    i, j = i[keep], j[keep]
    if i.numel() == 0:
        return (features * 0).sum()
    same = (vectors[i] - vectors[j]).abs().sum(-1)
    flipped = (vectors[i] + vectors[j]).abs().sum(-1)
    return torch.minimum(same, flipped).mean()
