"""The seed papers' models, assembled from svrecon's parts, and the model registry.

Every module of this package is imported here, so a model file that calls
:func:`register_model` at import is all it takes to add a model.
"""

import importlib
import pkgutil

from .base import ReconstructionModel, batch_camera, image_encoder, rotate_mesh
from .cat3d import CAT3D_WEIGHTS, Cat3D
from .disn import DISN, DISN_WEIGHTS
from .msu import MSU, MSU_WEIGHTS, MSURender
from .registry import (
    MODELS,
    ModelSpec,
    build_model,
    get_model,
    register_model,
    spec_of,
    unregister_model,
)
from .sdf_srn import SDF_SRN_WEIGHTS, SDFSRN
from .shapeclipper import SHAPECLIPPER_WEIGHTS, ShapeClipper

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "CAT3D_WEIGHTS",
    "DISN",
    "DISN_WEIGHTS",
    "MODELS",
    "MSU",
    "MSU_WEIGHTS",
    "MSURender",
    "SDFSRN",
    "SDF_SRN_WEIGHTS",
    "SHAPECLIPPER_WEIGHTS",
    "Cat3D",
    "ModelSpec",
    "ReconstructionModel",
    "ShapeClipper",
    "batch_camera",
    "build_model",
    "get_model",
    "image_encoder",
    "register_model",
    "rotate_mesh",
    "spec_of",
    "unregister_model",
]
