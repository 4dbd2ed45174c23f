"""What every assembled model shares: weighted loss dicts, mesh reconstruction, and
a config that rebuilds it from a checkpoint."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping

import torch
import trimesh
from torch import nn

from ..cameras import Camera, PerspectiveCamera
from ..mesh import extract_mesh

__all__ = ["ReconstructionModel", "batch_camera"]


def batch_camera(batch: Mapping[str, object]) -> Camera:
    """The batch's cameras: ``batch["camera"]`` if it holds one, else a
    :class:`PerspectiveCamera` from ``intrinsics`` ``[B, 3, 3]`` and ``pose`` ``[B, 3, 4]``."""
    camera = batch.get("camera")
    if isinstance(camera, Camera):
        return camera
    if "intrinsics" not in batch or "pose" not in batch:
        raise ValueError("batch: expected a 'camera' or 'intrinsics' and 'pose' entries")
    return PerspectiveCamera.from_intrinsics(batch["intrinsics"], batch["pose"])


class ReconstructionModel(nn.Module, ABC):
    """Base of the assembled models.

    Subclasses set ``self.config`` (the keyword arguments that rebuild them), define
    ``loss_weights`` and implement :meth:`field_for` (images -> a field callable over
    ``[B, N, 3]`` points) and :meth:`compute_losses` (batch -> unweighted terms).
    """

    config: dict
    loss_weights: dict[str, float]

    @abstractmethod
    def field_for(self, images: torch.Tensor, camera: Camera | None = None) -> Callable:
        """Images ``[B, 3, H, W]`` (and cameras) -> a field over points ``[B, N, 3]``."""

    @abstractmethod
    def compute_losses(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A training batch -> the unweighted loss terms."""

    def losses(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The model's loss terms (unweighted) and ``total``, their weighted sum with
        ``loss_weights`` (the paper's defaults unless overridden)."""
        terms = self.compute_losses(batch)
        total = sum(self.loss_weights.get(k, 0.0) * v for k, v in terms.items())
        return {**terms, "total": total}

    @torch.no_grad()
    def reconstruct(
        self,
        images: torch.Tensor,
        camera: Camera | None = None,
        resolution: int = 64,
        bounds=(-0.6, 0.6),
        method: str = "hierarchical",
    ) -> list[trimesh.Trimesh]:
        """Meshes (world frame) of the shapes in ``images`` ``[B, 3, H, W]`` by marching
        cubes of the predicted field; an empty mesh where it has no surface."""
        was_training = self.training
        self.eval()
        try:
            meshes = []
            for b in range(images.shape[0]):
                field = self.field_for(images[b : b + 1], None if camera is None else camera[b])
                meshes.append(
                    extract_mesh(
                        field, resolution, bounds, method=method, kind="sdf", device=images.device
                    )
                )
        finally:
            self.train(was_training)
        return meshes
