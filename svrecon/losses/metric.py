"""Cat3D's category metric loss: normalised softmax over learnable category centres."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import as_float, check_class_labels, check_shape

__all__ = ["CategoryCentres", "category_metric_loss"]


def category_metric_loss(
    embeddings: torch.Tensor,
    centres: torch.Tensor,
    labels: torch.Tensor,
    temperature: float = 0.3,
    reduction: str = "sum",
) -> torch.Tensor:
    """Normalised-softmax metric loss (Cat3D Eq. 5-6; weight 0.05 on ShapeNet-13).

    ``-log softmax_k(cos(s_i, c_k) / tau)[y_i]``, summed over the batch as in Eq. 5
    (``reduction="sum"``; ``"mean"`` averages, as the Cat3D code does). Shapes:
    ``embeddings`` ``[B, D]`` (shape codes),
    ``centres`` ``[C, D]``, ``labels`` ``[B]`` integer categories. A zero embedding has
    cosine 0 to every centre (loss ``log C``) with finite gradients.
    """
    embeddings, centres = as_float("embeddings", embeddings), as_float("centres", centres)
    dims = check_shape("embeddings", embeddings, ("B", "D"))
    check_shape("centres", centres, ("C", dims["D"]))
    check_shape("labels", labels, (dims["B"],))
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction: expected 'sum' or 'mean', got {reduction!r}")
    if temperature <= 0:
        raise ValueError(f"temperature: expected > 0, got {temperature}")
    labels = check_class_labels("labels", labels, centres.shape[0])
    cosine = F.normalize(embeddings, dim=-1) @ F.normalize(centres, dim=-1).T
    return F.cross_entropy(cosine / temperature, labels, reduction=reduction)


class CategoryCentres(nn.Module):
    """Learnable category centres ``[C, D]`` (Cat3D Sec. 3.2), initialised uniformly in
    ``[-1, 1)`` and trained by gradient descent with the rest of the model.

    ``forward(embeddings [B, D], labels [B]) -> scalar`` is :func:`category_metric_loss`.
    """

    def __init__(
        self, num_categories: int, dim: int, temperature: float = 0.3, reduction: str = "sum"
    ):
        super().__init__()
        self.centres = nn.Parameter(torch.rand(num_categories, dim) * 2 - 1)
        self.temperature, self.reduction = temperature, reduction

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return category_metric_loss(
            embeddings, self.centres, labels, self.temperature, self.reduction
        )
