"""What every assembled model declares: the engine (trainer, evaluator, CLI, demo)
calls nothing else."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from ..cameras import Camera, PerspectiveCamera
from ..data.schema import check_batch
from ..fields import Field
from ..mesh import extract_mesh

if TYPE_CHECKING:
    import trimesh

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

    Subclasses set ``self.config`` (the keyword arguments that rebuild them) and
    ``self.loss_weights``, the class attributes :attr:`surface_kind` and
    :attr:`surface_level`, and implement :meth:`field_for` and :meth:`compute_losses`.
    Optional: :meth:`pretraining_loss` (a pretraining stage run before training) and
    :meth:`predict_rotation` (a model that estimates the viewpoint).

    Batches follow the item schema of ``docs/data.md`` (collated: ``image``
    ``[B, 3, H, W]`` in ``[0, 1]``, ``mask`` ``[B, H, W]``, ``intrinsics``, ``pose``,
    ``label``, ...).
    """

    #: What the model's fields return: ``"sdf"`` or ``"occupancy"``.
    surface_kind: ClassVar[str] = "sdf"
    #: The surface's iso-level (0 for an SDF; ``tau`` for an occupancy).
    surface_level: ClassVar[float] = 0.0

    config: dict
    loss_weights: dict[str, float]

    @abstractmethod
    def field_for(self, images: torch.Tensor, camera: Camera | None = None) -> Field:
        """Images ``[B, 3, H, W]`` (and their cameras ``[B]``, for models that need
        them) -> the field ``points [B, N, 3] -> FieldOutput`` of their shapes."""

    @abstractmethod
    def compute_losses(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A training batch -> the unweighted loss terms (scalars)."""

    def losses(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The model's loss terms (unweighted) and ``total``, their weighted sum with
        ``loss_weights`` (the paper's defaults unless overridden). The batch is checked
        first (:func:`svrecon.data.check_batch`: shapes agree across keys, images in
        ``[0, 1]``)."""
        check_batch(batch)
        terms = self.compute_losses(batch)
        total = sum(self.loss_weights.get(k, 0.0) * v for k, v in terms.items())
        return {**terms, "total": total}

    def pretraining_loss(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The loss of the optional pretraining stage (e.g. SDF-SRN's sphere fit).
        Models without one keep this default, which refuses."""
        raise TypeError(f"{type(self).__name__} has no pretraining stage")

    @classmethod
    def has_pretraining(cls) -> bool:
        """Whether the class defines :meth:`pretraining_loss`."""
        return cls.pretraining_loss is not ReconstructionModel.pretraining_loss

    def predict_rotation(
        self, images: torch.Tensor, camera: Camera | None = None
    ) -> torch.Tensor | None:
        """The world-to-camera rotations ``[B, 3, 3]`` the model sees ``images`` from,
        for view-centric evaluation. Models that take the camera as given return its
        rotation (``None`` without one); models that estimate the viewpoint override
        this."""
        return None if camera is None else camera.R

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
        cubes of the predicted field at :attr:`surface_level`; an empty mesh where it
        has no surface."""
        was_training = self.training
        self.eval()
        try:
            meshes = []
            for b in range(images.shape[0]):
                field = self.field_for(images[b : b + 1], None if camera is None else camera[b])
                meshes.append(
                    extract_mesh(
                        field,
                        resolution,
                        bounds,
                        level=self.surface_level,
                        method=method,
                        kind=self.surface_kind,
                        device=images.device,
                        dtype=images.dtype,
                    )  # fmt: skip
                )
        finally:
            self.train(was_training)
        return meshes
