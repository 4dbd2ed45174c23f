"""Evaluation: Chamfer distance, F-score, EMD, normal consistency, volumetric IoU,
part segmentation IoU, image PSNR and intrinsic-image errors, alignment, and each
paper's protocol."""

from .align import (
    ICPResult,
    icp,
    kabsch,
    normalize_cloud,
    rotation_grid,
    rotation_search,
    to_view_frame,
)
from .distances import (
    ChamferResult,
    CloudDistances,
    FScoreResult,
    approximate_match_cost,
    chamfer_distance,
    cloud_distances,
    earth_movers_distance,
    f_score,
    nearest_neighbors,
    normal_consistency,
)
from .images import local_scale_invariant_mse, psnr, scale_invariant_mse
from .protocols import PROTOCOLS, EvaluationProtocol, average_results, evaluate, get_protocol
from .segmentation import PartIoUResult, height_band_labels, part_iou, segmentation_confusion
from .viewpoint import AzimuthAlignment, angle_difference, azimuth_errors, fit_azimuth_alignment
from .volumetric import solid_voxels, volumetric_iou, voxel_iou

__all__ = [
    "PROTOCOLS",
    "AzimuthAlignment",
    "ChamferResult",
    "CloudDistances",
    "EvaluationProtocol",
    "FScoreResult",
    "ICPResult",
    "PartIoUResult",
    "angle_difference",
    "approximate_match_cost",
    "average_results",
    "azimuth_errors",
    "chamfer_distance",
    "cloud_distances",
    "earth_movers_distance",
    "evaluate",
    "f_score",
    "height_band_labels",
    "fit_azimuth_alignment",
    "get_protocol",
    "icp",
    "kabsch",
    "local_scale_invariant_mse",
    "nearest_neighbors",
    "normal_consistency",
    "normalize_cloud",
    "part_iou",
    "psnr",
    "rotation_grid",
    "rotation_search",
    "scale_invariant_mse",
    "segmentation_confusion",
    "solid_voxels",
    "to_view_frame",
    "volumetric_iou",
    "voxel_iou",
]
