"""What every assembled model declares: the engine (trainer, evaluator, CLI, demo)
calls nothing else."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from ..cameras import Camera, PerspectiveCamera
from ..data.schema import check_batch, check_images
from ..fields import Field
from ..mesh import extract_mesh

if TYPE_CHECKING:
    import trimesh

__all__ = ["ReconstructionModel", "batch_camera", "image_encoder", "rotate_mesh"]


def image_encoder(kind: str, in_channels: int, codes: dict[str, int], widths=(32, 64, 128, 256)):
    """An image encoder to named codes: ``"resnet18"`` / ``"resnet34"``
    (:class:`~svrecon.encoders.ResNetEncoder`, the papers') or ``"conv"``
    (:class:`~svrecon.encoders.ConvEncoder` with stage ``widths``, CPU sized)."""
    from ..encoders import ConvEncoder, ResNetEncoder

    if kind in ("resnet18", "resnet34"):
        return ResNetEncoder(kind, codes, in_channels=in_channels)
    if kind == "conv":
        return ConvEncoder(in_channels, widths=widths, latent_dims=codes)
    raise ValueError(f"encoder: expected 'resnet18', 'resnet34' or 'conv', got {kind!r}")


def rotate_mesh(mesh: trimesh.Trimesh, rotation: torch.Tensor) -> trimesh.Trimesh:
    """A copy of ``mesh`` with its vertices rotated by ``rotation`` ``[3, 3]``
    (``x -> R x``)."""
    out = mesh.copy()
    if len(out.vertices):
        out.vertices = out.vertices @ rotation.detach().double().cpu().numpy().T
    return out


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
    Optional: :meth:`pretraining_loss` (a pretraining stage run before training),
    :meth:`predict_rotation` (a model that estimates the viewpoint), and for an
    adversarial model :meth:`optimizer_groups` with a ``"discriminator"`` group and
    :meth:`discriminator_losses` (the engine then alternates a generator step on
    :meth:`losses` and a discriminator step, each with its own optimizer).

    Batches follow the item schema of ``docs/data.md`` (collated: ``image``
    ``[B, 3, H, W]`` in ``[0, 1]``, ``mask`` ``[B, H, W]``, ``intrinsics``, ``pose``,
    ``label``, ...).
    """

    #: What the model's fields return: ``"sdf"`` or ``"occupancy"``.
    surface_kind: ClassVar[str] = "sdf"
    #: The surface's iso-level (0 for an SDF; ``tau`` for an occupancy).
    surface_level: ClassVar[float] = 0.0
    #: Whether the model estimates the viewpoint (Cat3D): its fields live in a frame
    #: of its own, compared with the truth in view-centric frames.
    estimates_viewpoint: ClassVar[bool] = False
    #: The named training stages of a model trained in several (MSU: ``decoders``,
    #: ``image_encoder``, ``finetune``), in order; empty for a one-stage model. The
    #: engine runs one stage per run (``TrainConfig.stage``), starting from the
    #: previous stage's weights (``TrainConfig.init_from``); what a stage trains and
    #: reads is the model's (:meth:`set_stage`, :meth:`stage_dataset`,
    #: :meth:`optimizer_groups`, :meth:`compute_losses`).
    stages: ClassVar[tuple[str, ...]] = ()
    #: The stage being trained (``None`` for a one-stage model).
    stage: str | None = None

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

    @classmethod
    def check_stage(cls, stage: str | None) -> None:
        """Refuse a ``stage`` the class does not train: a one-stage model takes
        ``None``; a staged model one of :attr:`stages`."""
        if not cls.stages:
            if stage is not None:
                raise ValueError(f"stage: {cls.__name__} trains in one stage, got {stage!r}")
        elif stage not in cls.stages:
            raise ValueError(
                f"stage: {cls.__name__} trains in stages {list(cls.stages)}; name one, "
                f"got {stage!r}"
            )

    def set_stage(self, stage: str | None) -> None:
        """Train stage ``stage`` from now on (:meth:`check_stage`). The stage changes
        what trains and which losses are computed, never what the model predicts."""
        self.check_stage(stage)
        self.stage = stage

    def stage_dataset(self, dataset, **options):
        """The dataset the current stage trains on, built from ``dataset`` (items of
        ``docs/data.md``) with the stage's ``options`` (e.g. MSU's voxel resolution).
        Default: ``dataset`` itself, and no options."""
        if options:
            raise ValueError(
                f"stage_options: {type(self).__name__} takes none, got {sorted(options)}"
            )
        return dataset

    def pretraining_loss(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The loss of the optional pretraining stage (e.g. SDF-SRN's sphere fit).
        Models without one keep this default, which refuses."""
        raise TypeError(f"{type(self).__name__} has no pretraining stage")

    @classmethod
    def has_pretraining(cls) -> bool:
        """Whether the class defines :meth:`pretraining_loss`."""
        return cls.pretraining_loss is not ReconstructionModel.pretraining_loss

    def optimizer_groups(self) -> dict[str, dict]:
        """The optimizers the engine builds, by name: keyword arguments of
        :class:`torch.optim.Adam` (``params``, and ``betas`` or ``lr`` where the paper
        fixes them; the run's settings fill in the rest) plus optional ``clip_norm``
        (gradient-norm clipping of that group) and ``clip_after`` (clip only after this
        many steps). Default: one group ``"model"`` with every parameter. An
        adversarial model returns ``"model"`` (the generator: everything but the
        discriminator) and ``"discriminator"``."""
        return {"model": {"params": list(self.parameters())}}

    def discriminator_losses(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The discriminator step's loss terms and ``total`` (adversarial models only;
        the default refuses)."""
        raise TypeError(f"{type(self).__name__} has no discriminator")

    @classmethod
    def has_discriminator(cls) -> bool:
        """Whether the class defines :meth:`discriminator_losses`."""
        return cls.discriminator_losses is not ReconstructionModel.discriminator_losses

    def predict_rotation(
        self,
        images: torch.Tensor,
        camera: Camera | None = None,
        masks: torch.Tensor | None = None,
    ) -> torch.Tensor | None:
        """The world-to-camera rotations ``[B, 3, 3]`` the model sees ``images`` from,
        for view-centric evaluation. Models that take the camera as given return its
        rotation (``None`` without one); models that estimate the viewpoint override
        this (and may read the ``masks`` ``[B, H, W]``, never the camera)."""
        return None if camera is None else camera.R

    def canonical_to_world(
        self, images: torch.Tensor, camera: Camera, masks: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """For a model that estimates the viewpoint, the rotations ``[B, 3, 3]``
        ``R_camera^T R_estimated`` that take its canonical frame to the world frame of
        ``camera`` (``[B]``): rotated so, the shape is seen from ``camera`` as the model
        sees it from its estimate (the view-centric alignment). ``None`` for models
        that take the camera as given."""
        if not self.estimates_viewpoint:
            return None
        return camera.R.transpose(1, 2) @ self.predict_rotation(images, None, masks)

    @property
    def num_part_labels(self) -> int | None:
        """How many part labels :meth:`segment` gives (MSU: its branches); ``None`` for
        a model that does not segment its shapes."""
        return None

    def segment(self, images: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """Part labels ``[B, N]`` (int64 in ``[0, num_part_labels)``) of points
        ``[B, N, 3]`` in the field's frame, on the shapes of ``images``
        ``[B, 3, H, W]``; only models with :attr:`num_part_labels` segment."""
        raise TypeError(f"{type(self).__name__} does not segment its shapes into parts")

    @torch.no_grad()
    def reconstruct(
        self,
        images: torch.Tensor,
        camera: Camera | None = None,
        resolution: int = 64,
        bounds=(-0.6, 0.6),
        method: str = "hierarchical",
        masks: torch.Tensor | None = None,
    ) -> list[trimesh.Trimesh]:
        """Meshes (world frame) of the shapes in ``images`` ``[B, 3, H, W]`` by marching
        cubes of the predicted field at :attr:`surface_level`; an empty mesh where it
        has no surface. A model that estimates the viewpoint (which reads ``masks``
        ``[B, H, W]``) returns its canonical-frame meshes, rotated into ``camera``'s
        world frame when a camera is given (:meth:`canonical_to_world`). ``images``
        must be finite floats in ``[0, 1]`` (:func:`svrecon.data.check_images`)."""
        check_images(images, "images")
        was_training = self.training
        self.eval()
        try:
            rotations = None
            if camera is not None:
                rotations = self.canonical_to_world(images, camera, masks)
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
                if rotations is not None:
                    meshes[-1] = rotate_mesh(meshes[-1], rotations[b])
        finally:
            self.train(was_training)
        return meshes
