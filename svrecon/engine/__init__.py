"""The engine over the model registry: training (:func:`train`), checkpoints, the one
evaluation path (:func:`evaluate_dataset`), part segmentation
(:func:`evaluate_part_segmentation`), the fitted-sphere baseline and the demo."""

from .baselines import fit_sphere_baseline, sphere_mesh
from .checkpoints import (
    CHECKPOINT_FORMAT,
    export_weights,
    load_checkpoint,
    load_model,
    save_checkpoint,
    shipped_checkpoint,
)
from .evaluation import EvaluationReport, Prediction, evaluate_dataset, evaluation_indices
from .segmentation import SegmentationReport, evaluate_part_segmentation
from .trainer import NonFiniteLossError, TrainConfig, train

__all__ = [
    "CHECKPOINT_FORMAT",
    "EvaluationReport",
    "NonFiniteLossError",
    "Prediction",
    "SegmentationReport",
    "TrainConfig",
    "evaluate_dataset",
    "evaluate_part_segmentation",
    "evaluation_indices",
    "export_weights",
    "fit_sphere_baseline",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
    "shipped_checkpoint",
    "sphere_mesh",
    "train",
]
