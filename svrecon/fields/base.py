"""The one field contract: a field maps points ``[B, N, 3]`` to a :class:`FieldOutput`.

Renderers, mesh extraction, losses and metrics accept exactly this. Conditioned
networks (an SDF MLP with a latent code, DISN's decoder with image features, the MSU
joint occupancy field with its codes) become such a field with their ``bind`` method,
which returns a :class:`BoundField`; a plain function of ``[N, 3]`` points is wrapped
explicitly by :func:`field_from_function`.

Example::

    >>> net = SDFNetwork(latent_dim=8, hidden_dim=32, num_layers=2, skip_layers=(1,))
    >>> field = net.bind(torch.zeros(2, 8))      # codes bound: points -> FieldOutput
    >>> field(torch.rand(2, 100, 3)).sdf.shape
    torch.Size([2, 100])
    >>> sphere = field_from_function(lambda p: p.norm(dim=-1) - 0.5)  # [N, 3] -> [N]
    >>> sphere(torch.rand(1, 10, 3)).kind
    'sdf'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, Protocol

import torch

from ..checks import check_shape
from .output import FieldOutput

__all__ = ["BoundField", "Field", "call_field", "check_field_output", "field_from_function"]


class Field(Protocol):
    """Anything that maps points ``[B, N, 3]`` to a :class:`FieldOutput` whose tensors
    are ``[B, N, ...]``."""

    def __call__(self, points: torch.Tensor) -> FieldOutput: ...


def check_field_output(out, batch: int, count: int, who: str = "field(points)") -> FieldOutput:
    """Check that a field returned a :class:`FieldOutput` with values ``[batch, count]``;
    return it."""
    if not isinstance(out, FieldOutput):
        raise TypeError(
            f"{who}: expected a FieldOutput, got {type(out).__name__}; wrap a plain "
            "function with svrecon.fields.field_from_function"
        )
    if tuple(out.value.shape) != (batch, count):
        raise ValueError(
            f"{who}: expected values of shape [{batch}, {count}], got {list(out.value.shape)}"
        )
    return out


class BoundField:
    """A field with its codes bound: ``points [B, N, 3] -> FieldOutput``.

    Args:
        fn: the function doing the work, called with points ``[B, N, 3]``.
        batch_size: the number of instances the codes were bound for (``B``); points
            with another batch size are refused. ``None`` accepts any.
        kind: ``"sdf"`` or ``"occupancy"``, what ``fn`` returns (checked on each call);
            ``None`` when not known in advance (read it from the output).
    """

    __slots__ = ("batch_size", "fn", "kind")

    def __init__(
        self,
        fn: Callable[[torch.Tensor], FieldOutput],
        batch_size: int | None,
        kind: Literal["sdf", "occupancy"] | None,
    ) -> None:
        if kind not in ("sdf", "occupancy", None):
            raise ValueError(f"kind: expected 'sdf' or 'occupancy', got {kind!r}")
        self.fn, self.batch_size, self.kind = fn, batch_size, kind

    def __call__(self, points: torch.Tensor) -> FieldOutput:
        dims = check_shape("points", points, ("B", "N", 3))
        if self.batch_size is not None and dims["B"] != self.batch_size:
            raise ValueError(
                f"points: expected shape [B={self.batch_size}, N, 3] (the batch the codes "
                f"were bound for), got {list(points.shape)}"
            )
        out = check_field_output(self.fn(points), dims["B"], dims["N"])
        if self.kind is not None and out.kind != self.kind:
            raise ValueError(f"field: declared kind {self.kind!r}, returned {out.kind!r}")
        return out

    def __repr__(self) -> str:
        return f"BoundField(kind={self.kind!r}, batch_size={self.batch_size})"


def field_from_function(
    fn: Callable[[torch.Tensor], torch.Tensor],
    kind: Literal["sdf", "occupancy"] = "sdf",
) -> BoundField:
    """Wrap a plain function of points ``[N, 3] -> values [N]`` (an analytic SDF, a
    procedural shape, an occupancy test) as a field ``[B, N, 3] -> FieldOutput``.

    The points of every batch item are passed together as one ``[B * N, 3]`` tensor,
    so the function must treat points independently. The result accepts any batch
    size.
    """
    if kind not in ("sdf", "occupancy"):
        raise ValueError(f"kind: expected 'sdf' or 'occupancy', got {kind!r}")

    def field(points: torch.Tensor) -> FieldOutput:
        b, n = points.shape[:2]
        values = fn(points.reshape(-1, 3))
        if not isinstance(values, torch.Tensor) or tuple(values.shape) != (b * n,):
            got = list(values.shape) if isinstance(values, torch.Tensor) else type(values)
            raise ValueError(f"fn(points): expected values of shape [{b * n}], got {got}")
        return FieldOutput(**{kind: values.reshape(b, n)})

    return BoundField(field, None, kind)


def call_field(field: Field, points: torch.Tensor) -> FieldOutput:
    """Call ``field`` on points ``[B, ..., 3]`` (flattened to ``[B, N, 3]``) and shape
    its output back to ``[B, ..., *]``."""
    b, shape = points.shape[0], points.shape[1:-1]
    flat = points.reshape(b, math.prod(shape), 3)  # not -1: ambiguous when b is 0
    out = check_field_output(field(flat), b, flat.shape[1])
    return out.map(lambda t: t.reshape(b, *shape, *t.shape[2:]))
