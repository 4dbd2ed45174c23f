"""Implicit fields: SDF, occupancy, branched joint occupancy, and their building blocks."""

from .disn import DISNDecoder
from .encoding import PositionalEncoding
from .gradients import field_value, pretrain_sphere, sdf_gradient
from .hyper import HyperMLP, HyperNetwork, HyperSDFField
from .occupancy import BranchedAlbedo, BranchedOccupancy, JointOccupancyField, OccupancyNetwork
from .output import FieldOutput
from .sdf import SDFNetwork
from .texture import TextureNetwork

__all__ = [
    "BranchedAlbedo",
    "BranchedOccupancy",
    "DISNDecoder",
    "FieldOutput",
    "HyperMLP",
    "HyperNetwork",
    "HyperSDFField",
    "JointOccupancyField",
    "OccupancyNetwork",
    "PositionalEncoding",
    "SDFNetwork",
    "TextureNetwork",
    "field_value",
    "pretrain_sphere",
    "sdf_gradient",
]
