"""The seed papers' models, assembled from svrecon's parts."""

from .base import ReconstructionModel, batch_camera
from .disn import DISN, DISN_WEIGHTS
from .sdf_srn import SDF_SRN_WEIGHTS, SDFSRN

__all__ = [
    "DISN",
    "DISN_WEIGHTS",
    "SDFSRN",
    "SDF_SRN_WEIGHTS",
    "ReconstructionModel",
    "batch_camera",
]
