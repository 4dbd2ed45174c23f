"""Each seed paper's evaluation recipe as a named preset, and one ``evaluate`` entry.

Numbers are only comparable under the same recipe; the presets record every choice
that differs between the papers (grid, points, squaring, reporting factors, threshold
units, alignment, averaging), each with its source.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..mesh import extract_mesh, sample_surface
from .align import icp, normalize_cloud, rotation_grid, rotation_search, to_view_frame
from .distances import approximate_match_cost, cloud_distances, earth_movers_distance
from .volumetric import voxel_iou

__all__ = [
    "ALIGNMENTS",
    "PROTOCOLS",
    "EvaluationProtocol",
    "average_results",
    "evaluate",
    "get_protocol",
]

#: The alignments a protocol can ask for.
ALIGNMENTS = ("none", "view_centric", "view_centric_xy_extent", "icp", "rotation_search")


@dataclass(frozen=True)
class EvaluationProtocol:
    """One paper's evaluation recipe.

    Attributes:
        name, source: the preset's name and where each value comes from.
        resolution, bounds: marching-cubes grid (cells per axis) and its extent;
            ``bounds=None`` means the ground truth's bounding box grown by
            ``bounds_padding`` times its largest side on every face (DISN; an unpadded
            box drops the faces of shapes that touch it).
        seed_scaling: reproduce the seed code's ``N + 1`` vertex scaling.
        num_points: points taken from the predicted mesh (and from the ground-truth one
            if a mesh is given, or from ground-truth points if more are given).
        point_sampling: ``"area"`` (uniform on the surface, trimesh's area-weighted
            sampling) or ``"vertices"`` (random mesh vertices, drawn with replacement as
            ``np.random.choice`` does: DISN's evaluation).
        squared: average squared (Chamfer-L2) instead of unsquared distances.
        chamfer_reduction: ``"mean"`` (``(acc + comp) / 2``), ``"sum"`` (``acc + comp``)
            or ``"separate"`` (accuracy and completeness reported on their own).
        report_scale: factor applied to the reported Chamfer values (x10, x1000).
        thresholds, threshold_units: F-score thresholds, as ``"distance"``,
            ``"squared_distance"`` (compared with squared distances) or
            ``"fraction_of_side"`` (times ``side_length``, or the ground truth's largest
            bounding-box side where ``side_length`` is ``None``).
        fscore_averaging: ``"per_sample"`` (average the F-scores) or
            ``"from_mean_precision_recall"`` (F of the averaged precision and recall).
        alignment: ``"none"``, ``"view_centric"`` (rotate each cloud into its view frame),
            ``"view_centric_xy_extent"`` (then centre each on its centroid and divide by
            its x/y extent), ``"icp"`` (rigid ICP of the prediction onto the ground
            truth) or ``"rotation_search"`` (the best of a grid of rotations of the
            prediction about the origin by Chamfer, then rigid ICP).
        icp_iterations: ICP iterations for ``alignment="icp"`` / ``"rotation_search"``.
        gt_axis_flips: ``(x, y, z)`` signs applied to the ground truth's coordinates
            before anything else, for datasets whose ground-truth frame is mirrored
            against the cameras' (ShapeClipper flips Pix3D's ground truth this way).
        emd: also compute the earth mover's distance (x ``emd_scale``).
        emd_psg: also report ``emd_psg``, PSG's approximate matching cost (a sum over
            the points, :func:`~svrecon.metrics.approximate_match_cost`) times 0.01 and
            ``emd_scale``: the unit of DISN's published EMD (``test/test_cd_emd.py``).
        voxel_iou_resolution: also report ``iou``, the IoU of the solid-voxelised
            prediction and ground-truth meshes on this grid over ``[-1.1, 1.1]^3``
            (DISN, 110; :func:`~svrecon.metrics.voxel_iou`), when the ground truth is a
            mesh.
        category_average: report the mean over categories of per-category means (the
            papers' tables), rather than the mean over samples.

    Empty predictions (no surface in the grid) follow one policy under every protocol:
    the SDF-SRN family's code samples an empty mesh as points at the origin, so an
    empty prediction is ``num_points`` points at the origin of the (aligned) frame and
    gets a finite, bad score with every metric present. DISN and MSU state no policy;
    the same applies.
    """

    name: str
    source: str
    resolution: int = 128
    bounds: tuple[float, float] | None = (-0.6, 0.6)
    bounds_padding: float = 0.05
    seed_scaling: bool = False
    num_points: int = 100_000
    point_sampling: str = "area"
    squared: bool = False
    chamfer_reduction: str = "mean"
    report_scale: float = 1.0
    thresholds: tuple[float, ...] = ()
    threshold_units: str = "distance"
    side_length: float | None = None
    fscore_averaging: str = "per_sample"
    alignment: str = "none"
    icp_iterations: int = 50
    gt_axis_flips: tuple[float, float, float] = (1.0, 1.0, 1.0)
    emd: bool = False
    emd_scale: float = 1.0
    voxel_iou_resolution: int | None = None
    emd_psg: bool = False
    category_average: bool = True
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        choices = {
            "point_sampling": ("area", "vertices"),
            "chamfer_reduction": ("mean", "sum", "separate"),
            "threshold_units": ("distance", "squared_distance", "fraction_of_side"),
            "fscore_averaging": ("per_sample", "from_mean_precision_recall"),
            "alignment": ALIGNMENTS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}: expected one of {allowed}, got {getattr(self, name)!r}")
        if any(f not in (1.0, -1.0) for f in self.gt_axis_flips) or len(self.gt_axis_flips) != 3:
            raise ValueError(f"gt_axis_flips: expected three of 1 or -1, got {self.gt_axis_flips}")
        if self.resolution < 2 or self.num_points < 1:
            raise ValueError(
                f"resolution, num_points: expected >= 2 and >= 1, got {self.resolution}, "
                f"{self.num_points}"
            )

    def with_(self, **changes) -> EvaluationProtocol:
        """A copy with some fields changed (e.g. a smaller ``num_points`` for tests)."""
        return replace(self, **changes)

    @property
    def view_centric(self) -> bool:
        """Whether the protocol needs the predicted and the true rotation."""
        return self.alignment.startswith("view_centric")

    def grid_bounds(self, gt_lo=None, gt_hi=None) -> tuple:
        """The marching-cubes bounds: the protocol's, or (``bounds=None``) the ground
        truth's box ``[gt_lo, gt_hi]`` (3-vectors) padded by ``bounds_padding``."""
        if self.bounds is not None:
            return self.bounds
        if gt_lo is None or gt_hi is None:
            raise ValueError(f"{self.name}: the grid is the ground truth's box; pass its bounds")
        lo, hi = np.asarray(gt_lo, dtype=np.float64), np.asarray(gt_hi, dtype=np.float64)
        pad = self.bounds_padding * float((hi - lo).max())
        return lo - pad, hi + pad

    def extract(self, field, *, gt_lo=None, gt_hi=None, level=None, kind=None, device=None):
        """The mesh of ``field`` (``points [1, N, 3] -> FieldOutput``) on this protocol's
        grid; see :meth:`grid_bounds`."""
        bounds = self.grid_bounds(gt_lo, gt_hi)
        return extract_mesh(
            field, self.resolution, bounds, level=level, kind=kind,
            seed_scaling=self.seed_scaling, device=device,
        )  # fmt: skip

    def sample(self, shape, seed: int) -> torch.Tensor:
        """``num_points`` points ``[num_points, 3]`` (float64) of a mesh, as the protocol
        takes them (area-weighted or vertices); ground-truth points ``[M, 3]`` are
        subsampled to ``num_points`` when there are more. An empty mesh gives points
        at the origin (see the class docstring)."""
        if _is_mesh(shape):
            if len(shape.faces) == 0:
                return torch.zeros(self.num_points, 3, dtype=torch.float64)
            if self.point_sampling == "vertices":
                rng = np.random.default_rng(seed)
                pick = rng.integers(0, len(shape.vertices), self.num_points)
                return torch.from_numpy(np.asarray(shape.vertices, dtype=np.float64)[pick])
            return sample_surface(shape, self.num_points, seed=seed, dtype=torch.float64)[0]
        points = torch.as_tensor(shape, dtype=torch.float64)
        if points.dim() != 2 or points.shape[-1] != 3 or len(points) == 0:
            raise ValueError(
                f"gt: expected points [M, 3] with M > 0 or a trimesh.Trimesh, "
                f"got {list(points.shape)}"
            )
        if len(points) > self.num_points:
            rng = np.random.default_rng(seed)
            points = points[torch.from_numpy(rng.choice(len(points), self.num_points, False))]
        return points


PROTOCOLS: dict[str, EvaluationProtocol] = {
    "disn": EvaluationProtocol(
        name="disn",
        source="DISN (NeurIPS 2019) Sec. 4, Tables 1-2; laughtervv/DISN evaluation code",
        resolution=64,
        bounds=None,
        num_points=2048,
        point_sampling="vertices",
        squared=True,
        chamfer_reduction="sum",
        report_scale=1000.0,
        thresholds=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2),
        threshold_units="fraction_of_side",
        side_length=2.0,
        fscore_averaging="from_mean_precision_recall",
        emd=True,
        emd_scale=100.0,
        voxel_iou_resolution=110,
        emd_psg=True,
        notes=(
            "65^3 samples over the ground-truth SDF bounding box, padded by 5% of its side",
            "2048 random vertices of the predicted and the ground-truth meshes "
            "(Xharlie/DISN test/test_cd_emd.py)",
            "CD x0.001 and EMD x100 on 2048 points (Table 1)",
            "F-score thresholds in % of a fixed side 2.0, F of the mean precision and "
            "recall (Table 2)",
            "IoU of the meshes voxelised solid at 110^3 (test/test_iou.py), when the "
            "ground truth is a mesh",
            "emd: the exact matching's mean distance x100; emd_psg: PSG's approximate "
            "matching cost (a sum) x0.01 x100, the unit of DISN's Table 1",
        ),
    ),
    "sdf_srn": EvaluationProtocol(
        name="sdf_srn",
        source="SDF-SRN (NeurIPS 2020) Sec. 4; chenhsuanlin/signed-distance-SRN eval_3D.py",
        resolution=128,
        bounds=(-0.6, 0.6),
        num_points=100_000,
        chamfer_reduction="separate",
        report_scale=10.0,
        notes=("accuracy and coverage reported separately, unsquared, x10",),
    ),
    "sdf_srn_pascal3d": EvaluationProtocol(
        name="sdf_srn_pascal3d",
        source="SDF-SRN Sec. 4.2 (Pascal3D+): canonical frame, rigid ICP, 50 iterations",
        resolution=128,
        bounds=(-0.6, 0.6),
        num_points=100_000,
        chamfer_reduction="separate",
        report_scale=10.0,
        alignment="icp",
        icp_iterations=50,
    ),
    "cat3d": EvaluationProtocol(
        name="cat3d",
        source="Cat3D (ECCV 2022) Sec. 4 and supp.: 128^3 grid, 100000 points, view-centred "
        "frames, CD Eq. 9, F-Score@1/5/10 (x0.01); bounds as the SDF-SRN code it forks",
        resolution=128,
        bounds=(-0.6, 0.6),
        num_points=100_000,
        chamfer_reduction="mean",
        thresholds=(0.01, 0.05, 0.1),
        alignment="view_centric",
    ),
    "shapeclipper": EvaluationProtocol(
        name="shapeclipper",
        source="ShapeClipper (CVPR 2023) Sec. 4.1: 100^3 grid, view-centric frames, scale by "
        "the projected extent, CD as Cat3D, FS@1/5/10 (x0.01); zxhuang1698/ShapeClipper code "
        "for the other thresholds; bounds as the SDF-SRN code it forks",
        resolution=100,
        bounds=(-0.6, 0.6),
        num_points=100_000,
        chamfer_reduction="mean",
        thresholds=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2),
        alignment="view_centric_xy_extent",
    ),
    "msu": EvaluationProtocol(
        name="msu",
        source="MSU 'Fully Understanding Generic Objects' (TPAMI) Sec. 5: 100k points, "
        "Chamfer-L1 as OccNet, F-score with tau = 1e-4 on squared distances as Pixel2Mesh",
        resolution=128,
        bounds=(-0.5, 0.5),
        num_points=100_000,
        chamfer_reduction="mean",
        report_scale=10.0,
        thresholds=(1e-4,),
        threshold_units="squared_distance",
        notes=(
            "grid and bounds are not given by the paper; 128^3 over [-0.5, 0.5]^3 assumed",
            "CD-L1 in OccNet's x10 unit (Table 5: 0.168)",
        ),
    ),
    "procedural": EvaluationProtocol(
        name="procedural",
        source="svrecon's own procedural benchmark (docs/procedural.md): canonical frame, "
        "unsquared Chamfer averaged both ways (as Cat3D Eq. 9), F-score per sample",
        resolution=64,
        num_points=4096,
        thresholds=(0.02, 0.05, 0.1),
        notes=("a CPU-sized recipe for the procedural shapes of svrecon.data",),
    ),
    "procedural_view_centric": EvaluationProtocol(
        name="procedural_view_centric",
        source="the procedural recipe in view-centric frames (prediction by the predicted "
        "rotation, ground truth by the true one), for models that estimate the viewpoint",
        resolution=64,
        num_points=4096,
        thresholds=(0.02, 0.05, 0.1),
        alignment="view_centric",
        notes=("a CPU-sized counterpart of the cat3d protocol",),
    ),
}


def get_protocol(protocol: EvaluationProtocol | str) -> EvaluationProtocol:
    """``protocol`` itself, or the registered protocol of that name (an unknown name
    is a ``ValueError`` listing the known ones)."""
    if isinstance(protocol, EvaluationProtocol):
        return protocol
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol: expected one of {sorted(PROTOCOLS)}, got {protocol!r}")
    return PROTOCOLS[protocol]


def _is_mesh(value) -> bool:
    """Whether ``value`` is a ``trimesh.Trimesh``, without importing trimesh for it: if
    trimesh was never imported, nothing can be one."""
    module = sys.modules.get("trimesh")
    return module is not None and isinstance(value, module.Trimesh)


def _rotation(name: str, value, protocol: str) -> torch.Tensor:
    if value is None:
        raise ValueError(f"{name}: the {protocol} protocol is view-centric and needs it, got None")
    r = torch.as_tensor(value, dtype=torch.float64).reshape(-1, 3, 3)
    if r.shape[0] != 1:
        raise ValueError(f"{name}: expected shape [3, 3], got {list(torch.as_tensor(value).shape)}")
    return r


def evaluate(
    prediction,
    gt,
    protocol: EvaluationProtocol | str,
    *,
    pred_rotation: torch.Tensor | None = None,
    gt_rotation: torch.Tensor | None = None,
    level: float | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Score one prediction against one ground truth, applying the whole protocol.

    Steps: the field's mesh on the protocol's grid (:meth:`EvaluationProtocol.extract`;
    ``bounds=None``: the padded ground-truth box), points from both (area-weighted or
    vertices), the alignment, nearest neighbours once both ways
    (:func:`~svrecon.metrics.cloud_distances`) for Chamfer, F-score, precision and
    recall, then EMD if asked.

    Args:
        prediction: a field for one instance (``points [1, N, 3] -> FieldOutput``) or a
            ``trimesh.Trimesh``. An empty mesh follows the protocol's empty policy.
        gt: ground-truth points ``[M, 3]`` or a mesh.
        protocol: an :class:`EvaluationProtocol` or a name in :data:`PROTOCOLS`.
        pred_rotation, gt_rotation: ``[3, 3]`` world-to-camera rotations for the
            view-centric alignments: the viewpoint the model predicted and the true one.
        level: the field's iso-level (default 0 for an SDF, 0.5 for an occupancy).
        seed: the sampling seed (the ground truth uses ``seed + 1``).

    Returns:
        A dict of floats: ``accuracy``, ``completeness`` (always), ``chamfer`` (unless
        the protocol reports them separately), all times ``report_scale``; ``fscore@t``,
        ``precision@t``, ``recall@t`` per threshold (fractions in ``[0, 1]``); ``emd``
        if asked for; ``empty`` (1.0 for an empty prediction, else 0.0).
    """
    p = get_protocol(protocol)
    flips = np.asarray(p.gt_axis_flips, dtype=np.float64)
    if _is_mesh(gt):
        if len(gt.faces) == 0:
            raise ValueError("gt: the ground-truth mesh is empty")
        if (flips != 1).any():
            gt = gt.copy()
            gt.vertices = gt.vertices * flips
            if np.prod(flips) < 0:
                gt.invert()  # a reflection turns the faces inside out
        gt_lo, gt_hi = gt.bounds
    else:
        gt_points = torch.as_tensor(gt, dtype=torch.float64)
        if gt_points.dim() != 2 or gt_points.shape[-1] != 3 or len(gt_points) == 0:
            raise ValueError(f"gt: expected points [M, 3] with M > 0, got {list(gt_points.shape)}")
        gt = gt_points = gt_points * torch.from_numpy(flips)  # the flipped cloud is the truth
        gt_lo, gt_hi = gt_points.min(0).values.numpy(), gt_points.max(0).values.numpy()
    gt_mesh = gt if _is_mesh(gt) else None
    target = p.sample(gt, seed + 1)[None]
    mesh = (
        prediction
        if _is_mesh(prediction)
        else p.extract(prediction, gt_lo=gt_lo, gt_hi=gt_hi, level=level)
    )
    empty = len(mesh.faces) == 0
    pred = p.sample(mesh, seed)[None]

    if p.view_centric:
        pred = to_view_frame(pred, _rotation("pred_rotation", pred_rotation, p.name))
        target = to_view_frame(target, _rotation("gt_rotation", gt_rotation, p.name))
        if p.alignment == "view_centric_xy_extent":
            target = normalize_cloud(target, "xy_extent", center="centroid")
            pred = normalize_cloud(pred, "xy_extent", center="centroid")
    elif p.alignment == "icp" and not empty:
        pred = icp(pred, target, iterations=p.icp_iterations).aligned
    elif p.alignment == "rotation_search" and not empty:
        best, _ = rotation_search(pred, target, rotation_grid(12, 5, 4))
        pred = icp(pred @ best.transpose(1, 2), target, iterations=p.icp_iterations).aligned
    if empty:  # the origin of the aligned frame, whatever the alignment
        pred = torch.zeros_like(pred)

    distances = cloud_distances(pred, target)
    cd = distances.chamfer(squared=p.squared)
    out = {
        "accuracy": cd.accuracy.item() * p.report_scale,
        "completeness": cd.completeness.item() * p.report_scale,
    }
    if p.chamfer_reduction == "mean":
        out["chamfer"] = cd.chamfer.item() * p.report_scale
    elif p.chamfer_reduction == "sum":
        out["chamfer"] = cd.total.item() * p.report_scale

    if p.thresholds:
        thresholds = np.asarray(p.thresholds, dtype=np.float64)
        if p.threshold_units == "squared_distance":
            radii = np.sqrt(thresholds)
        elif p.threshold_units == "fraction_of_side":
            side = p.side_length if p.side_length is not None else float((gt_hi - gt_lo).max())
            radii = thresholds * side
        else:
            radii = thresholds
        fs = distances.f_score(radii)
        for i, t in enumerate(p.thresholds):
            out[f"fscore@{t:g}"] = fs.fscore[0, i].item()
            out[f"precision@{t:g}"] = fs.precision[0, i].item()
            out[f"recall@{t:g}"] = fs.recall[0, i].item()
    if p.emd:
        n = min(pred.shape[1], target.shape[1])
        out["emd"] = earth_movers_distance(pred[:, :n], target[:, :n]).item() * p.emd_scale
    if p.emd_psg:
        psg = approximate_match_cost(pred, target).item()
        out["emd_psg"] = psg * 0.01 * p.emd_scale
    if p.voxel_iou_resolution is not None and gt_mesh is not None:
        out["iou"] = voxel_iou(mesh, gt_mesh, p.voxel_iou_resolution)
    out["empty"] = float(empty)
    return out


def average_results(
    results: list[dict[str, float]],
    protocol: EvaluationProtocol | str,
    categories: list[str] | None = None,
) -> dict[str, float]:
    """Average per-sample results as the protocol's paper does.

    With ``protocol.category_average`` and ``categories`` given, each metric is averaged
    per category, then over categories. F-scores are averaged per sample, or (for
    ``"from_mean_precision_recall"``) recomputed from the averaged precision and recall.
    """
    p = get_protocol(protocol)
    if not results:
        raise ValueError("results: nothing to average")
    if categories is not None and len(categories) != len(results):
        raise ValueError(f"categories: expected {len(results)} labels, got {len(categories)}")
    groups: dict[str, list[dict[str, float]]] = defaultdict(list)
    for i, r in enumerate(results):
        key = categories[i] if (categories is not None and p.category_average) else "all"
        groups[key].append(r)

    def mean_of(rows):
        return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}

    per_group = [mean_of(rows) for rows in groups.values()]
    out = mean_of(per_group)
    if p.fscore_averaging == "from_mean_precision_recall":
        for t in p.thresholds:
            pr, rc = out[f"precision@{t:g}"], out[f"recall@{t:g}"]
            out[f"fscore@{t:g}"] = 2 * pr * rc / (pr + rc) if pr + rc > 0 else 0.0
    return out
