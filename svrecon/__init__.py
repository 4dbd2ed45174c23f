"""svrecon: differentiable building blocks for single-view 3D reconstruction.

Subpackages are imported explicitly (``import svrecon.cameras``) or through this
module (``svrecon.cameras``); importing svrecon never touches the network.
"""

from . import cameras, data, encoders, fields, losses, mesh, metrics, renderers, semantic

__version__ = "0.1.0.dev0"

__all__ = [
    "__version__",
    "cameras",
    "data",
    "encoders",
    "fields",
    "losses",
    "mesh",
    "metrics",
    "renderers",
    "semantic",
]
