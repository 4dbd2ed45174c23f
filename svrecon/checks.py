"""Small input checks shared by every public function.

Every error names the argument, the expected shape and the received shape, e.g.

    ValueError: points: expected shape [B=4, N, 3], got [3, 100, 3]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

Dim = int | str


def _format_spec(spec: Sequence[Dim], dims: dict[str, int]) -> str:
    parts = []
    for d in spec:
        if isinstance(d, str) and d != "..." and d in dims:
            parts.append(f"{d}={dims[d]}")
        else:
            parts.append(str(d))
    return "[" + ", ".join(parts) + "]"


def check_shape(
    name: str,
    tensor: torch.Tensor,
    spec: Sequence[Dim],
    dims: dict[str, int] | None = None,
) -> dict[str, int]:
    """Check ``tensor.shape`` against ``spec`` and return the bound named sizes.

    ``spec`` holds ints (exact sizes), strings (named sizes, bound on first use and
    required to agree across calls sharing ``dims``) and optionally a leading ``"..."``
    for any number of leading dimensions.
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(tensor).__name__}")
    dims = {} if dims is None else dims
    shape = tuple(tensor.shape)
    spec = tuple(spec)
    leading = spec[:1] == ("...",)
    core = spec[1:] if leading else spec
    expected = _format_spec(spec, dims)
    ok = len(shape) >= len(core) if leading else len(shape) == len(core)
    if ok:
        tail = shape[len(shape) - len(core) :]
        bound: dict[str, int] = {}
        for want, got in zip(core, tail, strict=True):
            if isinstance(want, int):
                ok = ok and want == got
            else:
                ref = dims.get(want, bound.get(want))
                if ref is None:
                    bound[want] = got
                else:
                    ok = ok and ref == got
        if ok:
            dims.update(bound)
            return dims
    raise ValueError(f"{name}: expected shape {expected}, got {list(shape)}")


def as_float(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` as a floating-point tensor: integer and bool values are promoted to
    the default float dtype (never computed in integer arithmetic), floating tensors
    are returned as they are, complex ones are refused by name."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(tensor).__name__}")
    if tensor.is_complex():
        raise ValueError(f"{name}: expected real values, got dtype {tensor.dtype}")
    if not tensor.is_floating_point():
        return tensor.to(torch.get_default_dtype())
    return tensor


def as_floats(*named: tuple[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """Several ``(name, tensor)`` as floating-point tensors of one dtype: integers
    promoted (:func:`as_float`), then all cast to the widest of their dtypes."""
    tensors = [as_float(name, tensor) for name, tensor in named]
    dtype = tensors[0].dtype
    for tensor in tensors[1:]:
        dtype = torch.promote_types(dtype, tensor.dtype)
    return tuple(tensor.to(dtype) for tensor in tensors)


def refuse_items(name: str, bad: torch.Tensor, reason: str) -> None:
    """Raise ``ValueError`` naming the items where ``bad`` ``[B]`` holds (a score that
    is undefined there: never NaN). Reads the values: one host synchronisation."""
    items = bad.nonzero().flatten().tolist()
    if items:
        raise ValueError(f"{name}: item(s) {items} {reason}")


def check_finite(name: str, tensor: torch.Tensor) -> None:
    """Raise ``ValueError`` if ``tensor`` holds NaN or infinite values."""
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name}: contains NaN or infinite values")


def batch_index(index, length: int):
    """Turn an integer batch index into a slice, so indexing keeps the batch dimension."""
    if not isinstance(index, int):
        return index
    if not -length <= index < length:
        raise IndexError(f"index {index} out of range for a batch of {length}")
    index %= length
    return slice(index, index + 1)


def safe_eps(dtype: torch.dtype) -> float:
    """A small positive threshold for degeneracy tests at ``dtype``'s precision."""
    return 1e-12 if dtype == torch.float64 else 1e-6


def check_rotation(name: str, matrix: torch.Tensor, tol: float | None = None) -> None:
    """Raise ``ValueError`` unless every ``[..., 3, 3]`` block of ``matrix`` is a proper
    rotation: finite, ``R^T R = I`` within ``tol`` (default ``1e-7`` for float64,
    ``1e-3`` for lower precision; pass ``1e-3`` for a float32 rotation cast to float64),
    and ``det R > 0``. (It reads the values: a host synchronisation, for inputs, not
    for hot paths.)"""
    if matrix.numel() == 0:
        return
    if not torch.isfinite(matrix).all():
        raise ValueError(f"{name}: contains NaN or infinite values, not a rotation")
    eye = torch.eye(3, dtype=matrix.dtype, device=matrix.device)
    if tol is None:
        tol = 1e-7 if matrix.dtype == torch.float64 else 1e-3
    gram = matrix.transpose(-1, -2) @ matrix
    if (gram - eye).abs().amax() > tol or (torch.det(matrix) <= 0).any():
        raise ValueError(
            f"{name}: expected rotation matrices (orthonormal, det +1); got a zero, "
            "scaled, sheared or reflecting matrix"
        )


def as_dtype_of(name: str, tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """``tensor`` for layers whose weights are ``dtype``: integer and bool values are
    promoted to it; a floating dtype other than ``dtype`` is refused by name (torch
    would fail inside a layer with a message that names no argument). Under
    ``torch.autocast`` (which casts a layer's inputs itself) and with ``dtype=None``
    (no weights) integers are promoted (:func:`as_float`) and floats pass as they are."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(tensor).__name__}")
    if dtype is None or torch.is_autocast_enabled(tensor.device.type):
        return as_float(name, tensor)
    if not tensor.is_floating_point():
        return as_float(name, tensor).to(dtype)
    if tensor.dtype != dtype:
        raise ValueError(
            f"{name}: dtype {tensor.dtype} differs from the weights' {dtype}; convert one "
            "to the other (for lower precision, keep the inputs and use torch.autocast)"
        )
    return tensor


def parameter_dtype(module: torch.nn.Module) -> torch.dtype | None:
    """The dtype of ``module``'s first parameter (``None`` without parameters)."""
    first = next(module.parameters(), None)
    return None if first is None else first.dtype


def check_class_labels(name: str, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``labels`` as int64 class indices in ``[0, num_classes)``: whole-valued floats
    are accepted, fractional values and values out of range refused by name (never
    truncated or left to an index error). Reads the values: one host synchronisation."""
    if labels.is_floating_point() and not torch.equal(labels, labels.round()):
        raise ValueError(f"{name}: expected whole numbers, got {labels.tolist()}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{name}: expected values in [0, {num_classes}), got {labels.tolist()}")
    return labels.long()
