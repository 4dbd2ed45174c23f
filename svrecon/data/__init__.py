"""Datasets: the procedural part-based shapes rendered by svrecon itself."""

from .disn_h5 import DISNDataset, pose_from_trans_mat
from .nmr import NMR_CATEGORIES, NMRDataset
from .normals import estimated_normals
from .procedural import (
    CAMERA_DISTANCE,
    ELEVATION_PRIORS,
    FOCAL_FRACTION,
    ProceduralDataset,
    ProceduralRender,
    camera_from_batch,
    generate_procedural_dataset,
    random_lighting,
    render_shape,
    shape_samples,
    true_shading,
    view_camera,
)
from .r2n2 import R2N2Dataset, r2n2_camera
from .schema import ITEM_SCHEMA, ItemKey, check_batch, evaluation_indices, validate_item
from .shapes import CATEGORIES, Part, PartShape, make_shape, primitive_sdf
from .voxels import (
    VOXEL_KEYS,
    ColouredVoxels,
    WithColouredVoxels,
    coloured_voxels,
    voxel_centres,
)

__all__ = [
    "CAMERA_DISTANCE",
    "CATEGORIES",
    "ColouredVoxels",
    "ITEM_SCHEMA",
    "DISNDataset",
    "ELEVATION_PRIORS",
    "FOCAL_FRACTION",
    "ItemKey",
    "NMRDataset",
    "NMR_CATEGORIES",
    "Part",
    "PartShape",
    "ProceduralDataset",
    "ProceduralRender",
    "VOXEL_KEYS",
    "WithColouredVoxels",
    "R2N2Dataset",
    "camera_from_batch",
    "check_batch",
    "coloured_voxels",
    "estimated_normals",
    "evaluation_indices",
    "generate_procedural_dataset",
    "make_shape",
    "pose_from_trans_mat",
    "primitive_sdf",
    "r2n2_camera",
    "random_lighting",
    "render_shape",
    "shape_samples",
    "true_shading",
    "validate_item",
    "view_camera",
    "voxel_centres",
]
