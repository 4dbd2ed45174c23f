"""The MSU joint occupancy model ("Fully Understanding Generic Objects", Liu, Tran,
Liu, TPAMI) assembled from svrecon's parts: an image encoder to category, shape and
albedo codes, a 12-value projection matrix and 27 SH lighting values; a category-adaptive
joint occupancy field whose branches segment the shape into parts; linear-binary
surface search on the occupancy, normals from its gradient and Lambertian SH shading.

It trains in three stages (Sec. 3.5), each one run of the engine
(``TrainConfig(stage=..., init_from=<the previous stage's checkpoint>)``):

1. ``decoders`` (Eq. 8): a 3D CNN ``E'`` auto-encodes coloured voxels of the CAD
   shapes into the three codes, the decoders reconstruct occupancy and albedo at
   voxel centres, a classifier reads the category code; coarse to fine by running the
   stage once per resolution (``stage_options={"resolution": 16}``, then 32, 64).
2. ``image_encoder`` (``L_2``): the image encoder ``E`` regresses ``E'``'s codes of the
   shape in the image, the ground-truth projection matrix and lighting, plus the
   photometric loss of its render; the decoders are frozen.
3. ``finetune`` (Eq. 4): image-only, with the renderer in the loop: photometric,
   silhouette (Eq. 5), local feature consistency (Eq. 7), albedo local constancy and
   batch-wise white shading; ``E`` and the albedo decoder train (the shape decoder too
   with ``finetune_shape``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..cameras import Camera, ProjectionMatrixCamera, pixel_grid, well_conditioned_projection
from ..cameras.heads import ProjectionMatrixHead
from ..checks import check_shape
from ..data.voxels import WithColouredVoxels, voxel_centres
from ..encoders import ConvEncoder, ResNetEncoder, sample_features
from ..fields import BranchedAlbedo, BranchedOccupancy, JointOccupancyField
from ..losses import (
    albedo_constancy_loss,
    branch_balance_loss,
    branch_colour_separation_loss,
    feature_consistency_loss,
    occupancy_photometric_loss,
    occupancy_pretraining_losses,
    occupancy_silhouette_loss,
    part_boundary_points,
    searched_field_output,
    white_shading_loss,
)
from ..renderers import LinearBinarySearch, LinearSearch, sh_shading
from .base import ReconstructionModel, image_encoder
from .registry import ModelSpec, register_model

__all__ = [
    "MSU",
    "MSU_WEIGHTS",
    "NMR_CAMERA_SPREAD",
    "NMR_FRONTAL_CAMERA",
    "MSURender",
    "ground_truth_projection",
    "projection_statistics",
]

#: The loss weights of every stage (each stage computes only its own terms). The paper
#: gives none of its lambdas; these are svrecon's choices (docs/papers/msu.md). Eq. 8's
#: occupancy and albedo terms are sums over the ``K`` points (hundreds at the start);
#: beside them a cross-entropy of weight 1 is a thousandth of the gradient ``E'``
#: gets, and its category code learned nothing in 600 steps (chance accuracy): hence
#: ``category`` 100.
#: Stage 1 (Eq. 8): ``occupancy``, ``albedo``, ``category``; ``branch_l1`` is BAE-NET's
#: L1 norm of the branch layer's weights (its ``--L1reg``; MSU adopts BAE-NET as
#: ``D_S`` but states no regulariser, hence 0 here); ``branch_balance`` is svrecon's
#: load balancing of the branches inside each shape (:func:`branch_balance_loss`; it
#: revives branches that never win, 0 in the paper preset); ``branch_colours`` is
#: svrecon's :func:`branch_colour_separation_loss` (occupied points of different
#: albedo in different branches: the paper's "both [shape and albedo] shall guide the
#: segmentation" with a gradient, 0 in the paper preset). Stage 2 (L_2): ``image``
#: (Eq. 6), ``code_category`` / ``code_shape`` / ``code_albedo`` (squared distances to
#: ``E'``'s codes), ``camera`` (standardised projection matrix), ``lighting``. Stage 3
#: (Eq. 4): ``image``, ``silhouette`` (Eq. 5), ``feature_consistency`` (Eq. 7),
#: ``albedo_constancy``, ``white_shading``.
MSU_WEIGHTS = {"occupancy": 1.0, "albedo": 1.0, "category": 100.0, "branch_l1": 0.0,
               "branch_balance": 0.0, "branch_colours": 0.0,
               "image": 1.0, "code_category": 1.0, "code_shape": 1.0, "code_albedo": 1.0,
               "camera": 1.0, "lighting": 1.0,
               "silhouette": 1.0, "feature_consistency": 0.1, "albedo_constancy": 1e-3,
               "white_shading": 0.1}  # fmt: skip


#: The camera head's starting camera: the NMR rig's (SDF-SRN's and the procedural
#: set's: 30 degree field of view, 2.732 away) frontal view, azimuth 0, elevation 20
#: degrees, in image fractions (:func:`ground_truth_projection`).
NMR_FRONTAL_CAMERA = ((1.8660, -0.17101, -0.46985, 1.3660),
                      (0.0, -1.9245, 0.16837, 1.3660),
                      (0.0, -0.34202, -0.93969, 2.7320))  # fmt: skip
#: The per-entry spread of that rig's ``P`` over uniform azimuths and its elevations
#: (:func:`projection_statistics` of the procedural training split): the head's scale.
NMR_CAMERA_SPREAD = ((1.353, 0.097, 1.364, 0.01),
                     (0.327, 0.065, 0.325, 0.01),
                     (0.638, 0.194, 0.648, 0.01))  # fmt: skip


def ground_truth_projection(batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The batch's projection matrices ``P = diag(1/W, 1/H, 1) K [R | t]`` ``[B, 3, 4]``
    in image fractions (``u / W``, ``v / H``: one prior serves every image size),
    rescaled as :class:`ProjectionMatrixCamera` stores them (third row of the left
    block unit, positive determinant): the target of the camera head. Reads
    ``intrinsics``, ``pose`` and the size of ``image`` ``[B, 3, H, W]``."""
    K = batch["intrinsics"]
    pose = batch["pose"]
    check_shape("intrinsics", K, ("B", 3, 3))
    check_shape("pose", pose, (K.shape[0], 3, 4))
    h, w = batch["image"].shape[-2:]
    scale = torch.tensor([1 / w, 1 / h, 1.0], dtype=K.dtype, device=K.device)
    return ProjectionMatrixCamera(scale[:, None] * (K @ pose)).P


def projection_statistics(
    dataset, max_items: int | None = None, min_std: float = 0.01
) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-entry mean and standard deviation ``[3, 4]`` each of the items'
    :func:`ground_truth_projection` (the first ``max_items`` items): the standardisation
    of MSU's camera head (``camera_mean``, ``camera_std``). Deviations are floored at
    ``min_std``, so that an entry the rig never varies (a fixed distance) does not blow
    up. With uniformly distributed azimuths the mean is no camera (its rotation
    averages out): the head then starts from a typical camera of the rig instead
    (:data:`NMR_FRONTAL_CAMERA`), and only the deviation is its scale."""
    n = len(dataset) if max_items is None else min(max_items, len(dataset))
    if n < 2:
        raise ValueError(f"dataset: expected at least 2 items, got {n}")
    items = [dataset[i] for i in range(n)]
    batch = {k: torch.stack([item[k] for item in items]).double()
             for k in ("intrinsics", "pose", "image")}  # fmt: skip
    P = ground_truth_projection(batch)
    return P.mean(0), P.std(0).clamp_min(min_std)


@dataclass
class MSURender:
    """What :meth:`MSU.render` returns for ``B`` images on an ``S x S`` grid of pixels
    (``R = S^2``, row-major).

    Attributes:
        rgb: ``[B, R, 3]`` the rendered colour ``albedo * shading`` (white off the shape).
        albedo, shading, normals: ``[B, R, 3]`` at the surface points (0 off the shape).
        mask: ``[B, R]`` bool, the rays that hit the shape.
        occupancy: ``[B, R]`` the field at each ray's searched point with the point
            detached (Eq. 5's ``D_S(x_j)``).
        branch: ``[B, R]`` the branch (part) of each surface point (-1 off the shape).
        pixels: ``[B, R, 2]`` the pixel centres rendered, in the input's pixels.
        size: ``S``.
    """

    rgb: torch.Tensor
    albedo: torch.Tensor
    shading: torch.Tensor
    normals: torch.Tensor
    mask: torch.Tensor
    occupancy: torch.Tensor
    branch: torch.Tensor
    pixels: torch.Tensor
    size: int

    def image(self, name: str = "rgb") -> torch.Tensor:
        """An attribute as images ``[B, C, S, S]`` (``mask`` and ``branch``: ``[B, S, S]``)."""
        value = getattr(self, name)
        if value.dim() == 2:
            return value.unflatten(1, (self.size, self.size))
        return value.unflatten(1, (self.size, self.size)).movedim(-1, 1)


class MSU(ReconstructionModel):
    """``image -> (category, shape, albedo codes, P, lighting) -> joint occupancy
    field``, rendered by linear-binary search with Lambertian SH shading.

    The shape is decoded in the object's canonical (world) frame; the estimated
    projection matrix places it in the image. Batches follow ``docs/data.md``; stages 1
    and 2 read the coloured voxels that :meth:`stage_dataset` adds
    (:class:`svrecon.data.WithColouredVoxels`), stage 2 also ``intrinsics``, ``pose``
    and ``lighting``; stage 3 reads only ``image``, ``mask`` and ``label``.

    Args:
        encoder: ``"resnet18"`` (the paper, GroupNorm) or ``"conv"`` (CPU sized, with
            ``encoder_widths``); ``voxel_widths`` the 3D CNN ``E'``.
        category_dim, shape_dim, albedo_dim: the codes (3, 256, 256); ``category_dim=0``
            drops the category code (the paper's ablation).
        num_categories: the classifier on the category code (stage 1's ``L_C``).
        shape_hidden, albedo_hidden, num_branches: the decoders ((3072, 384), 512 x 6,
            12 branches).
        search, num_samples, num_refine: ``"linear_binary"`` (the paper's) or
            ``"linear"`` surface search; DVR's 128 samples and 8 refinements.
        render_size: the side of the pixel grid rendered per image in training.
        bounding_radius: rays are clipped to this sphere; misses render white.
        camera_mean, camera_std: the camera head's ``P = out * std + mean`` in image
            fractions ([3, 4] lists, ``std`` also a number): a typical camera of the
            training rig and the spread of its ``P`` (:func:`projection_statistics`);
            default: the NMR rig's (:data:`NMR_FRONTAL_CAMERA`,
            :data:`NMR_CAMERA_SPREAD`).
        boundary_resolution, boundary_points, feature_maps: Eq. 7's boundary points
            (``q`` of the voxels of a ``boundary_resolution^3`` grid whose neighbour
            triggers another branch) and the number of the encoder's first feature maps
            sampled there (3).
        finetune_shape: also train the shape decoder in stage 3 (the paper: no).
        loss_weights: overrides of :data:`MSU_WEIGHTS`.
    """

    surface_kind = "occupancy"
    surface_level = 0.5
    stages = ("decoders", "image_encoder", "finetune")

    def __init__(
        self,
        *,
        encoder: str = "resnet18",
        encoder_widths: Sequence[int] = (32, 64, 128, 256),
        voxel_widths: Sequence[int] = (32, 64, 128, 256),
        category_dim: int = 3,
        shape_dim: int = 256,
        albedo_dim: int = 256,
        num_categories: int = 13,
        shape_hidden: Sequence[int] = (3072, 384),
        albedo_hidden: Sequence[int] = (512,) * 6,
        num_branches: int = 12,
        search: str = "linear_binary",
        num_samples: int = 128,
        num_refine: int = 8,
        render_size: int = 64,
        bounding_radius: float = 0.6,
        camera_mean: Sequence[Sequence[float]] = NMR_FRONTAL_CAMERA,
        camera_std: float | Sequence[Sequence[float]] = NMR_CAMERA_SPREAD,
        boundary_resolution: int = 32,
        boundary_points: int = 256,
        feature_maps: int = 3,
        finetune_shape: bool = False,
        loss_weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        if search not in ("linear_binary", "linear"):
            raise ValueError(f"search: expected 'linear_binary' or 'linear', got {search!r}")
        if category_dim < 0 or num_categories < 1:
            raise ValueError("category_dim, num_categories: expected >= 0 and >= 1")
        if render_size < 2:
            raise ValueError(f"render_size: expected >= 2, got {render_size}")
        if not 1 <= feature_maps <= len(encoder_widths if encoder == "conv" else range(4)):
            raise ValueError(
                f"feature_maps: expected 1 to the encoder's stages, got {feature_maps}"
            )
        unknown = set(loss_weights or {}) - set(MSU_WEIGHTS)
        if unknown:
            raise ValueError(f"loss_weights: unknown terms {sorted(unknown)}")
        to_list = lambda v: v if isinstance(v, (int, float)) else [list(map(float, r)) for r in v]  # noqa: E731
        self.config = dict(
            encoder=encoder, encoder_widths=tuple(encoder_widths),
            voxel_widths=tuple(voxel_widths), category_dim=category_dim, shape_dim=shape_dim,
            albedo_dim=albedo_dim, num_categories=num_categories,
            shape_hidden=tuple(shape_hidden), albedo_hidden=tuple(albedo_hidden),
            num_branches=num_branches, search=search, num_samples=num_samples,
            num_refine=num_refine, render_size=render_size, bounding_radius=bounding_radius,
            camera_mean=to_list(camera_mean),
            camera_std=to_list(camera_std), boundary_resolution=boundary_resolution,
            boundary_points=boundary_points, feature_maps=feature_maps,
            finetune_shape=finetune_shape, loss_weights=dict(loss_weights or {}),
        )  # fmt: skip
        codes = {"shape": shape_dim, "albedo": albedo_dim, "lighting": 27}
        if category_dim:
            codes = {"category": category_dim, **codes}
        if encoder == "conv":
            self.encoder = image_encoder(encoder, 3, codes, encoder_widths)
        elif encoder in ("resnet18", "resnet34"):  # the paper's: ResNet-18 with GroupNorm
            self.encoder = ResNetEncoder(encoder, codes, norm="group")
        else:
            raise ValueError(f"encoder: expected 'resnet18', 'resnet34' or 'conv', got {encoder!r}")
        feature_dim = encoder_widths[-1] if encoder == "conv" else 512
        mean = torch.tensor(camera_mean, dtype=torch.float32)
        std = torch.as_tensor(camera_std, dtype=torch.float32)
        self.camera_head = ProjectionMatrixHead(feature_dim, mean, std)
        voxel_codes = {k: v for k, v in codes.items() if k != "lighting"}
        self.voxel_encoder = ConvEncoder(4, voxel_widths, voxel_codes, spatial_dims=3)
        self.classifier = nn.Linear(category_dim, num_categories) if category_dim else None
        self.joint = JointOccupancyField(
            BranchedOccupancy(shape_dim, category_dim, tuple(shape_hidden), num_branches),
            BranchedAlbedo(shape_dim, albedo_dim, category_dim, tuple(albedo_hidden), num_branches),
        )
        cls = LinearBinarySearch if search == "linear_binary" else LinearSearch
        args = (num_samples, num_refine) if search == "linear_binary" else (num_samples,)
        self.search = cls(*args, level=self.surface_level)
        self.render_size, self.bounding_radius = render_size, bounding_radius
        self.boundary_resolution, self.boundary_points = boundary_resolution, boundary_points
        self.num_feature_maps, self.finetune_shape = feature_maps, finetune_shape
        self.loss_weights = {**MSU_WEIGHTS, **(loss_weights or {})}

    # -- the parts ---------------------------------------------------------------
    def encode(self, images: torch.Tensor) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
        """Images ``[B, 3, H, W]`` in ``[0, 1]`` -> (codes: ``category`` ``[B, C]`` (absent
        without a category code), ``shape`` ``[B, S]``, ``albedo`` ``[B, A]``,
        ``lighting`` ``[B, 27]``, ``camera_standardised`` ``[B, 3, 4]`` (the head's output,
        ``(P - mean) / std`` in image fractions) and ``camera`` (a
        :class:`ProjectionMatrixCamera` ``[B]`` in the input's pixels); the encoder's
        feature maps)."""
        check_shape("images", images, ("B", 3, "H", "W"))
        maps, pooled = self.encoder.feature_maps(images * 2 - 1)
        codes = self.encoder.codes(pooled)
        z = self.camera_head.linear(pooled).view(-1, 3, 4)
        h, w = images.shape[-2:]
        to_pixels = torch.tensor([w, h, 1.0], dtype=z.dtype, device=z.device)[:, None]
        codes["camera_standardised"] = z
        fractions = z * self.camera_head.std + self.camera_head.mean
        P = well_conditioned_projection(to_pixels * fractions)  # never singular mid-training
        codes["camera"] = ProjectionMatrixCamera(P, validate=False)
        return codes, maps

    def encode_voxels(self, voxels: torch.Tensor) -> dict[str, torch.Tensor]:
        """``E'``: coloured voxels ``[B, 4, R, R, R]`` -> ``category`` / ``shape`` /
        ``albedo`` codes."""
        return self.voxel_encoder(voxels)

    def field_of(self, codes: Mapping[str, torch.Tensor]):
        """The joint occupancy field ``points [B, N, 3] -> FieldOutput`` (occupancy,
        albedo, branch values and index) of a dict of codes."""
        return self.joint.bind(codes["shape"], codes["albedo"], codes.get("category"))

    def shape_field_of(self, codes: Mapping[str, torch.Tensor]):
        """The occupancy field alone ``points [B, N, 3] -> FieldOutput`` (occupancy,
        branch values and index; the same values as :meth:`field_of`, without the
        albedo decoder, which is half the cost of a grid evaluation)."""
        return self.joint.occupancy.bind(codes["shape"], codes.get("category"))

    def field_for(self, images: torch.Tensor, camera: Camera | None = None):
        """The per-image shape field (:meth:`shape_field_of`: occupancy and branches),
        canonical frame (the camera is never read: MSU estimates its own). Mesh
        extraction and segmentation read it; :meth:`field_of` adds the albedo."""
        return self.shape_field_of(self.encode(images)[0])

    def forward(self, images: torch.Tensor):
        return self.field_for(images)

    def estimate_camera(self, images: torch.Tensor) -> ProjectionMatrixCamera:
        """The estimated projection matrices of ``images`` ``[B, 3, H, W]``."""
        return self.encode(images)[0]["camera"]

    def render_pixels(
        self, size: int, image_size: tuple[int, int], like: torch.Tensor
    ) -> torch.Tensor:
        """The centres ``[size^2, 2]`` of a ``size x size`` grid over an image of
        ``image_size = (H, W)``, in its pixels (row-major)."""
        h, w = image_size
        grid = pixel_grid(size, size, device=like.device, dtype=like.dtype)
        return grid * torch.tensor([w / size, h / size], dtype=like.dtype, device=like.device)

    def render_codes(
        self, codes: Mapping, image_size: tuple[int, int], size: int | None = None
    ) -> MSURender:
        """Render the shapes of ``codes`` (:meth:`encode`) through their estimated
        cameras on a ``size x size`` grid (default ``render_size``) of an image of
        ``image_size``."""
        size = self.render_size if size is None else size
        field = self.field_of(codes)
        camera: ProjectionMatrixCamera = codes["camera"]
        b = len(camera)
        pixels = self.render_pixels(size, image_size, codes["shape"]).expand(b, -1, -1)
        rays, _ = camera.rays_at(pixels).intersect_sphere(self.bounding_radius)
        out = self.search(field, rays, normals=True, create_graph=torch.is_grad_enabled())
        hit = out.mask
        normals = torch.where(hit[..., None], out.normals, 0.0)
        shading = torch.where(hit[..., None], sh_shading(normals, codes["lighting"]), 0.0)
        albedo = torch.where(hit[..., None], out.albedo, 0.0)
        rgb = torch.where(hit[..., None], albedo * shading, 1.0)
        at_points = searched_field_output(field, out)  # Eq. 5's D_S(x_j), and the branches
        occupancy = at_points.occupancy
        branch = torch.where(hit, at_points.branch_index, -1)
        return MSURender(rgb, albedo, shading, normals, hit, occupancy, branch, pixels, size)

    def render(self, images: torch.Tensor, size: int | None = None) -> MSURender:
        """Encode ``images`` ``[B, 3, H, W]`` and render what the model sees in them
        (:class:`MSURender`): the analysis-by-synthesis of the input."""
        codes, _ = self.encode(images)
        return self.render_codes(codes, tuple(images.shape[-2:]), size)

    @property
    def num_part_labels(self) -> int:
        """The branches of the joint occupancy decoder."""
        return self.joint.occupancy.num_branches

    @torch.no_grad()
    def segment(self, images: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """The branch (part label) ``[B, N]`` of world ``points`` ``[B, N, 3]`` in the
        shapes of ``images``: the index of the branch with the largest occupancy."""
        check_shape("points", points, (images.shape[0], "N", 3))
        return self.field_for(images)(points).branch_index

    # -- stages --------------------------------------------------------------------
    def stage_dataset(self, dataset, **options):
        """Stages ``decoders`` and ``image_encoder`` add the coloured voxels of each
        item's shape (:class:`~svrecon.data.WithColouredVoxels`; options: its
        ``resolution`` (default 32), ``num_points`` (4096, or every voxel of a smaller
        grid), ``input_resolution``,
        ``inside_fraction``); ``finetune`` reads the images alone (no options)."""
        if self.stage == "finetune":
            return super().stage_dataset(dataset, **options)
        allowed = {"resolution", "num_points", "input_resolution", "inside_fraction"}
        unknown = set(options) - allowed
        if unknown:
            raise ValueError(
                f"stage_options: {self.stage} takes {sorted(allowed)}, got {sorted(unknown)}"
            )
        options = {"resolution": 32, **options}
        if self.stage == "image_encoder":  # only E'(V) is read: no point samples
            options = {"num_points": 1, **options}
        options.setdefault("num_points", min(4096, options["resolution"] ** 3))
        return WithColouredVoxels(dataset, **options)

    def optimizer_groups(self) -> dict[str, dict]:
        """What the current stage trains (all but ``E'`` and the classifier outside a
        stage): ``decoders``: ``E'``, the classifier and both decoders;
        ``image_encoder``: the image encoder and camera head; ``finetune``: those and
        the albedo decoder (and the shape decoder with ``finetune_shape``)."""
        image = [*self.encoder.parameters(), *self.camera_head.parameters()]
        if self.stage == "decoders":
            params = [*self.voxel_encoder.parameters(), *self.joint.parameters()]
            if self.classifier is not None:
                params += list(self.classifier.parameters())
        elif self.stage == "image_encoder":
            params = image
        elif self.stage == "finetune":
            decoder = self.joint if self.finetune_shape else self.joint.albedo
            params = image + list(decoder.parameters())
        else:
            params = list(self.parameters())
        return {"model": {"params": params}}

    def compute_losses(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The current stage's terms (:data:`MSU_WEIGHTS`)."""
        if self.stage is None:
            raise ValueError(f"stage: MSU trains in stages {list(self.stages)}; set one first")
        return {"decoders": self._decoder_terms, "image_encoder": self._encoder_terms,
                "finetune": self._finetune_terms}[self.stage](batch)  # fmt: skip

    def _need(self, batch, *keys):
        missing = [k for k in keys if k not in batch]
        if missing:
            raise ValueError(
                f"batch: MSU's {self.stage} stage needs {missing} (wrap the dataset with "
                "model.stage_dataset)"
            )

    def _decoder_terms(self, batch):
        """Eq. 8 on the coloured voxels: occupancy MSE summed over the ``K`` points,
        albedo MSE over the occupied ones among them, cross-entropy of the category
        classifier; with a ``branch_l1`` weight, BAE-NET's L1 norm of the branch
        layer's weights (each branch then reads few hidden units: compact parts); with
        a ``branch_balance`` weight, :func:`branch_balance_loss` on the branch logits
        of the occupied points (every branch gets a gradient, not only the winner);
        with ``branch_colours``, :func:`branch_colour_separation_loss` on them and the
        voxels' albedo (among the first 256 occupied samples: the sampler shuffles)."""
        self._need(batch, "voxels", "voxel_points", "voxel_occupancy", "voxel_albedo")
        codes = self.encode_voxels(batch["voxels"])
        points, category = batch["voxel_points"], codes.get("category")
        decoder = self.joint.occupancy  # the logits once: Eq. 8 and the balance read them
        branch_logits = decoder.logits(points, codes["shape"], category)
        out = self.joint.albedo(
            points, decoder.output_of(branch_logits), codes["shape"], codes["albedo"], category
        )
        logits = None if self.classifier is None else self.classifier(codes["category"])
        terms = occupancy_pretraining_losses(
            out.occupancy, batch["voxel_occupancy"], out.albedo, batch["voxel_albedo"],
            logits, None if logits is None else batch["label"], reduction="sum",
            albedo_mask=batch["voxel_occupancy"] > 0.5,
        )  # fmt: skip
        if self.loss_weights["branch_l1"]:
            terms["branch_l1"] = self.joint.occupancy.branch_layer.weight.abs().sum()
        inside = batch["voxel_occupancy"] > 0.5
        if self.loss_weights["branch_balance"]:
            terms["branch_balance"] = branch_balance_loss(branch_logits, inside)
        if self.loss_weights["branch_colours"]:
            terms["branch_colours"] = branch_colour_separation_loss(
                branch_logits, batch["voxel_albedo"], inside
            )
        return terms

    def _encoder_terms(self, batch):
        """``L_2``: the codes of ``E'`` on the item's voxels, the standardised true
        projection matrix and lighting as targets (squared distances), plus the
        photometric loss of the render."""
        self._need(batch, "voxels", "intrinsics", "pose", "lighting")
        images, masks = batch["image"], batch["mask"].bool()
        with torch.no_grad():
            targets = self.encode_voxels(batch["voxels"])
            head = self.camera_head
            P = ground_truth_projection(batch).to(images.dtype)
            camera_target = (P - head.mean) / head.std
        codes, _ = self.encode(images)

        def squared(a, b):
            return ((a - b) ** 2).flatten(1).sum(1).mean()

        terms = {f"code_{k}": squared(codes[k], targets[k]) for k in targets}
        terms["camera"] = squared(codes["camera_standardised"], camera_target)
        terms["lighting"] = squared(codes["lighting"], batch["lighting"].to(images.dtype))
        terms["image"] = self._photometric(codes, images, masks)[0]
        return terms

    def _targets(self, images, masks, size):
        """The images and masks on the render grid (area-averaged; mask at 0.5)."""
        small = F.interpolate(images, size=(size, size), mode="area")
        small_mask = F.interpolate(masks[:, None].to(images.dtype), size=(size, size), mode="area")
        return small, small_mask[:, 0] > 0.5

    def _photometric(self, codes, images, masks):
        render = self.render_codes(codes, tuple(images.shape[-2:]))
        small, small_mask = self._targets(images, masks, render.size)
        target = small.flatten(2).transpose(1, 2)
        loss = occupancy_photometric_loss(render.rgb, target, small_mask.flatten(1))
        return loss, render, small, small_mask

    def _finetune_terms(self, batch):
        """Eq. 4: photometric (Eq. 6), silhouette (Eq. 5), local feature consistency
        (Eq. 7), albedo local constancy and batch-wise white shading."""
        images, masks = batch["image"], batch["mask"].bool()
        codes, maps = self.encode(images)
        image_loss, render, small, small_mask = self._photometric(codes, images, masks)
        flat_mask = small_mask.flatten(1)
        terms = {
            "image": image_loss,
            "silhouette": occupancy_silhouette_loss(render.occupancy, flat_mask),
            "albedo_constancy": albedo_constancy_loss(
                render.image("albedo"), small, small_mask & render.image("mask")
            ),
            "white_shading": white_shading_loss(render.shading, flat_mask & render.mask),
        }
        terms["feature_consistency"] = self._feature_consistency(
            codes, maps[: self.num_feature_maps], tuple(images.shape[-2:]), batch["label"]
        )
        return terms

    def _feature_consistency(self, codes, maps, image_size, labels):
        """Eq. 7: boundary points between branches of each predicted shape, projected
        with the estimated camera, the encoder's first feature maps sampled there."""
        r = self.boundary_resolution
        b = codes["shape"].shape[0]
        centres = voxel_centres(r, self.bounding_radius).to(codes["shape"])
        with torch.no_grad():
            out = self.field_of({k: v.detach() for k, v in codes.items() if k != "camera"})(
                centres.reshape(1, -1, 3).expand(b, -1, -1)
            )
            occupied = (out.occupancy > self.surface_level).view(b, r, r, r)
            points, valid = part_boundary_points(
                centres, occupied, out.branch_index.view(b, r, r, r), self.boundary_points
            )
        camera: ProjectionMatrixCamera = codes["camera"]
        with torch.no_grad():
            # A regressed camera can sit among the points: those at or behind its
            # image plane are left out, and projected from one unit in front of it
            # instead (their depth would divide by ~0 in value and gradient).
            valid = valid & (camera.depth(points) > 1e-2)
            in_front = (camera.camera_center + camera.P[:, 2, :3])[:, None]
            points = torch.where(valid[..., None], points, in_front)
        features = sample_features(maps, points, camera, image_size, mode="normalized")
        return feature_consistency_loss(features, labels, valid)


register_model(
    ModelSpec(
        name="msu",
        cls=MSU,
        presets={
            # CPU-sized, for the procedural set (64 x 64, 6 categories): conv encoders,
            # codes 3 + 64 + 32, decoders (256, 64) and 128 x 3 with 8 branches, 32
            # samples and 6 refinements on a 16 x 16 render grid; the NMR rig's camera
            # prior (the default). Stage 1 separates the branches by albedo
            # (`branch_colours` 100, not in the paper): without it airplanes and cars
            # were one branch each and the parts did not beat height bands
            # (benchmarks/RESULTS.md, "MSU's branches guided by albedo").
            "cpu": {
                "loss_weights": {"branch_colours": 100.0},
                "encoder": "conv",
                "encoder_widths": (32, 64, 128, 256),
                "voxel_widths": (16, 32, 64),
                "category_dim": 3,
                "shape_dim": 64,
                "albedo_dim": 32,
                "num_categories": 6,
                "shape_hidden": (256, 64),
                "albedo_hidden": (128, 128, 128),
                "num_branches": 8,
                "num_samples": 32,
                "num_refine": 6,
                "render_size": 16,
                "boundary_resolution": 16,
                "boundary_points": 64,
            },
            # ShapeNet-13 as the paper: the constructor's defaults.
            "paper": {},
        },
        protocol="msu",
        # stages 1-2 of the CPU schedule (benchmarks/msu_results.py), with the cpu
        # preset's branch_colours: the paper's own synthetic-image results are without
        # step 3 as well
        checkpoint="msu_procedural.pt",
        summary="MSU joint occupancy field (Liu et al.): category, shape, albedo, lighting "
        "and projection matrix from one image; branched occupancy, linear-binary search, "
        "SH shading; three training stages",
    )
)
