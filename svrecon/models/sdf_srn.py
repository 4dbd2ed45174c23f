"""SDF-SRN (Lin et al., NeurIPS 2020) assembled from svrecon's parts: an image encoder,
a hypernetwork SDF field, the LSTM ray marcher, and the silhouette, ray, colour and
eikonal losses. Trains from single views with known cameras and masks."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..cameras import Camera, gather_pixels, sample_pixels_uniform
from ..encoders import ConvEncoder, ResNetEncoder
from ..fields import FieldOutput, HyperSDFField, sdf_gradient
from ..losses import (
    distance_transform,
    eikonal_loss,
    importance_weights,
    masked_mse_loss,
    ray_free_space_loss,
    ray_intersection_loss,
    silhouette_lower_bound,
    silhouette_sdf_loss,
    sphere_sdf_loss,
)
from ..renderers import RenderOutput, SRNRayMarcher
from .base import ReconstructionModel, batch_camera
from .registry import ModelSpec, register_model

__all__ = [
    "SDFSRN",
    "march_from",
    "sdf_srn_terms",
    "silhouette_distance",
    "sphere_pretraining_loss",
    "uniform_eikonal_loss",
    "uniform_points",
]


def silhouette_distance(masks: torch.Tensor) -> torch.Tensor:
    """:func:`distance_transform` of the masks ``[B, H, W]``; for an empty mask (all
    distances infinite) the distance of each pixel to the first pixel centre outside
    the image instead, a valid bound when the shape lies outside the view."""
    dist = distance_transform(masks)
    _, h, w = masks.shape
    rows = torch.arange(h, device=masks.device, dtype=dist.dtype)[:, None]
    cols = torch.arange(w, device=masks.device, dtype=dist.dtype)[None, :]
    border = torch.minimum(torch.minimum(rows + 1, h - rows), torch.minimum(cols + 1, w - cols))
    return torch.where(torch.isinf(dist), border, dist)


#: SDF-SRN's loss weights (ShapeNet): colour 1, silhouette 3, ray intersection 1,
#: free space 0.1, eikonal 0.01.
SDF_SRN_WEIGHTS = {"rgb": 1.0, "silhouette": 3.0, "intersection": 1.0, "free_space": 0.1,
                   "eikonal": 0.01}  # fmt: skip


class SDFSRN(ReconstructionModel):
    """``image -> latent -> hypernetwork SDF field``, trained through the SRN marcher.

    Args:
        encoder: ``"resnet18"`` (the paper), ``"conv"`` (:class:`ConvEncoder`, CPU
            sized) or a module mapping images to ``{"shape": [B, latent_dim]}``.
        latent_dim: the shape code's size (the paper: 512 ShapeNet, 256 Pascal3D+).
        trunk_dims, hidden_dims: the generated MLP's widths and the hyper-MLPs' widths
            (the paper and both authors' configs: ``(128,) * 4`` and ``(512,) * 5``).
        num_rays: pixels sampled per image per step (the paper: 1024).
        silhouette_samples: depths sampled on each background ray for Eq. 4 (5).
        silhouette_depths: ``(near, far)`` camera z-depths between which Eq. 4's depths
            are drawn uniformly (the code: ``(2, 3.5)`` for the NMR camera at 2.732);
            ``None``: uniform along the ray inside the bounding sphere.
        start_depth: the z-depth where the marcher starts (2.0 ShapeNet, 1.2 Pascal3D+);
            ``None``: where the ray enters the bounding sphere.
        bounding_radius: rays are clipped to this sphere (misses have no silhouette
            samples and no marched surface).
        eikonal_points: uniform points per sample for the eikonal term (the code:
            10 000), in ``[-eikonal_range, eikonal_range]^3`` (``sdf_range``: 1).
        rgb_rays: ``"all"`` (Eq. 8: every sampled ray, background rays toward the
            white background) or ``"foreground"`` (the mask's rays only, what svrecon
            did before 0.1; kept to reproduce the first shipped checkpoint).
        loss_weights: overrides of :data:`SDF_SRN_WEIGHTS`.

    An image with an empty mask has no distance transform (every distance is
    infinite); its silhouette bound then uses the distance to the image's border (the
    shape, if any, lies outside the image), so the item contributes finite terms and
    the rest of the batch trains as usual. A full mask has no background rays; Eq. 4
    and the background half of the ray loss are then zero for it.
    """

    def __init__(
        self,
        encoder: str = "resnet18",
        latent_dim: int = 512,
        trunk_dims: tuple[int, ...] = (128, 128, 128, 128),
        hidden_dims: tuple[int, ...] = (512, 512, 512, 512, 512),
        num_rays: int = 1024,
        silhouette_samples: int = 5,
        silhouette_depths: tuple[float, float] | None = (2.0, 3.5),
        start_depth: float | None = 2.0,
        bounding_radius: float = 0.6,
        eikonal_points: int = 10_000,
        eikonal_range: float = 1.0,
        rgb_rays: str = "all",
        loss_weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        if rgb_rays not in ("all", "foreground"):
            raise ValueError(f"rgb_rays: expected 'all' or 'foreground', got {rgb_rays!r}")
        if silhouette_depths is not None and not 0 < silhouette_depths[0] < silhouette_depths[1]:
            raise ValueError(f"silhouette_depths: expected 0 < near < far, got {silhouette_depths}")
        self.config = dict(
            encoder=encoder, latent_dim=latent_dim, trunk_dims=tuple(trunk_dims),
            hidden_dims=tuple(hidden_dims), num_rays=num_rays,
            silhouette_samples=silhouette_samples,
            silhouette_depths=None if silhouette_depths is None else tuple(silhouette_depths),
            start_depth=start_depth, bounding_radius=bounding_radius,
            eikonal_points=eikonal_points, eikonal_range=eikonal_range, rgb_rays=rgb_rays,
            loss_weights=dict(loss_weights or {}),
        )  # fmt: skip
        self.silhouette_depths, self.start_depth = silhouette_depths, start_depth
        self.eikonal_points, self.rgb_rays = eikonal_points, rgb_rays
        codes = {"shape": latent_dim}
        if encoder == "resnet18":
            self.encoder = ResNetEncoder("resnet18", codes)
        elif encoder == "conv":
            self.encoder = ConvEncoder(3, latent_dims=codes)
        else:
            raise ValueError(f"encoder: expected 'resnet18' or 'conv', got {encoder!r}")
        self.field = HyperSDFField(latent_dim, trunk_dims=trunk_dims, hidden_dims=hidden_dims)
        self.marcher = SRNRayMarcher(trunk_dims[-1])
        self.num_rays, self.silhouette_samples = num_rays, silhouette_samples
        self.bounding_radius, self.eikonal_range = bounding_radius, eikonal_range
        self.loss_weights = {**SDF_SRN_WEIGHTS, **(loss_weights or {})}

    def field_for(self, images: torch.Tensor, camera: Camera | None = None):
        """The per-image SDF field (``points [B, N, 3] -> FieldOutput``); images in
        ``[0, 1]`` (mapped to the paper's ``[-1, 1]`` inside)."""
        return self.field(self.encoder(images * 2 - 1)["shape"])

    def forward(self, images: torch.Tensor):
        return self.field_for(images)

    def pretraining_loss(
        self, batch: Mapping[str, torch.Tensor], radius: float = 0.5
    ) -> torch.Tensor:
        """Sphere pretraining: every image's field fits ``|x| - radius`` on
        ``[-eikonal_range, eikonal_range]^3`` (SDF-SRN), and the marcher learns to stop
        on that sphere.

        The SDF-SRN code pretrains the field alone. Here the marcher also runs on the
        exact sphere SDF, reading the field's (detached) features, with the
        ray-intersection and free-space terms (rays that hit the sphere as
        foreground); only the marcher learns from them. Without this, the untrained
        LSTM overshoots, and the intersection term grows the surface wherever it
        stopped instead of where the rays first meet the shape.
        """
        images = batch["image"]
        b, _, h, w = images.shape
        field = self.field_for(images)
        points = uniform_points(b, 1024, self.eikonal_range, like=images)
        sample = sample_pixels_uniform(
            b, h, w, min(self.num_rays, h * w), device=images.device, dtype=images.dtype
        )
        rays = batch_camera(batch).rays_at(sample.pixels)
        return sphere_pretraining_loss(field, self._march, rays, points, radius=radius,
                                       bounding_radius=self.bounding_radius)  # fmt: skip

    def _march(self, field, rays):
        return march_from(self.marcher, field, rays, self.start_depth)

    def compute_losses(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Terms ``rgb``, ``silhouette``, ``intersection``, ``free_space``, ``eikonal``
        from ``image`` ``[B, 3, H, W]``, ``mask`` ``[B, H, W]`` and the camera."""
        images, masks = batch["image"], batch["mask"].bool()
        camera = batch_camera(batch)
        field = self.field_for(images)
        b, _, h, w = images.shape
        sample = sample_pixels_uniform(
            b, h, w, min(self.num_rays, h * w), device=images.device, dtype=images.dtype
        )
        terms, _ = sdf_srn_terms(
            field, self._march, camera, sample.pixels,
            rgb=gather_pixels(images, sample.indices),
            mask=gather_pixels(masks[:, None].to(images.dtype), sample.indices)[..., 0] > 0.5,
            distance=gather_pixels(silhouette_distance(masks)[:, None], sample.indices)[..., 0],
            silhouette_samples=self.silhouette_samples,
            silhouette_depths=self.silhouette_depths,
            bounding_radius=self.bounding_radius,
            rgb_rays=self.rgb_rays,
        )  # fmt: skip
        terms["eikonal"] = uniform_eikonal_loss(field, b, self.eikonal_points, self.eikonal_range,
                                                like=images)  # fmt: skip
        return terms


def sdf_srn_terms(
    field,
    march,
    camera: Camera,
    pixels: torch.Tensor,
    *,
    rgb: torch.Tensor,
    mask: torch.Tensor,
    distance: torch.Tensor,
    silhouette_samples: int = 5,
    silhouette_depths: tuple[float, float] | None = (2.0, 3.5),
    bounding_radius: float = 0.6,
    rgb_rays: str = "all",
) -> tuple[dict[str, torch.Tensor], RenderOutput]:
    """SDF-SRN's image terms on the rays through ``pixels`` (shared with Cat3D, which
    forks them): ``silhouette`` (Eq. 4), ``intersection`` and ``free_space`` (Eq. 7)
    and ``rgb`` (Eq. 8), and the marcher's :class:`RenderOutput`.

    Args:
        field: ``points [B, N, 3] -> FieldOutput`` with ``sdf``, ``features``, ``rgb``.
        march: ``(field, rays) -> RenderOutput`` (the SRN marcher and its start depth).
        camera: ``[B]`` cameras; ``pixels`` ``[B, R, 2]`` pixel centres.
        rgb: ``[B, R, 3]`` the image at the pixels; ``mask`` ``[B, R]`` bool;
            ``distance`` ``[B, R]`` :func:`silhouette_distance` at the pixels.
        silhouette_samples, silhouette_depths: Eq. 4's ``M`` depths per background
            ray, uniform in camera z-depth between ``silhouette_depths`` (``None``:
            uniform along the ray inside the bounding sphere).
        bounding_radius: rays are clipped to this sphere.
        rgb_rays: ``"all"`` (Eq. 8) or ``"foreground"``.
    """
    rays, _ = camera.rays_at(pixels).intersect_sphere(bounding_radius)
    weight = importance_weights(distance)

    # Eq. 4: the SDF at random depths on background rays stays above the bound.
    u = torch.rand(*rays.near.shape, silhouette_samples, device=rgb.device, dtype=rgb.dtype)
    if silhouette_depths is None:
        t = rays.near[..., None] + (rays.far - rays.near)[..., None] * u
    else:
        near, far = silhouette_depths
        t = rays.depth_to_distance(near + (far - near) * u)
    points = rays.origins[:, :, None] + t[..., None] * rays.directions[:, :, None]
    sdf = field(points.reshape(len(camera), -1, 3)).sdf.reshape(t.shape)
    bound = silhouette_lower_bound(camera, pixels, distance, rays.distance_to_depth(t))
    silhouette = silhouette_sdf_loss(sdf, bound, ~mask, weight)

    # Eq. 7 and the colour loss (Eq. 8), through the LSTM marcher.
    out = march(field, rays)
    colour_rays = torch.ones_like(mask) if rgb_rays == "all" else mask
    terms = {
        "rgb": masked_mse_loss(out.rgb, rgb, colour_rays),
        "silhouette": silhouette,
        "intersection": ray_intersection_loss(out.marched_values, mask, weight),
        "free_space": ray_free_space_loss(out.marched_values),
    }
    return terms, out


def march_from(marcher, field, rays, start_depth: float | None) -> RenderOutput:
    """``marcher(field, rays)`` from camera z-depth ``start_depth`` (SDF-SRN: 2.0
    ShapeNet, 1.2 Pascal3D+), or, for ``None``, from where each ray enters the
    bounding sphere it was clipped to (``rays.near``)."""
    if start_depth is None:
        return marcher(field, rays, initial_depth=rays.distance_to_depth(rays.near))
    return marcher(field, rays, initial_depth=torch.full_like(rays.near, start_depth))


def uniform_points(batch_size: int, num_points: int, extent: float, *, like) -> torch.Tensor:
    """``[batch_size, num_points, 3]`` points uniform in ``[-extent, extent]^3``, on the
    device and in the dtype of ``like``."""
    u = torch.rand(batch_size, num_points, 3, device=like.device, dtype=like.dtype)
    return (u * 2 - 1) * extent


def sphere_pretraining_loss(
    field,
    march,
    rays,
    points: torch.Tensor,
    *,
    radius: float = 0.5,
    bounding_radius: float = 0.6,
) -> torch.Tensor:
    """SDF-SRN's sphere pretraining: the field fits ``|x| - radius`` at ``points``
    ``[B, N, 3]`` (SDF-SRN: uniform in ``[-1, 1]^3``), and the marcher, run by
    ``march(field, rays)`` on the exact sphere SDF with the field's (detached)
    features, learns to stop on it (ray-intersection and free-space terms, rays that
    hit the sphere as foreground); only the marcher learns from the second part.
    ``rays`` ``[B, R]`` are clipped to ``bounding_radius`` first."""
    fit = sphere_sdf_loss(field(points).sdf, points, radius)

    def sphere(x: torch.Tensor) -> FieldOutput:
        with torch.no_grad():
            features = field(x).features
        return FieldOutput(sdf=x.norm(dim=-1) - radius, features=features)

    rays, _ = rays.intersect_sphere(bounding_radius)
    _, hit = rays.intersect_sphere(radius)
    marched = march(sphere, rays).marched_values
    return fit + ray_intersection_loss(marched, hit) + ray_free_space_loss(marched)


def uniform_eikonal_loss(field, batch_size: int, num_points: int, extent: float, *, like):
    """Eikonal term (``(|grad f| - 1)^2``) at ``num_points`` uniform points per sample in
    ``[-extent, extent]^3`` (SDF-SRN and Cat3D: 10 000 in ``[-1, 1]^3``); ``like``
    gives the device and dtype."""
    points = uniform_points(batch_size, num_points, extent, like=like)
    _, grad = sdf_gradient(field, points, create_graph=True)
    return eikonal_loss(grad)


register_model(
    ModelSpec(
        name="sdf_srn",
        cls=SDFSRN,
        presets={
            # CPU-sized: a small conv encoder and a narrower generated MLP; what the
            # shipped checkpoint was trained with (docs/procedural.md).
            # It samples Eq. 4 inside the bounding sphere, starts marching where rays
            # enter it and draws 512 eikonal points (the paper: z in [2, 3.5], start
            # 2.0, 10 000 points).
            "cpu": {
                "encoder": "conv",
                "latent_dim": 256,
                "trunk_dims": (64, 64, 64),
                "hidden_dims": (64,),
                "num_rays": 512,
                "silhouette_depths": None,
                "start_depth": None,
                "eikonal_points": 512,
            },
            # ShapeNet (NMR renders): the constructor's defaults.
            "paper": {},
            "paper_airplane": {"loss_weights": {"silhouette": 1.0}},
            # Pascal3D+ (orthographic cameras come with the data): latent 256, start
            # depth 1.2, lambda_RGB 10, lambda_eikonal 1.
            "paper_pascal3d": {
                "latent_dim": 256,
                "start_depth": 1.2,
                "loss_weights": {"rgb": 10.0, "eikonal": 1.0},
            },
        },
        protocol="sdf_srn",
        checkpoint="sdf_srn_procedural.pt",
        pretraining="sphere: every image's field fits |x| - 0.5 and the marcher learns to "
        "stop on that sphere",
        summary="SDF-SRN (Lin et al. 2020): single-view SDF from images, masks and cameras",
    )
)
