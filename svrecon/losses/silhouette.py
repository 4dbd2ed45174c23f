"""SDF-SRN's silhouette losses: the distance-transform lower bound of the SDF outside the
mask (Lin et al. 2020, Prop. 1, Eq. 1-4), and the soft-IoU mask loss (Cat3D, ShapeClipper)."""

from __future__ import annotations

import torch

from ..cameras.cameras import Camera, OrthographicCamera, PerspectiveCamera
from ..checks import as_float, check_shape
from ._reduce import mean_or_zero, weighted_mean

__all__ = ["importance_weights", "silhouette_lower_bound", "silhouette_sdf_loss", "soft_iou_loss"]


def importance_weights(distance: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """SDF-SRN's per-ray weights ``1 / (D(u) + eps)`` (``D`` in pixels, any shape)."""
    return 1.0 / (distance + eps)


def silhouette_lower_bound(
    camera: Camera, pixels: torch.Tensor, distance: torch.Tensor, depth: torch.Tensor
) -> torch.Tensor:
    """Lower bound ``b(z; u)`` ``[B, R, S]`` of the SDF at depth ``z`` on the ray through ``u``.

    ``distance`` ``[B, R]`` is ``D(u)``, the pixel distance from ``u`` to the nearest
    silhouette pixel (:func:`distance_transform`); ``depth`` ``[B, R, S]`` is camera
    z-depth; ``pixels`` ``[B, R, 2]``. No surface point projects within ``D(u)`` pixels of
    ``u``, so (Prop. 1):

    - orthographic (and weak-perspective) cameras: ``b = D(u) / max(sx, sy)``, the pixel
      distance in world units, the same at every depth;
    - perspective cameras (square pixels): ``b`` is the distance from the point to the
      ray through ``u`` moved ``D(u)`` pixels radially away from the principal point,
      the nearest ray of that cone (SDF-SRN Eq. 2).
    """
    dims = check_shape("pixels", pixels, (len(camera), "R", 2))
    check_shape("distance", distance, (len(camera), dims["R"]))
    check_shape("depth", depth, (len(camera), dims["R"], "S"))
    if isinstance(camera, OrthographicCamera):
        pixel_size = 1.0 / camera.scale.max(dim=-1).values  # world units per pixel
        return (distance * pixel_size[:, None])[..., None].expand_as(depth)
    if not isinstance(camera, PerspectiveCamera):
        raise TypeError(
            f"camera: the bound is defined for perspective and orthographic cameras, "
            f"got {type(camera).__name__}"
        )
    radial = pixels - camera.principal_point[:, None]
    length = radial.norm(dim=-1, keepdim=True)
    # At the principal point every direction is equally far; take +u.
    radial = torch.where(
        length > 0, radial / length.clamp_min(1e-12), torch.tensor([1.0, 0.0]).to(radial)
    )
    rays = camera.rays_at(pixels)
    shifted = camera.rays_at(pixels + distance[..., None] * radial)
    sine = torch.linalg.cross(rays.directions, shifted.directions).norm(dim=-1)  # [B, R]
    return rays.depth_to_distance(depth) * sine[..., None]


def silhouette_sdf_loss(
    sdf: torch.Tensor,
    bound: torch.Tensor,
    background: torch.Tensor,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """SDF-SRN Eq. 4: weighted mean of ``relu(b(z; u) - f(z u))`` over background rays.

    Shapes: ``sdf`` and ``bound`` ``[B, R, S]`` (the field at the sampled depths and
    :func:`silhouette_lower_bound`), ``background`` ``[B, R]`` bool (outside the mask),
    ``weight`` ``[B, R]`` (SDF-SRN: :func:`importance_weights`). Default weight 3
    (SDF-SRN, ShapeNet and Pascal3D). No background ray gives 0 (with zero gradients).
    """
    dims = check_shape("sdf", sdf, ("B", "R", "S"))
    check_shape("bound", bound, (dims["B"], dims["R"], dims["S"]))
    check_shape("background", background, (dims["B"], dims["R"]))
    w = None
    if weight is not None:
        check_shape("weight", weight, (dims["B"], dims["R"]))
        w = weight[..., None]
    return weighted_mean(torch.relu(bound - sdf), w, background.bool()[..., None])


def soft_iou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """``1 - IoU(M, M_hat)`` with soft masks (Cat3D weight 0.3, ShapeClipper 0.5).

    ``IoU = sum(p t) / sum(p + t - p t)`` per item over all of its pixels, then averaged
    over the batch. Shapes: ``[B, ...]`` both, values in ``[0, 1]`` (values outside are
    clamped into it, so the loss stays in ``[0, 1]``). An item whose prediction and
    target are both empty has IoU 1 (loss 0, zero gradient).
    """
    if pred.shape != target.shape or pred.dim() < 1:
        raise ValueError(
            f"pred, target: expected equal shapes [B, ...], "
            f"got {list(pred.shape)} and {list(target.shape)}"
        )
    pred, target = as_float("pred", pred), as_float("target", target)  # never integer math
    p, t = pred.flatten(1).clamp(0, 1), target.to(pred.dtype).flatten(1).clamp(0, 1)
    inter = (p * t).sum(-1)
    union = (p + t - p * t).sum(-1)
    empty = union <= 0
    iou = torch.where(
        empty, torch.ones_like(union), (inter + eps) / torch.where(empty, 1.0, union + eps)
    )
    return mean_or_zero(1 - iou)
