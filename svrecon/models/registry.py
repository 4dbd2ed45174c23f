"""The model registry: every assembled model is registered once, and the trainer, the
evaluator, the command line, the demo and the notebooks' test read it.

A model file registers itself at import (``svrecon.models`` imports every module of
the package, so a new model is one new file)::

    register_model(ModelSpec(
        name="my_model", cls=MyModel, protocol="procedural",
        presets={"cpu": {"latent_dim": 64}, "paper": {}},
    ))
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .base import ReconstructionModel

__all__ = [
    "MODELS",
    "ModelSpec",
    "build_model",
    "get_model",
    "register_model",
    "spec_of",
    "unregister_model",
]


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """One registered model.

    Attributes:
        name: the registry key (CLI ``--model``, checkpoint ``model`` entry).
        cls: the :class:`ReconstructionModel` subclass.
        presets: named constructor arguments; ``"cpu"`` (sized to train on a 2-core
            machine) and ``"paper"`` (the paper's configuration) are required.
        protocol: the name of the evaluation protocol of its paper
            (:data:`svrecon.metrics.PROTOCOLS`).
        checkpoint: the file name of the checkpoint shipped in ``svrecon/checkpoints``
            (``None``: none shipped).
        pretraining: what the optional pretraining stage does (``None``: the model has
            none); the stage is :meth:`ReconstructionModel.pretraining_loss`.
        summary: one line for ``svrecon --help`` and the docs.
    """

    name: str
    cls: type[ReconstructionModel]
    presets: Mapping[str, Mapping[str, Any]]
    protocol: str
    checkpoint: str | None = None
    pretraining: str | None = None
    summary: str = ""
    default_preset: str = "cpu"

    def __post_init__(self) -> None:
        if not (isinstance(self.cls, type) and issubclass(self.cls, ReconstructionModel)):
            raise TypeError(f"cls: expected a ReconstructionModel subclass, got {self.cls!r}")
        missing = {"cpu", "paper"} - set(self.presets)
        if missing:
            raise ValueError(f"presets: {self.name} lacks {sorted(missing)}")
        if self.default_preset not in self.presets:
            raise ValueError(f"default_preset: {self.default_preset!r} is not in presets")
        if self.pretraining is not None and not self.cls.has_pretraining():
            raise ValueError(f"pretraining: {self.cls.__name__} defines no pretraining_loss")

    @property
    def surface_kind(self) -> str:
        """``"sdf"`` or ``"occupancy"``: what the model's fields return."""
        return self.cls.surface_kind

    @property
    def surface_level(self) -> float:
        """The iso-level of the surface (0 for an SDF, ``tau`` for an occupancy)."""
        return self.cls.surface_level

    def preset(self, name: str | None = None, **overrides: Any) -> dict[str, Any]:
        """The constructor arguments of preset ``name`` (default ``default_preset``)
        updated with ``overrides``: a copy (editing a nested value, such as a preset's
        ``loss_weights``, leaves the registered preset as it is)."""
        name = self.default_preset if name is None else name
        if name not in self.presets:
            raise ValueError(f"preset: expected one of {sorted(self.presets)}, got {name!r}")
        return {**copy.deepcopy(self.presets[name]), **overrides}

    def build(self, preset: str | None = None, **overrides: Any) -> ReconstructionModel:
        """A new model from a preset (and overrides)."""
        return self.cls(**self.preset(preset, **overrides))

    def checkpoint_path(self) -> Path | None:
        """The shipped checkpoint's path, or ``None`` where none is shipped (or the file
        is absent from this installation)."""
        if self.checkpoint is None:
            return None
        path = Path(str(resources.files("svrecon") / "checkpoints" / self.checkpoint))
        return path if path.is_file() else None


_REGISTRY: dict[str, ModelSpec] = {}
#: The registered models by name (read-only view; add with :func:`register_model`).
MODELS: Mapping[str, ModelSpec] = MappingProxyType(_REGISTRY)


def register_model(spec: ModelSpec, *, replace: bool = False) -> ModelSpec:
    """Add ``spec`` to :data:`MODELS`; a second model of the same name is refused unless
    ``replace``. Returns ``spec``."""
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec: expected a ModelSpec, got {type(spec).__name__}")
    if spec.name in _REGISTRY and not replace and _REGISTRY[spec.name] is not spec:
        raise ValueError(f"name: a model {spec.name!r} is registered already")
    _REGISTRY[spec.name] = spec
    return spec


def unregister_model(name: str) -> None:
    """Remove a model (tests that register toy models clean up with this)."""
    _REGISTRY.pop(name, None)


def get_model(name: str) -> ModelSpec:
    """The registered model ``name``; an unknown name lists the known ones."""
    if name not in _REGISTRY:
        raise ValueError(f"model: expected one of {sorted(_REGISTRY)}, got {name!r}")
    return _REGISTRY[name]


def build_model(
    name: str, kwargs: Mapping[str, Any] | None = None, preset: str | None = None
) -> ReconstructionModel:
    """Build model ``name``: with ``kwargs`` as its full constructor arguments, or from
    ``preset`` (default: the spec's default preset) when ``kwargs`` is ``None``."""
    spec = get_model(name)
    if kwargs is not None:
        if preset is not None:
            raise ValueError("kwargs, preset: give one of them")
        return spec.cls(**kwargs)
    return spec.build(preset)


def spec_of(model: ReconstructionModel) -> ModelSpec:
    """The registered spec whose class ``model`` is an instance of (exact class first)."""
    for spec in _REGISTRY.values():
        if type(model) is spec.cls:
            return spec
    for spec in _REGISTRY.values():
        if isinstance(model, spec.cls):
            return spec
    raise ValueError(f"model: {type(model).__name__} is not a registered model")
