"""DISN (Xu et al., NeurIPS 2019) assembled from svrecon's parts: an image encoder with
a global feature and a feature pyramid, the two-stream SDF decoder with local features
sampled at each point's projection, the weighted SDF loss, and an optional camera
network trained with the point-cloud pose loss."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..cameras import Camera, PerspectiveCamera, Rotation6DHead
from ..encoders import ConvEncoder, VGG16FeaturePyramid, sample_features
from ..fields import DISNDecoder
from ..losses import camera_point_cloud_loss, disn_sdf_loss
from .base import ReconstructionModel, batch_camera
from .registry import ModelSpec, register_model

__all__ = ["DISN"]

#: DISN's loss weights: SDF 1 (Eq. 3, m1 = 4, m2 = 1, delta = 0.01), camera 1 (Eq. 2).
DISN_WEIGHTS = {"sdf": 1.0, "camera": 1.0}


class DISN(ReconstructionModel):
    """``image -> (global feature, feature maps) -> two-stream SDF decoder``.

    Args:
        encoder: ``"vgg16"`` (the paper) or ``"conv"`` (:class:`ConvEncoder`, CPU sized).
        camera: ``"gt"`` projects points with the batch's cameras (DISN's oracle-camera
            setting); ``"predicted"`` adds a camera network (6D rotation + translation,
            intrinsics from the batch) trained with Eq. 2, whose (detached) cameras
            project the points for the local features.
        global_dim, point_dims, head_dims: decoder widths (the paper: 1024,
            ``(64, 256, 512)``, ``(512, 256)``).
        num_points: SDF samples per shape per step (the paper: 2048).
        camera_distance: the camera network's initial translation along z.
        local_sampling: how local features are sampled
            (:func:`~svrecon.encoders.sample_features`): ``"resize"`` (the paper: every
            map resized to the image, then bilinear) or ``"normalized"``.
    """

    def __init__(
        self,
        encoder: str = "vgg16",
        camera: str = "gt",
        global_dim: int = 1024,
        point_dims: tuple[int, ...] = (64, 256, 512),
        head_dims: tuple[int, ...] = (512, 256),
        num_points: int = 2048,
        camera_distance: float = 2.732,
        local_sampling: str = "resize",
        loss_weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.config = dict(
            encoder=encoder, camera=camera, global_dim=global_dim, point_dims=tuple(point_dims),
            head_dims=tuple(head_dims), num_points=num_points, camera_distance=camera_distance,
            local_sampling=local_sampling, loss_weights=dict(loss_weights or {}),
        )  # fmt: skip
        if local_sampling not in ("resize", "normalized"):
            raise ValueError(
                f"local_sampling: expected 'resize' or 'normalized', got {local_sampling!r}"
            )
        self.local_sampling = local_sampling
        if camera not in ("gt", "predicted"):
            raise ValueError(f"camera: expected 'gt' or 'predicted', got {camera!r}")
        if encoder == "vgg16":
            self.encoder = VGG16FeaturePyramid(global_dim)
            local_dim, pooled_dim = 1472, global_dim
        elif encoder == "conv":
            self.encoder = ConvEncoder(3, latent_dims={"global": global_dim})
            local_dim, pooled_dim = sum(self.encoder.widths), self.encoder.widths[-1]
        else:
            raise ValueError(f"encoder: expected 'vgg16' or 'conv', got {encoder!r}")
        self.decoder = DISNDecoder(global_dim, local_dim, point_dims, head_dims)
        self.camera_mode = camera
        self.camera_head = (
            Rotation6DHead(pooled_dim, initial_translation=(0.0, 0.0, camera_distance))
            if camera == "predicted"
            else None
        )
        self.num_points = num_points
        self.loss_weights = {**DISN_WEIGHTS, **(loss_weights or {})}

    def _encode(self, images: torch.Tensor):
        x = images * 2 - 1
        if isinstance(self.encoder, ConvEncoder):
            maps, pooled = self.encoder.feature_maps(x)
            return self.encoder.codes(pooled)["global"], maps, pooled
        global_feature, maps = self.encoder(x)
        return global_feature, maps, global_feature

    def predict_camera(self, pooled: torch.Tensor, intrinsics: Camera) -> PerspectiveCamera:
        pose, _ = self.camera_head(pooled)
        return PerspectiveCamera(intrinsics.focal, intrinsics.principal_point, pose)

    def field_for(self, images: torch.Tensor, camera: Camera | None = None):
        """The per-image SDF field. ``camera`` gives the intrinsics (and, with
        ``camera="gt"``, the pose) used to project points for the local features."""
        if camera is None:
            raise ValueError(
                "camera: DISN needs the camera (intrinsics at least) to project points"
            )
        global_feature, maps, pooled = self._encode(images)
        if self.camera_head is not None:
            camera = self.predict_camera(pooled, camera)
        size = tuple(images.shape[-2:])
        return self.decoder.bind(
            global_feature,
            lambda points: sample_features(maps, points, camera, size, self.local_sampling),
        )

    def forward(self, images: torch.Tensor, camera: Camera):
        return self.field_for(images, camera)

    def compute_losses(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Terms ``sdf`` (Eq. 3 on ``sdf_points``/``sdf_values``) and, with a camera
        network, ``camera`` (Eq. 2 on ``surface_points``)."""
        images = batch["image"]
        gt_camera = batch_camera(batch)
        global_feature, maps, pooled = self._encode(images)
        terms = {}
        camera = gt_camera
        if self.camera_head is not None:
            predicted = self.predict_camera(pooled, gt_camera)
            terms["camera"] = camera_point_cloud_loss(
                batch["surface_points"], predicted.pose, gt_camera.pose
            )
            camera = PerspectiveCamera(
                gt_camera.focal, gt_camera.principal_point, predicted.pose.detach()
            )
        points, values = batch["sdf_points"], batch["sdf_values"]
        if points.shape[1] > self.num_points:
            pick = torch.randperm(points.shape[1], device=points.device)[: self.num_points]
            points, values = points[:, pick], values[:, pick]
        local = sample_features(maps, points, camera, tuple(images.shape[-2:]),
                                self.local_sampling)  # fmt: skip
        out = self.decoder(points, global_feature, local)
        terms["sdf"] = disn_sdf_loss(out.sdf * self.decoder.sdf_scale, values)
        return terms


register_model(
    ModelSpec(
        name="disn",
        cls=DISN,
        presets={
            # CPU-sized: a small conv encoder and narrower decoder streams; what the
            # shipped checkpoint was trained with (docs/procedural.md).
            "cpu": {
                "encoder": "conv",
                "camera": "gt",
                "global_dim": 256,
                "point_dims": (64, 128),
                "head_dims": (128, 64),
                "num_points": 1024,
                # The shipped checkpoint samples local features without resizing the
                # maps (the paper resizes them: the constructor's default).
                "local_sampling": "normalized",
            },
            "paper": {},
        },
        protocol="disn",
        checkpoint="disn_procedural.pt",
        summary="DISN (Xu et al. 2019): SDF from global and local image features, 3D-supervised",
    )
)
