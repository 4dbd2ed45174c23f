"""What every field returns."""

from __future__ import annotations

from dataclasses import dataclass

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
    """

    sdf: torch.Tensor | None = None
    occupancy: torch.Tensor | None = None
    features: torch.Tensor | None = None
    rgb: torch.Tensor | None = None
    albedo: torch.Tensor | None = None
    branch_values: torch.Tensor | None = None
    branch_index: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if (self.sdf is None) == (self.occupancy is None):
            raise ValueError("FieldOutput: set exactly one of sdf and occupancy")

    @property
    def value(self) -> torch.Tensor:
        """The scalar field ``[B, N]``: ``sdf`` or ``occupancy``, whichever is set."""
        return self.sdf if self.sdf is not None else self.occupancy
