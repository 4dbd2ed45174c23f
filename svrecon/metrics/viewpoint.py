"""Viewpoint errors of models that learn the viewpoint without annotations (Cat3D,
ShapeClipper): their canonical frame is their own, so their azimuths agree with the
truth only up to a rotation about the up axis and, for mirror-symmetric shapes, a
reflection. :func:`fit_azimuth_alignment` finds both (per category), and
:func:`azimuth_errors` reports the remaining error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..checks import check_shape

__all__ = ["AzimuthAlignment", "angle_difference", "azimuth_errors", "fit_azimuth_alignment"]


def angle_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a - b`` wrapped to ``(-180, 180]`` degrees (any broadcastable shapes)."""
    d = torch.remainder(a - b, 360.0)
    return torch.where(d > 180, d - 360, d)


@dataclass(frozen=True)
class AzimuthAlignment:
    """Per group: ``aligned = sign * predicted + offset`` (degrees); group ``None``
    is the alignment of every item when no groups were given."""

    sign: dict
    offset: dict

    def apply(self, predicted: torch.Tensor, groups: Sequence | None = None) -> torch.Tensor:
        """``predicted`` ``[N]`` (degrees) in the truth's frame."""
        keys = [None] * len(predicted) if groups is None else list(groups)
        missing = sorted({str(k) for k in keys if k not in self.sign})
        if missing:
            raise ValueError(f"groups: no alignment was fitted for {missing}")
        sign = predicted.new_tensor([self.sign[k] for k in keys])
        offset = predicted.new_tensor([self.offset[k] for k in keys])
        return sign * predicted + offset


def _check(predicted: torch.Tensor, truth: torch.Tensor, groups) -> None:
    dims = check_shape("predicted", predicted, ("N",))
    check_shape("truth", truth, (dims["N"],))
    if groups is not None and len(groups) != dims["N"]:
        raise ValueError(f"groups: expected {dims['N']} labels, got {len(groups)}")


def fit_azimuth_alignment(
    predicted: torch.Tensor,
    truth: torch.Tensor,
    groups: Sequence | None = None,
    reflection: bool = True,
) -> AzimuthAlignment:
    """The sign (``+1``, or ``-1`` with ``reflection``) and offset per group that
    minimise the mean absolute azimuth error (degrees, ``[N]`` each).

    For a fixed sign the optimum of the mean absolute circular error lies at one of the
    differences ``truth_i - sign * predicted_i`` (a circular median), so those are the
    candidates searched exhaustively.
    """
    _check(predicted, truth, groups)
    keys = [None] * len(predicted) if groups is None else list(groups)
    sign, offset = {}, {}
    for key in dict.fromkeys(keys):
        idx = torch.tensor([i for i, k in enumerate(keys) if k == key])
        p, t = predicted[idx].double(), truth[idx].double()
        best = None
        for s in (1.0, -1.0) if reflection else (1.0,):
            candidates = angle_difference(t, s * p)  # [n]
            cost = angle_difference(t[None], s * p[None] + candidates[:, None]).abs().mean(1)
            k = int(cost.argmin())
            if best is None or cost[k] < best[0]:
                best = (float(cost[k]), s, float(candidates[k]))
        sign[key], offset[key] = best[1], best[2]
    return AzimuthAlignment(sign, offset)


def azimuth_errors(
    predicted: torch.Tensor,
    truth: torch.Tensor,
    alignment: AzimuthAlignment | None = None,
    groups: Sequence | None = None,
) -> torch.Tensor:
    """Absolute azimuth errors ``[N]`` in ``[0, 180]`` degrees of ``predicted`` against
    ``truth`` (degrees, ``[N]`` each), after ``alignment`` when given (fitted on other
    items, or on these by :func:`fit_azimuth_alignment`)."""
    _check(predicted, truth, groups)
    if alignment is not None:
        predicted = alignment.apply(predicted, groups)
    return angle_difference(predicted, truth).abs()
