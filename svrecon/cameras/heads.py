"""Viewpoint heads: features ``[B, F]`` -> camera parameters and svrecon cameras."""

from __future__ import annotations

import torch
from torch import nn

from ..checks import check_shape
from .cameras import PerspectiveCamera, ProjectionMatrixCamera, well_conditioned_projection
from .presets import pose_from_angle_trig
from .rotations import rotation_6d_to_matrix

__all__ = ["EulerTrigHead", "ProjectionMatrixHead", "Rotation6DHead"]


class EulerTrigHead(nn.Module):
    """Three ``(cos, sin)`` pairs (azimuth, elevation, roll), each normalised (Cat3D,
    ShapeClipper). ``forward -> [B, 6]``; :meth:`pose` turns them into a pose with a
    seed preset from :mod:`svrecon.cameras.presets`."""

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.linear = nn.Linear(in_dim, 6)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        check_shape("features", features, ("B", self.in_dim))
        pairs = self.linear(features).unflatten(-1, (3, 2))
        return (pairs / pairs.norm(dim=-1, keepdim=True).clamp_min(1e-8)).flatten(-2)

    @staticmethod
    def pose(trig: torch.Tensor, preset: str, distance) -> torch.Tensor:
        """World-to-camera ``[B, 3, 4]`` from the head's output."""
        return pose_from_angle_trig(preset, trig, distance)


class Rotation6DHead(nn.Module):
    """DISN's camera head: 6D rotation + translation (+ optional scale).

    ``forward -> (pose [B, 3, 4], scale [B] or None)``. The rotation starts at the
    identity and the translation at ``initial_translation``. ``layout="rows"`` (the
    default) reads the 6D vectors as rows of the rotation, as DISN Eq. 1 and its code
    do; ``"columns"`` is Zhou et al.'s convention (see :func:`rotation_6d_to_matrix`).
    """

    def __init__(
        self,
        in_dim: int,
        predict_scale: bool = False,
        initial_translation: tuple[float, float, float] = (0.0, 0.0, 2.5),
        layout: str = "rows",
    ) -> None:
        super().__init__()
        if layout not in ("columns", "rows"):
            raise ValueError(f"layout: expected 'columns' or 'rows', got {layout!r}")
        self.in_dim, self.predict_scale, self.layout = in_dim, predict_scale, layout
        self.linear = nn.Linear(in_dim, 9 + int(predict_scale))
        with torch.no_grad():
            self.linear.weight.mul_(0.01)
            self.linear.bias.zero_()
            self.linear.bias[:6] = torch.tensor([1.0, 0, 0, 0, 1, 0])
            self.linear.bias[6:9] = torch.tensor(initial_translation)
            if predict_scale:
                self.linear.bias[9] = 1.0

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        check_shape("features", features, ("B", self.in_dim))
        out = self.linear(features)
        R = rotation_6d_to_matrix(out[:, :6], self.layout)
        pose = torch.cat([R, out[:, 6:9, None]], dim=-1)
        return pose, (out[:, 9] if self.predict_scale else None)

    def camera(self, features: torch.Tensor, focal, principal_point) -> PerspectiveCamera:
        pose, _ = self(features)
        return PerspectiveCamera(focal, principal_point, pose)


class ProjectionMatrixHead(nn.Module):
    """The MSU camera head: 12 standardised values -> ``P = out * std + mean``.

    ``mean`` and ``std`` (``[3, 4]`` or numbers) are the training set's statistics of
    ``P``; the last layer starts at zero so the initial camera is ``mean``, which must
    be a finite camera (default: unit focal length, identity rotation, 2.5 units away).
    ``forward -> ProjectionMatrixCamera``, its ``P`` passed through
    :func:`~svrecon.cameras.well_conditioned_projection` (no check, no host sync).
    """

    def __init__(self, in_dim: int, mean: torch.Tensor | None = None, std=0.1) -> None:
        super().__init__()
        self.in_dim = in_dim
        if mean is None:
            mean = torch.tensor([[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 2.5]])
        check_shape("mean", mean, (3, 4))
        ProjectionMatrixCamera(mean[None].double())  # the starting camera must be finite
        self.register_buffer("mean", mean.float())
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).expand(3, 4).clone())
        self.linear = nn.Linear(in_dim, 12)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, features: torch.Tensor) -> ProjectionMatrixCamera:
        check_shape("features", features, ("B", self.in_dim))
        P = self.linear(features).view(-1, 3, 4) * self.std + self.mean
        return ProjectionMatrixCamera(well_conditioned_projection(P), validate=False)
