"""Point-cloud metrics: Chamfer distance, F-score, normal consistency, EMD.

Distances are Euclidean (unsquared) in the clouds' units unless a function says
otherwise; no reporting factor (x10, x1000) is applied here, see
:mod:`svrecon.metrics.protocols` for each paper's.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import numpy as np
import torch

from ..checks import as_float, check_shape
from ..numerics import safe_norm

__all__ = [
    "ChamferResult",
    "CloudDistances",
    "FScoreResult",
    "chamfer_distance",
    "cloud_distances",
    "approximate_match_cost",
    "earth_movers_distance",
    "f_score",
    "nearest_neighbors",
    "normal_consistency",
]


def nearest_neighbors(
    query: torch.Tensor, reference: torch.Tensor, chunk_size: int = 2048
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query point, its nearest reference point.

    Shapes: ``query`` ``[B, N, 3]``, ``reference`` ``[B, M, 3]`` (``M >= 1``) ->
    ``(distance [B, N], index [B, N])``; ``chunk_size >= 1`` query points per block of
    the brute-force search. Indices are found without gradients (a KD-tree
    on the CPU, chunked exact brute force elsewhere, never an ``N x M`` matrix). When
    either cloud requires grad, the distances are recomputed from the points, so they
    are differentiable in both clouds (with a zero, not NaN, gradient where two points
    coincide); otherwise the tree's own distances are returned.

    Integer clouds are promoted to the default float dtype. Non-finite points
    propagate as torch would, without a host synchronisation: a NaN or infinite query
    point has distance NaN, and every distance of an item whose reference holds one is
    NaN (its indices are then meaningless but in range).
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size: expected >= 1, got {chunk_size}")
    query, reference = as_float("query", query), as_float("reference", reference)
    dims = check_shape("query", query, ("B", "N", 3))
    check_shape("reference", reference, (dims["B"], "M", 3))
    if reference.shape[1] == 0:
        raise ValueError("reference: expected at least one point, got 0")
    bad_query = ~torch.isfinite(query).all(-1)
    bad_item = ~torch.isfinite(reference).flatten(1).all(-1)
    needs_grad = torch.is_grad_enabled() and (query.requires_grad or reference.requires_grad)
    with torch.no_grad():
        # The search sees finite stand-ins (the origin), so every index is in range.
        q_finite = torch.where(bad_query[..., None], 0.0, query)
        r_finite = torch.nan_to_num(reference, nan=0.0, posinf=0.0, neginf=0.0)
        if query.device.type == "cpu":
            pairs = zip(q_finite.double(), r_finite.double(), strict=True)
            found = [_tree_index(q.numpy(), r.numpy()) for q, r in pairs]
            index = torch.from_numpy(np.stack([i for _, i in found]))
            distance = torch.from_numpy(np.stack([d for d, _ in found])).to(query.dtype)
        else:
            index = _brute_force_index(q_finite, r_finite, chunk_size)
    if needs_grad or query.device.type != "cpu":
        nearest = torch.gather(reference, 1, index[..., None].expand(-1, -1, 3))
        distance = safe_norm(query - nearest)
    poisoned = bad_query | bad_item[:, None]
    return torch.where(poisoned, torch.nan, distance), index


def _tree_index(
    query: np.ndarray, reference: np.ndarray, fast: bool | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-reference distances (float64) and indices (int64) ``[N]`` of float64
    points ``[N, 3]`` by a KD-tree on every core: pykdtree (OpenMP; the fastest here,
    ``benchmarks/bench_metrics.py``) where it is installed, else scipy's
    ``cKDTree(...).query(workers=-1)``."""
    if fast is None:
        fast = importlib.util.find_spec("pykdtree") is not None
    query, reference = np.ascontiguousarray(query), np.ascontiguousarray(reference)
    if fast:
        from pykdtree.kdtree import KDTree

        distance, index = KDTree(reference).query(query, k=1)
    else:
        from scipy.spatial import cKDTree  # deferred: slow to import

        distance, index = cKDTree(reference).query(query, k=1, workers=-1)
    return np.asarray(distance, dtype=np.float64), index.astype(np.int64)


def _brute_force_index(query, reference, chunk_size):
    out = []
    ref_chunk = 8192  # blocks of B x chunk_size x 8192 distances
    for start in range(0, query.shape[1], chunk_size):
        q = query[:, start : start + chunk_size]
        best = torch.full(q.shape[:2], float("inf"), device=q.device, dtype=q.dtype)
        best_index = torch.zeros(q.shape[:2], device=q.device, dtype=torch.long)
        for r0 in range(0, reference.shape[1], ref_chunk):
            # Exact distances: cdist's matrix-multiply form loses precision near ties.
            d = torch.cdist(
                q, reference[:, r0 : r0 + ref_chunk], compute_mode="donot_use_mm_for_euclid_dist"
            )
            value, idx = d.min(-1)
            better = value < best
            best = torch.where(better, value, best)
            best_index = torch.where(better, idx + r0, best_index)
        out.append(best_index)
    return torch.cat(out, dim=1)


@dataclass
class ChamferResult:
    """Per-item Chamfer terms ``[B]``.

    Attributes:
        accuracy: mean distance from each predicted point to the ground truth.
        completeness: mean distance from each ground-truth point to the prediction.
        chamfer: ``(accuracy + completeness) / 2`` (Cat3D Eq. 9, OccNet's Chamfer-L1).
        squared: whether the distances were squared before averaging.
    """

    accuracy: torch.Tensor
    completeness: torch.Tensor
    chamfer: torch.Tensor
    squared: bool

    @property
    def total(self) -> torch.Tensor:
        """``accuracy + completeness`` (the sum convention of PSG and DISN)."""
        return self.accuracy + self.completeness


@dataclass
class FScoreResult:
    """F-scores, precisions and recalls ``[B, T]`` for ``T`` thresholds."""

    fscore: torch.Tensor
    precision: torch.Tensor
    recall: torch.Tensor


@dataclass
class CloudDistances:
    """Nearest-neighbour distances between two clouds, both ways, computed once and
    reused by Chamfer, F-score and precision/recall (PyTorch3D's reusable-result idea).

    Attributes:
        pred_to_gt: ``[B, N]`` distance from each predicted point to its nearest
            ground-truth point (differentiable), ``pred_index`` ``[B, N]`` that point.
        gt_to_pred: ``[B, M]`` the other way, ``gt_index`` ``[B, M]``.
    """

    pred_to_gt: torch.Tensor
    gt_to_pred: torch.Tensor
    pred_index: torch.Tensor
    gt_index: torch.Tensor

    def chamfer(self, squared: bool = False) -> ChamferResult:
        """:class:`ChamferResult` from these distances (squared before averaging with
        ``squared=True``)."""
        d_pred, d_gt = self.pred_to_gt, self.gt_to_pred
        if squared:
            d_pred, d_gt = d_pred**2, d_gt**2
        acc, comp = d_pred.mean(-1), d_gt.mean(-1)
        return ChamferResult(acc, comp, (acc + comp) / 2, squared)

    def f_score(self, thresholds) -> FScoreResult:
        """:class:`FScoreResult` at unsquared distance ``thresholds`` ``[T]`` (float64;
        NaN for an item with a NaN distance)."""
        t = torch.as_tensor(thresholds, dtype=torch.float64).reshape(-1)
        if not (torch.isfinite(t) & (t > 0)).all():  # a Python list: no device sync
            raise ValueError(f"thresholds: expected positive finite distances, got {t.tolist()}")
        t = t.to(self.pred_to_gt.device)
        precision = (self.pred_to_gt.detach().double()[..., None] < t).double().mean(1)
        recall = (self.gt_to_pred.detach().double()[..., None] < t).double().mean(1)
        denom = precision + recall
        safe = torch.where(denom > 0, denom, 1)
        fscore = torch.where(denom > 0, 2 * precision * recall / safe, 0)
        # A NaN distance would count as a miss: an item with one is NaN instead.
        bad = (self.pred_to_gt.isnan().any(1) | self.gt_to_pred.isnan().any(1))[:, None]
        precision, recall, fscore = (torch.where(bad, torch.nan, x)
                                     for x in (precision, recall, fscore))  # fmt: skip
        return FScoreResult(fscore, precision, recall)


def cloud_distances(pred: torch.Tensor, gt: torch.Tensor, chunk_size: int = 2048) -> CloudDistances:
    """Both nearest-neighbour directions between ``pred`` ``[B, N, 3]`` and ``gt``
    ``[B, M, 3]`` (two KD-tree queries on the CPU), for every metric that needs them.
    Both clouds need at least one point; integer clouds are promoted to the default
    float dtype, and non-finite points propagate as in :func:`nearest_neighbors`.

    Example::

        >>> d = cloud_distances(pred, gt)
        >>> d.chamfer().chamfer, d.f_score([0.01, 0.05]).fscore
    """
    pred, gt = as_float("pred", pred), as_float("gt", gt)
    dims = check_shape("pred", pred, ("B", "N", 3))
    check_shape("gt", gt, (dims["B"], "M", 3))
    for name, cloud in (("pred", pred), ("gt", gt)):
        if cloud.shape[1] == 0:
            raise ValueError(f"{name}: expected at least one point, got 0")
    d_pred, i_pred = nearest_neighbors(pred, gt, chunk_size)
    d_gt, i_gt = nearest_neighbors(gt, pred, chunk_size)
    return CloudDistances(d_pred, d_gt, i_pred, i_gt)


def chamfer_distance(
    pred: torch.Tensor, gt: torch.Tensor, squared: bool = False, chunk_size: int = 2048
) -> ChamferResult:
    """Chamfer distance between ``pred`` ``[B, N, 3]`` and ``gt`` ``[B, M, 3]``.

    ``squared=False`` averages unsquared nearest-neighbour distances (SDF-SRN, Cat3D,
    ShapeClipper, OccNet Chamfer-L1); ``squared=True`` averages squared distances
    (DISN, Chamfer-L2). Differentiable in both clouds; memory is bounded by
    ``chunk_size`` (no ``N x M`` matrix). To compute F-scores as well, call
    :func:`cloud_distances` once and use its methods.
    """
    return cloud_distances(pred, gt, chunk_size).chamfer(squared)


def f_score(
    pred: torch.Tensor, gt: torch.Tensor, thresholds, chunk_size: int = 2048
) -> FScoreResult:
    """F-score at distance ``thresholds`` (Tatarchenko et al. 2019).

    Precision: the fraction of predicted points whose nearest ground-truth point is
    closer than the threshold; recall: the fraction of ground-truth points whose nearest
    predicted point is. ``F = 2 P R / (P + R)`` (0 where ``P + R = 0``). Thresholds are
    unsquared distances in the clouds' units. Shapes: ``[B, N, 3]``, ``[B, M, 3]`` ->
    ``[B, T]`` each.
    """
    with torch.no_grad():
        return cloud_distances(pred, gt, chunk_size).f_score(thresholds)


def normal_consistency(
    pred: torch.Tensor,
    pred_normals: torch.Tensor,
    gt: torch.Tensor,
    gt_normals: torch.Tensor,
    chunk_size: int = 2048,
) -> torch.Tensor:
    """Normal consistency ``[B]`` (OccNet): the mean ``|cos|`` between each point's normal
    and its nearest neighbour's in the other cloud, averaged over both directions.

    Shapes: points and normals ``[B, N, 3]`` and ``[B, M, 3]``. Normals need not be unit;
    zero normals count as ``|cos| = 0``. Orientation is ignored (absolute cosine).
    """
    pred_normals, gt_normals = (
        as_float("pred_normals", pred_normals),
        as_float("gt_normals", gt_normals),
    )
    dims = check_shape("pred_normals", pred_normals, tuple(pred.shape))
    check_shape("gt_normals", gt_normals, tuple(gt.shape), dims)
    d = cloud_distances(pred, gt, chunk_size)
    idx_pred, idx_gt = d.pred_index, d.gt_index

    def unit(n):
        return n / n.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    def side(normals, other_normals, index):
        matched = torch.gather(other_normals, 1, index[..., None].expand(-1, -1, 3))
        return (unit(normals) * unit(matched)).sum(-1).abs().mean(-1)

    return (side(pred_normals, gt_normals, idx_pred) + side(gt_normals, pred_normals, idx_gt)) / 2


def earth_movers_distance(
    pred: torch.Tensor, gt: torch.Tensor, exact_limit: int = 2048, seed: int = 0
) -> torch.Tensor:
    """Earth mover's distance ``[B]`` between equal-size clouds ``[B, N, 3]``: the mean
    Euclidean distance of the optimal one-to-one matching.

    Exact (Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``) for
    ``N <= exact_limit``. Larger clouds are an **approximation from above**: both clouds
    are ordered along a random direction (the same for both, from ``seed``), cut into
    consecutive blocks of at most ``exact_limit`` points, and each block pair is
    matched exactly; the union is a valid matching, so the value is an upper bound of
    the true EMD. Not differentiable (a metric, computed on the CPU). Integer clouds are
    promoted to the default float dtype; an item with a non-finite point gives NaN;
    empty clouds (``N = 0``) give 0.
    """
    pred, gt = as_float("pred", pred), as_float("gt", gt)
    dims = check_shape("pred", pred, ("B", "N", 3))
    check_shape("gt", gt, (dims["B"], dims["N"], 3))
    rng = np.random.default_rng(seed)
    out = []
    for p, g in zip(
        pred.detach().double().cpu().numpy(), gt.detach().double().cpu().numpy(), strict=True
    ):
        n = len(p)
        if not (np.isfinite(p).all() and np.isfinite(g).all()):
            out.append(np.nan)
            continue
        if n == 0:
            out.append(0.0)
            continue
        if n <= exact_limit:
            out.append(_matched_mean(p, g))
            continue
        direction = rng.normal(size=3)
        order_p, order_g = np.argsort(p @ direction), np.argsort(g @ direction)
        blocks = int(np.ceil(n / exact_limit))
        total = 0.0
        for block_p, block_g in zip(
            np.array_split(order_p, blocks), np.array_split(order_g, blocks), strict=True
        ):
            total += _matched_mean(p[block_p], g[block_g]) * len(block_p)
        out.append(total / n)
    return torch.tensor(out, dtype=pred.dtype, device=pred.device)


def _matched_mean(p: np.ndarray, g: np.ndarray) -> float:
    from scipy.optimize import linear_sum_assignment  # deferred: slow to import

    cost = np.linalg.norm(p[:, None] - g[None], axis=-1)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def approximate_match_cost(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """PSG's approximate earth mover's distance (Fan et al. 2017, ``tf_approxmatch``;
    DISN reports ``match_cost * 0.01``): the **sum** over a soft matching of the
    Euclidean distances, ``[B]`` for clouds ``[B, N, 3]`` and ``[B, M, 3]``.

    The matching is built by annealing: at levels ``-4^j`` (``j = 8 .. -1``, then 0)
    every point of ``pred`` spreads its remaining mass over ``gt`` with weights
    ``exp(level * d^2)`` times ``gt``'s remaining capacity; capacities that would be
    exceeded are scaled down; what is assigned is removed from both. Each point carries
    mass ``max(N, M) / N`` (``/ M``), so the final plan moves all the mass and its
    cost is never below the exact optimum (``N = M``: ``N`` times
    :func:`earth_movers_distance`). Computed as in the reference on the device of the
    inputs, ``N x M`` memory per cloud, not differentiated. Integer clouds are promoted
    to the default float dtype; an empty cloud gives 0; non-finite points give NaN.
    """
    pred, gt = as_float("pred", pred), as_float("gt", gt)
    dims = check_shape("pred", pred, ("B", "N", 3))
    check_shape("gt", gt, (dims["B"], "M", 3))
    out = []
    with torch.no_grad():
        for a, b in zip(pred.double(), gt.double(), strict=True):
            n, m = len(a), len(b)
            if n == 0 or m == 0:
                out.append(a.new_zeros(()))
                continue
            d2 = (a[:, None] - b[None]).pow(2).sum(-1)  # exact, not cdist's matmul form
            left = torch.full((n,), max(n, m) / n, dtype=a.dtype, device=a.device)
            right = torch.full((m,), max(n, m) / m, dtype=a.dtype, device=a.device)
            match = torch.zeros_like(d2)
            for j in range(8, -3, -1):
                level = 0.0 if j == -2 else -(4.0**j)
                w = torch.exp(level * d2) * right[None]
                w = w / (w.sum(1, keepdim=True) + 1e-9) * left[:, None]
                scale = (right / (w.sum(0) + 1e-9)).clamp(max=1.0)
                w = w * scale[None]
                match += w
                left = (left - w.sum(1)).clamp_min(0)
                right = (right - w.sum(0)).clamp_min(0)
            out.append((match * d2.sqrt()).sum())
    return torch.stack(out).to(pred.dtype)
