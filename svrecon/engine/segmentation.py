"""Part segmentation of reconstructed shapes scored against the procedural parts: the
predicted label (MSU: the branch) of each ground-truth surface point against the
analytic part it lies on (its semantic part, as ShapeNet-part labels them, or its
primitive), as part IoU after the best one-to-one label-to-part assignment, beside
the height-band baseline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ..data.schema import surface_points_of
from ..metrics.segmentation import height_band_labels, part_iou, segmentation_confusion
from .evaluation import evaluation_indices

__all__ = ["SegmentationReport", "evaluate_part_segmentation"]


@dataclass
class SegmentationReport:
    """Per-item rows (``index``, ``category``, ``parts``, ``iou``, ``height_bands``),
    per-category means of both, and their mean over categories (``summary``)."""

    rows: list[dict]
    per_category: dict[str, dict[str, float]]
    summary: dict[str, float]


def evaluate_part_segmentation(
    dataset,
    *,
    model=None,
    predict: Callable[[dict, torch.Tensor], torch.Tensor] | None = None,
    num_labels: int | None = None,
    max_items: int | None = None,
    num_points: int = 2048,
    parts: str = "semantic",
    progress: bool = False,
) -> SegmentationReport:
    """Score a part segmentation on ``dataset``'s evaluation items.

    For each item, the first ``num_points`` of its ``surface_points`` get their true
    part from the analytic shape, the part nearest to or containing the point: with
    ``parts="semantic"`` (the default; ShapeNet-part's labels, which BAE-NET and MSU's
    Tab. 4 score) its semantic part (``dataset.part_shape(i).semantic_index``: a
    chair's four legs are one part, ``leg``), with ``"primitive"`` its primitive
    (``part_index``: each leg its own part). Each point also gets a predicted label,
    from ``model.segment(image [1, 3, H, W], points [1, N, 3])`` (MSU: the branch of
    largest occupancy) or from ``predict(item, points [N, 3]) -> labels [N]`` in
    ``[0, num_labels)``. The
    score is :func:`svrecon.metrics.part_iou` with the assignment made per item (the
    labels need not mean the same part in every shape). The baseline labels the
    same points by as many equal height bands (world y) as the item has parts of the
    chosen kind (:func:`svrecon.metrics.height_band_labels`), scored the same way.
    """
    if (model is None) == (predict is None):
        raise ValueError("model, predict: give exactly one")
    if parts not in ("semantic", "primitive"):
        raise ValueError(f"parts: expected 'semantic' or 'primitive', got {parts!r}")
    if model is not None:
        num_labels = model.num_part_labels
        if num_labels is None:
            raise TypeError(f"model: {type(model).__name__} does not segment its shapes")
        model.eval()
    elif num_labels is None or num_labels < 1:
        raise ValueError(f"num_labels: expected >= 1 with predict, got {num_labels}")
    if not callable(getattr(dataset, "part_shape", None)):
        raise TypeError("dataset: expected a part_shape(i) method (the procedural set has one)")
    rows = []
    indices = evaluation_indices(dataset, max_items)
    for i in tqdm(indices, desc="segmentation", disable=not progress):
        item = dataset[i]
        points = surface_points_of(item)[:num_points]
        shape = dataset.part_shape(i)
        if parts == "semantic":
            truth, num_parts = shape.semantic_index(points), len(shape.semantic_parts)
        else:
            truth, num_parts = shape.part_index(points), len(shape.parts)
        if model is not None:
            with torch.no_grad():
                image = item["image"][None].to(next(model.parameters()))
                labels = model.segment(image, points[None].to(image))[0].cpu()
        else:
            labels = torch.as_tensor(predict(item, points))
        present = int(truth.unique().numel())
        bands = height_band_labels(points[None, :, 1], present)[0]
        scores = {}
        for name, pred, k in (("iou", labels, num_labels), ("height_bands", bands, present)):
            confusion = segmentation_confusion(pred[None], truth[None], k, num_parts)
            scores[name] = float(part_iou(confusion).iou[0])
        category = dataset.categories[int(item["label"])]
        rows.append({"index": i, "category": category, "parts": present, **scores})
    per_category: dict[str, dict[str, float]] = {}
    for category in sorted({r["category"] for r in rows}):
        mine = [r for r in rows if r["category"] == category]
        per_category[category] = {
            key: sum(r[key] for r in mine) / len(mine) for key in ("iou", "height_bands")
        }
    summary = {
        key: sum(c[key] for c in per_category.values()) / max(len(per_category), 1)
        for key in ("iou", "height_bands")
    }
    return SegmentationReport(rows, per_category, summary)
