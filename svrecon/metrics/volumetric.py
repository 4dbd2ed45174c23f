"""Volumetric intersection over union."""

from __future__ import annotations

import torch

__all__ = ["volumetric_iou"]


def volumetric_iou(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """IoU ``[B]`` of boolean occupancies ``[B, ...]`` (voxel grids or occupancy of shared
    sample points): ``|pred & gt| / |pred | gt|``. Two empty shapes score 1 (they agree).
    """
    if pred.shape != gt.shape or pred.dim() < 2:
        raise ValueError(
            f"pred, gt: expected equal shapes [B, ...], got {list(pred.shape)} and {list(gt.shape)}"
        )
    if pred.dtype != torch.bool or gt.dtype != torch.bool:
        raise ValueError("pred, gt: expected boolean occupancies (threshold the field first)")
    p, g = pred.flatten(1), gt.flatten(1)
    inter = (p & g).sum(-1).double()
    union = (p | g).sum(-1).double()
    return torch.where(union > 0, inter / union.clamp_min(1), 1.0)
