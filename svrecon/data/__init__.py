"""Datasets: the procedural part-based shapes rendered by svrecon itself, and readers
of the papers' datasets (NMR, 3D-R2N2, DISN, Pix3D, PASCAL3D+, image folders)."""

from .disn_h5 import DISNDataset, pose_from_trans_mat
from .image_folder import ImageFolderDataset
from .nmr import NMR_CATEGORIES, NMRDataset
from .normals import estimated_normals
from .pascal3d import PASCAL3D_CATEGORIES, Pascal3DDataset, pascal3d_camera
from .pix3d import PIX3D_CATEGORIES, Pix3DDataset, pix3d_camera
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
from .schema import (
    ITEM_SCHEMA,
    ItemKey,
    check_batch,
    check_images,
    evaluation_indices,
    surface_points_of,
    validate_item,
)
from .shapes import CATEGORIES, SEMANTIC_PARTS, Part, PartShape, make_shape, primitive_sdf
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
    "SEMANTIC_PARTS",
    "ColouredVoxels",
    "ITEM_SCHEMA",
    "DISNDataset",
    "ELEVATION_PRIORS",
    "FOCAL_FRACTION",
    "ImageFolderDataset",
    "ItemKey",
    "NMRDataset",
    "NMR_CATEGORIES",
    "PASCAL3D_CATEGORIES",
    "PIX3D_CATEGORIES",
    "Part",
    "PartShape",
    "Pascal3DDataset",
    "Pix3DDataset",
    "ProceduralDataset",
    "ProceduralRender",
    "VOXEL_KEYS",
    "WithColouredVoxels",
    "R2N2Dataset",
    "camera_from_batch",
    "check_batch",
    "check_images",
    "coloured_voxels",
    "estimated_normals",
    "evaluation_indices",
    "generate_procedural_dataset",
    "make_shape",
    "pascal3d_camera",
    "pix3d_camera",
    "pose_from_trans_mat",
    "primitive_sdf",
    "r2n2_camera",
    "random_lighting",
    "render_shape",
    "shape_samples",
    "surface_points_of",
    "true_shading",
    "validate_item",
    "view_camera",
    "voxel_centres",
]
