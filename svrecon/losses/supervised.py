"""DISN's 3D-supervised losses (Wang et al. 2019, Eq. 2-3)."""

from __future__ import annotations

import torch

from ..checks import as_float, check_shape
from ._reduce import mean_or_zero

__all__ = ["camera_point_cloud_loss", "disn_sdf_loss"]


def disn_sdf_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    delta: float = 0.01,
    m1: float = 4.0,
    m2: float = 1.0,
    scale: float = 10.0,
    inclusive: bool = False,
) -> torch.Tensor:
    """DISN Eq. 3: ``mean(m(s) * |scale * s - f|)`` with ``m = m1`` where ``s < delta``
    (near the surface and inside), ``m2`` elsewhere.

    ``pred`` ``[B, N]`` is the network output in ``scale``-times SDF units (DISN trains on
    10 x SDF); ``target`` ``[B, N]`` the ground-truth SDF ``s`` in world units.
    ``inclusive=True`` compares ``s <= delta`` as the DISN code does (the paper: ``<``).
    """
    dims = check_shape("pred", pred, ("B", "N"))
    check_shape("target", target, (dims["B"], dims["N"]))
    near = target <= delta if inclusive else target < delta
    weight = torch.where(near, m1, m2).to(pred.dtype)
    return mean_or_zero(weight * (scale * target - pred).abs())


def camera_point_cloud_loss(
    points: torch.Tensor, pred_pose: torch.Tensor, gt_pose: torch.Tensor
) -> torch.Tensor:
    """DISN Eq. 2: mean squared distance between a point cloud ``[B, N, 3]`` posed by the
    predicted and by the true world-to-camera ``[B, 3, 4]`` transforms (2048 points in
    DISN)."""
    dims = check_shape("points", points, ("B", "N", 3))
    check_shape("pred_pose", pred_pose, (dims["B"], 3, 4))
    check_shape("gt_pose", gt_pose, (dims["B"], 3, 4))
    # integer inputs promoted, mixed precisions computed in the widest
    tensors = [as_float(n, t) for n, t in (("points", points), ("pred_pose", pred_pose),
                                           ("gt_pose", gt_pose))]  # fmt: skip
    dtype = torch.promote_types(torch.promote_types(tensors[0].dtype, tensors[1].dtype),
                                tensors[2].dtype)  # fmt: skip
    points, pred_pose, gt_pose = (t.to(dtype) for t in tensors)

    def apply(pose):
        return points @ pose[:, :, :3].transpose(1, 2) + pose[:, None, :, 3]

    return mean_or_zero(((apply(pred_pose) - apply(gt_pose)) ** 2).sum(-1))
