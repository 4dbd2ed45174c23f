"""The checkpoint format: model name and settings, weights, and (for resuming) the
optimizer and RNG states, read back with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..models import ReconstructionModel, build_model, get_model, spec_of

__all__ = [
    "CHECKPOINT_FORMAT",
    "export_weights",
    "load_checkpoint",
    "load_model",
    "load_weights",
    "save_checkpoint",
    "shipped_checkpoint",
    "to_builtin",
]

CHECKPOINT_FORMAT = "svrecon-checkpoint-1"
_REQUIRED = ("model", "model_config", "state_dict", "step")


def to_builtin(value):
    """Tuples become lists so that a checkpoint is plain data (``weights_only`` loads)."""
    if isinstance(value, dict):
        return {k: to_builtin(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_builtin(v) for v in value]
    return value


def save_checkpoint(
    path: str | Path,
    model: ReconstructionModel,
    train_config: dict | None = None,
    optimizers: dict[str, torch.optim.Optimizer] | None = None,
    step: int = 0,
) -> Path:
    """Write a checkpoint that :func:`load_checkpoint` reads with ``weights_only=True``.

    ``train_config`` is the run's settings (a dict of plain values); ``optimizers``
    (name -> optimizer) are saved with the RNG state so that a run resumes exactly.
    The file is written to a temporary name and renamed, so a crash never leaves a
    half-written checkpoint.
    """
    state = {
        "format": CHECKPOINT_FORMAT,
        "model": spec_of(model).name,
        "model_config": to_builtin(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "step": step,
    }
    if train_config is not None:
        state["train_config"] = to_builtin(train_config)
    if optimizers:
        state["optimizers"] = {k: opt.state_dict() for k, opt in optimizers.items()}
        state["torch_rng"] = torch.get_rng_state()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint with ``torch.load(weights_only=True)``; a missing, corrupted,
    foreign or incomplete file raises ``ValueError`` saying which."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint: {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged files
        raise ValueError(f"checkpoint: {path} is corrupted or not a torch file ({exc})") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint: {path} is not a svrecon checkpoint ({CHECKPOINT_FORMAT})")
    missing = [k for k in _REQUIRED if k not in state]
    if missing:
        raise ValueError(f"checkpoint: {path} lacks {missing}")
    if "optimizer" in state and "optimizers" not in state:  # written before the registry
        state["optimizers"] = {"model": state.pop("optimizer")}
    return state


def export_weights(src: str | Path, dst: str | Path) -> Path:
    """Copy a training checkpoint without its optimizer and RNG state (what ships in
    ``svrecon/checkpoints``): model name, settings, weights, step and run config."""
    state = load_checkpoint(src)
    for key in ("optimizers", "torch_rng"):
        state.pop(key, None)
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, dst)
    return dst


def load_weights(model: nn.Module, state: dict, path) -> None:
    """Load ``state["state_dict"]`` into ``model``; a mismatch or a non-finite weight is
    a ``ValueError`` naming the file."""
    bad = [k for k, v in state["state_dict"].items() if v.is_floating_point() and
           not torch.isfinite(v).all()]  # fmt: skip
    if bad:
        raise ValueError(f"checkpoint: {path} holds non-finite weights in {bad[:3]}")
    try:
        model.load_state_dict(state["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"checkpoint: {path} does not match the model: {exc}") from exc


def load_model(path: str | Path, expect: str | None = None) -> ReconstructionModel:
    """Rebuild the model saved in a checkpoint and load its weights (CPU). With
    ``expect``, a checkpoint of another model is refused."""
    state = load_checkpoint(path)
    if expect is not None and state["model"] != expect:
        raise ValueError(f"checkpoint: {path} holds a {state['model']!r} model, not {expect!r}")
    model = build_model(state["model"], state["model_config"])
    load_weights(model, state, path)
    return model


def shipped_checkpoint(model: str) -> Path:
    """The checkpoint shipped in the package for registered ``model``; ``ValueError``
    where none ships."""
    path = get_model(model).checkpoint_path()
    if path is None:
        raise ValueError(f"model: no checkpoint ships for {model!r}")
    return path
