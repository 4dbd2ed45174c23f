"""Implicit fields: SDF, occupancy, branched joint occupancy, and their building blocks."""

from .base import BoundField, Field, call_field, check_field_output, field_from_function
from .disn import DISNDecoder
from .encoding import PositionalEncoding
from .gradients import (
    FieldGradient,
    field_gradient,
    field_value,
    pretrain_sphere,
    sdf_gradient,
)
from .hyper import HyperMLP, HyperNetwork, HyperSDFField
from .occupancy import BranchedAlbedo, BranchedOccupancy, JointOccupancyField, OccupancyNetwork
from .output import FieldOutput
from .sdf import SDFNetwork
from .texture import TextureNetwork

__all__ = [
    "BoundField",
    "BranchedAlbedo",
    "BranchedOccupancy",
    "DISNDecoder",
    "Field",
    "FieldGradient",
    "FieldOutput",
    "HyperMLP",
    "HyperNetwork",
    "HyperSDFField",
    "JointOccupancyField",
    "OccupancyNetwork",
    "PositionalEncoding",
    "SDFNetwork",
    "TextureNetwork",
    "call_field",
    "check_field_output",
    "field_from_function",
    "field_gradient",
    "field_value",
    "pretrain_sphere",
    "sdf_gradient",
]
