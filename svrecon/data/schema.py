"""The one item schema every dataset produces (``docs/data.md``), so that any model
trains and evaluates on any dataset: :data:`ITEM_SCHEMA`, :func:`validate_item` and
:func:`evaluation_indices`."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "ITEM_SCHEMA",
    "ItemKey",
    "check_batch",
    "check_images",
    "evaluation_indices",
    "surface_points_of",
    "validate_item",
]


@dataclass(frozen=True)
class ItemKey:
    """One key of an item: its shape (``H``, ``W``, ``N*`` are named sizes shared across
    keys), dtype kind, whether every dataset must give it, and what it holds."""

    shape: tuple
    kind: str  # "float", "bool", "int"
    required: bool
    meaning: str


ITEM_SCHEMA: dict[str, ItemKey] = {
    "image": ItemKey((3, "H", "W"), "float", True, "RGB in [0, 1], white background"),
    "mask": ItemKey(("H", "W"), "bool", True, "foreground silhouette"),
    "intrinsics": ItemKey((3, 3), "float", True, "K in pixels, pixel centres at +0.5"),
    "pose": ItemKey((3, 4), "float", True, "world-to-camera [R | t], OpenCV frame"),
    "label": ItemKey((), "int", True, "category index into dataset.categories"),
    "surface_points": ItemKey(
        ("Ns", 3), "float", False, "ground-truth surface, world units (needed to evaluate)"
    ),
    "surface_normals": ItemKey(("Ns", 3), "float", False, "unit outward normals"),
    "sdf_points": ItemKey(("Nd", 3), "float", False, "SDF sample positions"),
    "sdf_values": ItemKey(("Nd",), "float", False, "signed distance, negative inside"),
    "occupancy_points": ItemKey(("No", 3), "float", False, "occupancy sample positions"),
    "occupancy": ItemKey(("No",), "bool", False, "inside the shape"),
    "depth": ItemKey(("H", "W"), "float", False, "camera z-depth, 0 off the shape"),
    "normals_world": ItemKey((3, "H", "W"), "float", False, "unit normals, world frame"),
    "normals_camera": ItemKey((3, "H", "W"), "float", False, "unit normals, camera frame"),
    "normals_estimated": ItemKey(
        (3, "H", "W"), "float", False, "estimated (noisy) unit normals, camera frame"
    ),
    "part_labels": ItemKey(("H", "W"), "int", False, "part index, -1 off the shape"),
    "albedo": ItemKey((3, "H", "W"), "float", False, "albedo in [0, 1]"),
    "lighting": ItemKey((27,), "float", False, "SH coefficients, colour-major"),
    "azimuth": ItemKey((), "float", False, "radians"),
    "elevation": ItemKey((), "float", False, "radians"),
    "shape_index": ItemKey((), "int", False, "index of the shape in its dataset"),
    "view": ItemKey((), "int", False, "index of the view of the shape (-1: all)"),
}

_KINDS = {
    "float": lambda t: t.is_floating_point(),
    "bool": lambda t: t.dtype == torch.bool,
    "int": lambda t: not t.is_floating_point() and not t.is_complex() and t.dtype != torch.bool,
}


def validate_item(item: dict) -> None:
    """Check one (uncollated) item against :data:`ITEM_SCHEMA`: required keys present,
    shapes and dtype kinds right, named sizes consistent, floats finite, images and
    albedo in ``[0, 1]``. Raises ``ValueError`` naming the key."""
    sizes: dict[str, int] = {}
    for key, spec in ITEM_SCHEMA.items():
        if key not in item:
            if spec.required:
                raise ValueError(f"item: missing required key {key!r} ({spec.meaning})")
            continue
        value = item[key]
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{key}: expected a tensor, got {type(value).__name__}")
        ok = value.dim() == len(spec.shape)
        for want, got in zip(spec.shape, value.shape, strict=False):
            if isinstance(want, int):
                ok &= want == got
            else:
                ok &= sizes.setdefault(want, got) == got
        if not ok:
            raise ValueError(f"{key}: expected shape {list(spec.shape)} ({sizes}), "
                             f"got {list(value.shape)}")  # fmt: skip
        if not _KINDS[spec.kind](value):
            raise ValueError(f"{key}: expected a {spec.kind} tensor, got {value.dtype}")
        if spec.kind == "float" and not torch.isfinite(value).all():
            raise ValueError(f"{key}: contains NaN or infinite values")
    for key in ("image", "albedo"):
        if key in item and (item[key].min() < 0 or item[key].max() > 1):
            raise ValueError(f"{key}: expected values in [0, 1]")


def evaluation_indices(dataset, max_items: int | None = None) -> list[int]:
    """The items a dataset is evaluated on: ``dataset.evaluation_indices()`` where it
    defines it (one view per shape), else every item; the first ``max_items``."""
    pick = getattr(dataset, "evaluation_indices", None)
    indices = list(pick()) if pick is not None else list(range(len(dataset)))
    if max_items is not None:
        if max_items < 1:
            raise ValueError(f"max_items: expected >= 1, got {max_items}")
        indices = indices[:max_items]
    if not indices:
        raise ValueError("dataset: has no items to evaluate")
    return indices


def surface_points_of(item: dict) -> torch.Tensor:
    """The item's ground-truth ``surface_points`` ``[Ns, 3]``; ``ValueError`` for an item
    without them (an image collection trains but cannot be scored)."""
    points = item.get("surface_points")
    if points is None:
        raise ValueError(
            "dataset: its items have no 'surface_points' (ground truth), so it cannot be "
            "evaluated or fit a baseline; it can only train"
        )
    return points


def check_images(images: torch.Tensor, name: str = "image") -> dict[str, int]:
    """Check images entering a model from outside: ``[B, 3, H, W]``, floating point,
    finite, in ``[0, 1]`` (an 8-bit image divided by 255); ``ValueError`` naming
    ``name`` otherwise. Returns the sizes ``B``, ``H``, ``W``. (It reads the values: one
    host synchronisation, for inputs, not for hot paths.)"""
    from ..checks import check_shape

    if not isinstance(images, torch.Tensor):
        raise ValueError(f"{name}: expected a tensor [B, 3, H, W], got {type(images).__name__}")
    sizes = check_shape(name, images, ("B", 3, "H", "W"))
    if not images.is_floating_point():
        raise ValueError(
            f"{name}: expected floats in [0, 1], got {images.dtype} (divide 8-bit images by 255)"
        )
    if images.numel():
        if not torch.isfinite(images).all():
            raise ValueError(f"{name}: contains NaN or infinite values")
        if images.min() < 0 or images.max() > 1:
            raise ValueError(f"{name}: expected values in [0, 1] (divide 8-bit images by 255)")
    return sizes


def check_batch(batch: dict) -> None:
    """Check a collated batch's cross-key consistency before a model reads it: ``image``
    ``[B, 3, H, W]`` with values in ``[0, 1]``, ``mask`` ``[B, H, W]``, and every other
    per-item key with the same ``B`` and its schema's named sizes (``sdf_points`` and
    ``sdf_values`` the same ``Nd``, ...). Raises ``ValueError`` naming the key."""
    from ..checks import check_shape

    if "image" not in batch or not isinstance(batch["image"], torch.Tensor):
        raise ValueError("batch: expected an 'image' tensor [B, 3, H, W]")
    sizes = check_images(batch["image"])
    for key, spec in ITEM_SCHEMA.items():
        value = batch.get(key)
        if key == "image" or not isinstance(value, torch.Tensor):
            continue
        check_shape(key, value, ("B", *spec.shape), sizes)
