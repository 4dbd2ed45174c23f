"""What every field returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import torch

__all__ = ["FieldOutput"]


@dataclass
class FieldOutput:
    """Values of a field at points ``[B, N, 3]``.

    Exactly one of ``sdf`` and ``occupancy`` is set.

    Attributes:
        sdf: ``[B, N]`` signed distance, negative inside.
        occupancy: ``[B, N]`` occupancy probability in ``[0, 1]``.
        features: ``[B, N, F]`` per-point features (texture-head and LSTM input).
        rgb: ``[B, N, 3]`` colour in ``[0, 1]``.
        albedo: ``[B, N, 3]`` albedo in ``[0, 1]``.
        branch_values: ``[B, N, K]`` per-branch occupancies (BAE-NET style fields).
        branch_index: ``[B, N]`` long, the branch that attains the maximum.
        branch_albedo: ``[B, N, K, 3]`` every branch's albedo (MSU).
    """

    sdf: torch.Tensor | None = None
    occupancy: torch.Tensor | None = None
    features: torch.Tensor | None = None
    rgb: torch.Tensor | None = None
    albedo: torch.Tensor | None = None
    branch_values: torch.Tensor | None = None
    branch_index: torch.Tensor | None = None
    branch_albedo: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if (self.sdf is None) == (self.occupancy is None):
            raise ValueError("FieldOutput: set exactly one of sdf and occupancy")

    @property
    def value(self) -> torch.Tensor:
        """The scalar field ``[B, N]``: ``sdf`` or ``occupancy``, whichever is set."""
        return self.sdf if self.sdf is not None else self.occupancy

    @property
    def kind(self) -> str:
        """``"sdf"`` or ``"occupancy"``, whichever is set."""
        return "sdf" if self.sdf is not None else "occupancy"

    @property
    def default_level(self) -> float:
        """The surface level: 0 for an SDF, 0.5 for an occupancy."""
        return 0.0 if self.sdf is not None else 0.5

    def outside(self, level: float | None = None) -> torch.Tensor:
        """``[B, N]`` values negative inside and positive outside the surface at ``level``
        (default :attr:`default_level`): ``sdf - level`` or ``level - occupancy``."""
        level = self.default_level if level is None else level
        return self.sdf - level if self.sdf is not None else level - self.occupancy

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> FieldOutput:
        """A copy with ``fn`` applied to every tensor that is set (e.g. a reshape)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return FieldOutput(**{k: None if v is None else fn(v) for k, v in values.items()})
