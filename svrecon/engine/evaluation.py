"""One evaluation path: a model, a fixed field or mesh, or any per-item predictor,
scored on a dataset of schema items under a protocol applied in full
(:func:`svrecon.metrics.evaluate` per item, :func:`svrecon.metrics.average_results`
over them)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import trimesh
from tqdm.auto import tqdm

from ..data.schema import evaluation_indices, surface_points_of
from ..metrics import EvaluationProtocol, average_results, evaluate, get_protocol
from ..models import ReconstructionModel, batch_camera

__all__ = ["EvaluationReport", "Prediction", "evaluate_dataset", "evaluation_indices"]


@dataclass
class Prediction:
    """What a predictor returns for one item: a mesh or a field for one instance
    (``points [1, N, 3] -> FieldOutput``), the world-to-camera rotation ``[3, 3]`` it
    estimated (``None``: the item's true one) and the field's iso-level."""

    shape: object
    rotation: torch.Tensor | None = None
    level: float | None = None


@dataclass
class EvaluationReport:
    """Per-item rows (item index, category and every metric) and their average as the
    protocol's paper averages (``summary``, with ``items``, the count)."""

    protocol: str
    rows: list[dict] = field(default_factory=list)
    summary: dict[str, float] = field(default_factory=dict)

    def to_csv(self, path: str | Path) -> Path:
        """Write the per-item rows as CSV (one column per key)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(dict.fromkeys(k for row in self.rows for k in row))
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.rows)
        return path

    def to_json(self, path: str | Path) -> Path:
        """Write ``{"protocol", "summary", "rows"}`` as JSON."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"protocol": self.protocol, "summary": self.summary, "rows": self.rows}
        path.write_text(json.dumps(payload, indent=1))
        return path


def _category(dataset, item) -> str:
    label = int(item["label"])
    names = getattr(dataset, "categories", None)
    return names[label] if names is not None else str(label)


def _model_predictor(model: ReconstructionModel) -> Callable[[dict], Prediction]:
    device = next(model.parameters()).device

    def predict(item: dict) -> Prediction:
        batch = {k: (v[None].to(device) if isinstance(v, torch.Tensor) else v)
                 for k, v in item.items()}  # fmt: skip
        camera = batch_camera(batch)
        field = model.field_for(batch["image"], camera)
        rotation = model.predict_rotation(batch["image"], camera, masks=batch.get("mask"))
        return Prediction(field, None if rotation is None else rotation[0], model.surface_level)

    return predict


def evaluate_dataset(
    dataset,
    protocol: EvaluationProtocol | str,
    *,
    model: ReconstructionModel | None = None,
    field=None,
    mesh: trimesh.Trimesh | None = None,
    predict: Callable[[dict], Prediction] | None = None,
    max_items: int | None = None,
    indices: Sequence[int] | None = None,
    seed: int = 0,
    progress: bool = False,
) -> EvaluationReport:
    """Score one of ``model`` / ``field`` / ``mesh`` / ``predict`` (give exactly one) on
    ``dataset`` under ``protocol``.

    Args:
        dataset: items of the schema in ``docs/data.md`` (``surface_points`` is the
            ground truth, ``pose`` gives the true rotation, ``label`` the category).
        protocol: an :class:`~svrecon.metrics.EvaluationProtocol` or its name.
        model: reconstructs each item from its ``image`` (and camera); its
            :meth:`~svrecon.models.ReconstructionModel.predict_rotation` is the
            predicted viewpoint of view-centric protocols. A model that estimates the
            viewpoint needs a view-centric protocol (others are refused).
        field, mesh: one prediction (world frame) scored against every item, with the
            item's true rotation as the predicted one (e.g. the sphere baseline).
        predict: any ``item -> Prediction``.
        max_items, indices: which items (default :func:`evaluation_indices`).
        seed: the sampling seed of every item.

    Returns:
        An :class:`EvaluationReport`; ``report.summary`` holds the averaged metrics.
    """
    given = [x is not None for x in (model, field, mesh, predict)]
    if sum(given) != 1:
        raise ValueError("model, field, mesh, predict: give exactly one")
    p = get_protocol(protocol)
    if model is not None and model.estimates_viewpoint and not p.view_centric:
        raise ValueError(
            f"protocol: {type(model).__name__} estimates its viewpoint, so its canonical "
            f"frame is its own; {p.name!r} compares canonical frames. Use a view-centric "
            "protocol (procedural_view_centric, cat3d, shapeclipper)"
        )
    if model is not None:
        predict = _model_predictor(model)
    elif field is not None or mesh is not None:
        fixed = Prediction(mesh if mesh is not None else field)
        predict = lambda item: fixed  # noqa: E731
    if indices is None:
        indices = evaluation_indices(dataset, max_items)
    was_training = model.training if model is not None else False
    if model is not None:
        model.eval()
    report = EvaluationReport(p.name)
    try:
        with torch.no_grad():
            for i in tqdm(indices, desc=f"evaluate ({p.name})", disable=not progress):
                item = dataset[i]
                prediction = predict(item)
                gt_rotation = item["pose"][:3, :3].double()
                rotation = prediction.rotation if prediction.rotation is not None else gt_rotation
                scores = evaluate(
                    prediction.shape, surface_points_of(item).double().cpu(), p,
                    pred_rotation=rotation.double().cpu(), gt_rotation=gt_rotation.cpu(),
                    level=prediction.level, seed=seed,
                )  # fmt: skip
                report.rows.append({"index": int(i), "category": _category(dataset, item),
                                    **scores})  # fmt: skip
    finally:
        if model is not None:
            model.train(was_training)
    metrics = [{k: v for k, v in r.items() if k not in ("index", "category")} for r in report.rows]
    categories = [r["category"] for r in report.rows]
    report.summary = {**average_results(metrics, p, categories), "items": float(len(metrics))}
    return report
