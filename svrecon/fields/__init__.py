"""Implicit fields: SDF, occupancy, branched joint occupancy, and their building blocks."""

from .encoding import PositionalEncoding
from .gradients import field_value, pretrain_sphere, sdf_gradient
from .hyper import HyperMLP, HyperNetwork, HyperSDFField
from .output import FieldOutput
from .sdf import SDFNetwork

__all__ = [
    "FieldOutput",
    "HyperMLP",
    "HyperNetwork",
    "HyperSDFField",
    "PositionalEncoding",
    "SDFNetwork",
    "field_value",
    "pretrain_sphere",
    "sdf_gradient",
]
