"""ShapeClipper (Huang, Jampani, Thai, Li, Stojanov, Rehg, CVPR 2023) assembled from
svrecon's parts: an image encoder to shape and texture codes, a symmetric
concatenation-conditioned SDF network with geometric initialisation, a texture
network, VolSDF volume rendering with rendered normals, a viewpoint estimator (three
(cos, sin) pairs and a scale), and semantic shape consistency with CLIP neighbours.
Trains from single images, masks and off-the-shelf normals, with no camera."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ..cameras import (
    Camera,
    PerspectiveCamera,
    gather_pixels,
    inverse_distance_weights,
    pose_from_angle_trig,
    sample_pixels_weighted,
)
from ..cameras.heads import EulerTrigHead
from ..checks import check_shape
from ..fields import PositionalEncoding, SDFNetwork, TextureNetwork
from ..losses import (
    angle_range_loss,
    boundary_distance_transform,
    flip_symmetry_loss,
    masked_mse_loss,
    normal_loss,
    soft_iou_loss,
    uniform_azimuth_loss,
)
from ..renderers import LaplaceDensity, RenderOutput, VolumeRenderer
from ..semantic import pick_neighbours
from .base import ReconstructionModel, image_encoder
from .registry import ModelSpec, register_model
from .sdf_srn import uniform_eikonal_loss

__all__ = ["SHAPECLIPPER_WEIGHTS", "ShapeClipper"]

#: ShapeClipper's loss weights (its Pix3D config): colour 1, mask 0.5, normal 0.01,
#: eikonal 0.03; semantic shape consistency colour 1, mask 0.5, normal 0.01; camera
#: priors: uniform azimuth 0.1, elevation and roll range 0.01, flip symmetry 0.1.
SHAPECLIPPER_WEIGHTS = {"rgb": 1.0, "mask": 0.5, "normal": 0.01, "eikonal": 0.03,
                        "ssc_rgb": 1.0, "ssc_mask": 0.5, "ssc_normal": 0.01,
                        "azimuth_prior": 0.1, "angle_range": 0.01, "flip": 0.1}  # fmt: skip


class ShapeClipper(ReconstructionModel):
    """``image -> (shape, texture) codes -> symmetric SDF + texture field``, rendered
    by volume rendering from the viewpoint the estimator reads off the image.

    Terms (:meth:`compute_losses`): on ``num_rays`` pixels per image drawn with
    probability ``1 / (D + 5)`` (``D``: the boundary distance transform), the colour
    (MSE over every ray, on white), ``mask`` (1 - soft IoU of the opacity), ``normal``
    (Eq. 4: the rendered normals against the off-the-shelf ones rotated into the
    canonical frame by the predicted pose, with outlier dropout), ``eikonal``; the
    semantic shape consistency (Eq. 5): the query's **shape** rendered with a
    neighbour's **texture code and predicted camera**, supervised by the neighbour's
    image, mask and normals (``ssc_*``; one neighbour per item, drawn with
    probability ``(1 - IoU(mask_q, mask_nn))^4``); the camera priors (``azimuth_prior``:
    1-D Wasserstein-p to a uniform azimuth; ``angle_range``: elevation and roll hinges;
    ``flip``: the estimator on the mirrored image predicts the mirrored viewpoint).

    Batches need ``image``, ``mask``, ``normals_estimated`` (camera frame) and, for the
    semantic terms, ``neighbour_image`` / ``neighbour_mask`` / ``neighbour_normals``
    ``[B, K, ...]`` (:class:`svrecon.semantic.WithNeighbours`); without them the
    ``ssc_*`` terms are 0.

    Args:
        encoder, estimator: ``"resnet34"`` / ``"resnet18"`` (the paper) or ``"conv"``.
        latent_dim, texture_dim: the encoder's codes (512 + 512), projected to
            ``projected_dim`` (64) before conditioning by concatenation.
        hidden_dim, num_layers, skip_layers: the SDF MLP (5 x 64, skips at 1 and 2);
            ``texture_dims`` the colour MLP (3 x 64). Positional encoding: 6 NeRF
            frequencies for both. The SDF is mirror symmetric in x and starts as a
            sphere of radius 0.5 (geometric initialisation).
        beta_init: the Laplace density's initial beta (0.1).
        num_rays, num_samples: pixels per image and samples per ray (512, 64).
        focal_fraction, camera_distance, size_range: the rig: focal ``focal_fraction
            * scale * W`` with the predicted ``scale`` in ``1 +- size_range``, the
            camera ``camera_distance`` from the origin (the code: 4, 5, 0.2).
        pose_preset: how the angles become a rotation (``"shapeclipper"``: its
            ``pred_pose``; see :mod:`svrecon.cameras.presets`).
        elevation_range, roll_range: the range hinges' limits (degrees; 5 degree margin).
        azimuth_p: the Wasserstein order of the azimuth prior (2 in the Pix3D config).
        bounding_radius: rays are clipped to this sphere; misses render empty.
        normal_beta, drop_fraction, normal_rank: Eq. 4's L1 weight (5), the dropped
            outlier fraction (0.2) and how outliers are ranked (``"loss"``, the paper;
            ``"angle"``, the code).
        renormalize_normals: normalise the composited normals (the code) or not (the
            paper).
        eikonal_points: uniform points per sample in ``[-1, 1]^3`` for the eikonal term
            (the code uses the render's sample points).
        loss_weights: overrides of :data:`SHAPECLIPPER_WEIGHTS`.
    """

    estimates_viewpoint = True

    def __init__(
        self,
        *,
        encoder: str = "resnet34",
        estimator: str = "resnet18",
        encoder_widths: Sequence[int] = (32, 64, 128, 256),
        estimator_widths: Sequence[int] = (32, 64, 128, 256),
        latent_dim: int = 512,
        texture_dim: int = 512,
        projected_dim: int = 64,
        hidden_dim: int = 64,
        num_layers: int = 5,
        skip_layers: tuple[int, ...] = (1, 2),
        texture_dims: Sequence[int] = (64, 64, 64),
        beta_init: float = 0.1,
        num_rays: int = 512,
        num_samples: int = 64,
        focal_fraction: float = 4.0,
        camera_distance: float = 5.0,
        size_range: float = 0.2,
        pose_preset: str = "shapeclipper",
        elevation_range: tuple[float, float] = (-90.0 + 1e-3, 90.0 - 1e-3),
        roll_range: tuple[float, float] = (-90.0 + 1e-3, 90.0 - 1e-3),
        azimuth_p: int = 2,
        bounding_radius: float = 1.0,
        normal_beta: float = 5.0,
        drop_fraction: float = 0.2,
        normal_rank: str = "loss",
        renormalize_normals: bool = False,
        eikonal_points: int = 1024,
        loss_weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        if not 0 <= size_range < 1:
            raise ValueError(f"size_range: expected in [0, 1), got {size_range}")
        if camera_distance <= bounding_radius:
            raise ValueError(
                f"camera_distance: expected beyond the bounding sphere ({bounding_radius}), "
                f"got {camera_distance}"
            )
        self.config = dict(
            encoder=encoder, estimator=estimator, encoder_widths=tuple(encoder_widths),
            estimator_widths=tuple(estimator_widths), latent_dim=latent_dim,
            texture_dim=texture_dim, projected_dim=projected_dim, hidden_dim=hidden_dim,
            num_layers=num_layers, skip_layers=tuple(skip_layers),
            texture_dims=tuple(texture_dims), beta_init=beta_init, num_rays=num_rays,
            num_samples=num_samples, focal_fraction=focal_fraction,
            camera_distance=camera_distance, size_range=size_range, pose_preset=pose_preset,
            elevation_range=tuple(elevation_range), roll_range=tuple(roll_range),
            azimuth_p=azimuth_p, bounding_radius=bounding_radius, normal_beta=normal_beta,
            drop_fraction=drop_fraction, normal_rank=normal_rank,
            renormalize_normals=renormalize_normals, eikonal_points=eikonal_points,
            loss_weights=dict(loss_weights or {}),
        )  # fmt: skip
        self.encoder = image_encoder(
            encoder, 3, {"shape": latent_dim, "texture": texture_dim}, encoder_widths
        )
        self.shape_projection = nn.Sequential(
            nn.Linear(latent_dim, latent_dim), nn.ReLU(), nn.Linear(latent_dim, projected_dim)
        )
        self.texture_projection = nn.Sequential(
            nn.Linear(texture_dim, texture_dim), nn.ReLU(), nn.Linear(texture_dim, projected_dim)
        )
        self.sdf = SDFNetwork(
            projected_dim, hidden_dim, num_layers, tuple(skip_layers), hidden_dim,
            PositionalEncoding(6, "nerf"), sphere_radius=0.5, symmetric=True,
        )  # fmt: skip
        self.texture = TextureNetwork(
            hidden_dim, projected_dim, texture_dims, PositionalEncoding(6, "nerf"), "sigmoid"
        )
        self.renderer = VolumeRenderer(
            LaplaceDensity(beta_init), num_samples, stratified=True, last_delta=0.0,
            background=1.0, renormalize_normals=renormalize_normals,
        )  # fmt: skip
        feature_dim = 512 if estimator == "resnet18" else estimator_widths[-1]
        self.estimator_backbone = image_encoder(
            estimator, 3, {"features": feature_dim}, estimator_widths
        )
        self.estimator_head = EulerTrigHead(feature_dim)
        self.scale_head = nn.Linear(feature_dim, 1)
        nn.init.zeros_(self.scale_head.weight)
        nn.init.zeros_(self.scale_head.bias)
        self.num_rays, self.focal_fraction = num_rays, focal_fraction
        self.camera_distance, self.size_range = camera_distance, size_range
        self.pose_preset, self.bounding_radius = pose_preset, bounding_radius
        self.elevation_range, self.roll_range = tuple(elevation_range), tuple(roll_range)
        self.azimuth_p = azimuth_p
        self.normal_beta, self.drop_fraction = normal_beta, drop_fraction
        self.normal_rank, self.eikonal_points = normal_rank, eikonal_points
        self.loss_weights = {**SHAPECLIPPER_WEIGHTS, **(loss_weights or {})}

    # -- the parts ---------------------------------------------------------------
    def codes(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``[B, 3, H, W]`` in ``[0, 1]`` -> projected ``(shape, texture)`` codes
        ``[B, projected_dim]`` each."""
        check_shape("images", images, ("B", 3, "H", "W"))
        out = self.encoder(images * 2 - 1)
        return self.shape_projection(out["shape"]), self.texture_projection(out["texture"])

    def textured_field(self, shape_code: torch.Tensor, texture_code: torch.Tensor):
        """The field of a shape code with a texture code: ``sdf``, ``features``, ``rgb``."""
        return self.texture.bind(self.sdf.bind(shape_code), texture_code)

    def field_for(self, images: torch.Tensor, camera: Camera | None = None):
        """The per-image SDF and colour field, canonical frame (no camera read)."""
        shape, texture = self.codes(images)
        return self.textured_field(shape, texture)

    def forward(self, images: torch.Tensor):
        return self.field_for(images)

    def estimate_viewpoint(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The estimator on ``images`` ``[B, 3, H, W]``: three ``(cos, sin)`` pairs
        ``[B, 6]`` (azimuth, elevation, roll) and the focal scale ``[B]`` in
        ``1 +- size_range``."""
        check_shape("images", images, ("B", 3, "H", "W"))
        features = self.estimator_backbone(images * 2 - 1)["features"]
        scale = 1 + self.size_range * torch.tanh(self.scale_head(features)[:, 0])
        return self.estimator_head(features), scale

    def camera_for(self, trig: torch.Tensor, scale: torch.Tensor, size: tuple[int, int]):
        """The rig's cameras ``[B]`` for viewpoints ``trig`` ``[B, 6]`` and focal
        scales ``[B]``, images ``size = (H, W)``."""
        h, w = size
        pose = pose_from_angle_trig(self.pose_preset, trig, self.camera_distance)
        f = self.focal_fraction * scale
        focal = torch.stack([f * w, f * h], -1)
        principal = torch.tensor([w / 2, h / 2], dtype=trig.dtype, device=trig.device)
        return PerspectiveCamera(focal, principal.expand(len(trig), 2), pose)

    def predict_rotation(
        self,
        images: torch.Tensor,
        camera: Camera | None = None,
        masks: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The estimated world-to-camera rotations ``[B, 3, 3]`` (from the image alone,
        as ShapeClipper's estimator; the camera is never read)."""
        trig, _ = self.estimate_viewpoint(images)
        return pose_from_angle_trig(self.pose_preset, trig, self.camera_distance)[:, :, :3]

    def _render_terms(self, field, images, masks, normals, trig, scale, prefix: str):
        """The colour, mask and normal terms of ``field`` seen through the estimated
        camera ``(trig, scale)`` against ``images`` / ``masks`` / camera-frame
        ``normals`` on ``num_rays`` pixels drawn by ``1 / (D + 5)``."""
        b, _, h, w = images.shape
        weights = inverse_distance_weights(boundary_distance_transform(masks))
        sample = sample_pixels_weighted(weights, min(self.num_rays, h * w))
        camera = self.camera_for(trig, scale, (h, w))
        rays, _ = camera.rays_at(sample.pixels).intersect_sphere(self.bounding_radius)
        out: RenderOutput = self.renderer(
            field, rays, normals=True, create_graph=True, stratified=self.training
        )
        target_rgb = gather_pixels(images, sample.indices)
        target_mask = gather_pixels(masks[:, None].to(images.dtype), sample.indices)[..., 0]
        target_normals = gather_pixels(normals, sample.indices)
        use = (target_mask > 0.5) & (out.opacity > 0.5)
        return {
            f"{prefix}rgb": masked_mse_loss(out.rgb, target_rgb, torch.ones_like(use)),
            f"{prefix}mask": soft_iou_loss(out.opacity, target_mask),
            # camera-frame normals into the canonical frame: R^T n
            f"{prefix}normal": normal_loss(
                out.normals, target_normals, use, rotation=camera.R.transpose(1, 2),
                beta=self.normal_beta, drop_fraction=self.drop_fraction,
                rank_by=self.normal_rank,
            ),
        }  # fmt: skip

    # -- training ----------------------------------------------------------------
    def compute_losses(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The terms of the class docstring from ``image``, ``mask``,
        ``normals_estimated`` and (optionally) the ``neighbour_*`` entries; no camera
        is read."""
        images, masks = batch["image"], batch["mask"].bool()
        if "normals_estimated" not in batch:
            raise ValueError("batch: ShapeClipper needs 'normals_estimated' [B, 3, H, W]")
        normals = batch["normals_estimated"]
        b = images.shape[0]
        shape_code, texture_code = self.codes(images)
        field = self.textured_field(shape_code, texture_code)
        trig, scale = self.estimate_viewpoint(images)
        terms = self._render_terms(field, images, masks, normals, trig, scale, "")
        terms["eikonal"] = uniform_eikonal_loss(field, b, self.eikonal_points, 1.0, like=images)

        # camera priors
        pairs = trig.unflatten(-1, (3, 2))
        terms["azimuth_prior"] = uniform_azimuth_loss(pairs[:, 0], p=self.azimuth_p)
        terms["angle_range"] = angle_range_loss(pairs[:, 1], *self.elevation_range) + (
            angle_range_loss(pairs[:, 2], *self.roll_range)
        )
        flipped, _ = self.estimate_viewpoint(images.flip(-1))
        terms["flip"] = flip_symmetry_loss(trig, flipped)

        # semantic shape consistency: the query's shape, the neighbour's texture and view
        if "neighbour_image" in batch:
            nn_images, nn_masks = batch["neighbour_image"], batch["neighbour_mask"].bool()
            check_shape("neighbour_image", nn_images, (b, "K", 3, *images.shape[-2:]))
            pick = pick_neighbours(masks, nn_masks)
            rows = torch.arange(b, device=images.device)
            nn_image, nn_mask = nn_images[rows, pick], nn_masks[rows, pick]
            nn_normals = batch["neighbour_normals"][rows, pick]
            _, nn_texture = self.codes(nn_image)
            nn_trig, nn_scale = self.estimate_viewpoint(nn_image)
            swapped = self.textured_field(shape_code, nn_texture)
            terms.update(self._render_terms(swapped, nn_image, nn_mask, nn_normals, nn_trig,
                                            nn_scale, "ssc_"))  # fmt: skip
        else:
            zero = shape_code.sum() * 0
            terms.update({"ssc_rgb": zero, "ssc_mask": zero, "ssc_normal": zero})
        return terms


register_model(
    ModelSpec(
        name="shapeclipper",
        cls=ShapeClipper,
        presets={
            # CPU-sized, for the procedural set (64 x 64, the NMR rig: distance 2.732,
            # focal fraction 1.866, NMR cameras have no roll and elevations in
            # [-10, 45]): conv encoder and estimator, codes 128 + 64, 192 rays of 24
            # samples (about 2.5 s a step at batch 8 on one core), a bounding sphere of
            # 0.6, 512 eikonal points.
            "cpu": {
                "encoder": "conv",
                "estimator": "conv",
                "estimator_widths": (16, 32, 64, 128),
                "latent_dim": 128,
                "texture_dim": 64,
                "num_rays": 192,
                "num_samples": 24,
                "focal_fraction": 1.8660254,
                "camera_distance": 2.732,
                "pose_preset": "nmr",
                "elevation_range": (-10.0, 45.0),
                "roll_range": (0.0, 0.0),
                "bounding_radius": 0.6,
                "eikonal_points": 512,
            },
            # Pix3D as the paper: the constructor's defaults.
            "paper": {},
            # as the authors' code: normals ranked by angle for the dropout, composited
            # normals renormalised.
            "code": {"normal_rank": "angle", "renormalize_normals": True},
        },
        protocol="shapeclipper",
        checkpoint="shapeclipper_procedural.pt",
        summary="ShapeClipper (Huang et al. 2023): single-view SDF with no camera, volume "
        "rendering, normals, CLIP-neighbour shape consistency, camera priors",
    )
)
