"""Lambertian shading under spherical-harmonics lighting (MSU, Sec. 3.3; Ramamoorthi &
Hanrahan 2001), with the constants of the MSU lab's face-3DMM code."""

from __future__ import annotations

import math

import torch

from ..checks import as_float, check_shape

__all__ = ["FACE3DMM_SH_CONSTANTS", "SH_CONSTANTS", "sh_basis", "sh_shading"]

#: The Lambertian-convolved constants ``A_l * Y_lm`` of the nine bases, in basis order
#: (Ramamoorthi & Hanrahan 2001: A_0 = pi, A_1 = 2 pi / 3, A_2 = pi / 4), so that
#: ``sh_basis(n) @ L`` is the irradiance of the radiance ``sum_lm L_lm Y_lm``.
SH_CONSTANTS = (
    math.pi / math.sqrt(4 * math.pi),  # band 0: A_0 Y_00
    (2 * math.pi / 3) * math.sqrt(3 / (4 * math.pi)),  # band 1: n_z, n_y, n_x
    (math.pi / 4) * 0.5 * math.sqrt(5 / (4 * math.pi)),  # 2 n_z^2 - n_x^2 - n_y^2
    (math.pi / 4) * 3 * math.sqrt(5 / (12 * math.pi)),  # n_y n_z, n_x n_z, n_x n_y
    (math.pi / 4) * 1.5 * math.sqrt(5 / (12 * math.pi)),  # n_x^2 - n_y^2
)
#: The MSU lab's face-3DMM code's constants: band 0 without A_0 = pi (it only rescales
#: the learned ambient coefficient).
FACE3DMM_SH_CONSTANTS = (1 / math.sqrt(4 * math.pi), *SH_CONSTANTS[1:])
_CONSTANTS = {"lambertian": SH_CONSTANTS, "face3dmm": FACE3DMM_SH_CONSTANTS}


def sh_basis(normals: torch.Tensor, convention: str = "lambertian") -> torch.Tensor:
    """The nine Lambertian SH bases ``[..., 9]`` of unit normals ``[..., 3]``.

    Order: ``c0``, ``c1 n_z``, ``c1 n_y``, ``c1 n_x``, ``c2 (2 n_z^2 - n_x^2 - n_y^2)``,
    ``c3 n_y n_z``, ``c3 n_x n_z``, ``c3 n_x n_y``, ``c4 (n_x^2 - n_y^2)`` with the
    constants ``(c0, c1, c2, c3, c4)``: :data:`SH_CONSTANTS` for
    ``convention="lambertian"`` (Ramamoorthi & Hanrahan, the default) or
    :data:`FACE3DMM_SH_CONSTANTS` for ``"face3dmm"`` (the MSU lab's code, band 0
    without the factor pi).
    """
    check_shape("normals", normals, ("...", 3))
    if convention not in _CONSTANTS:
        raise ValueError(f"convention: expected one of {sorted(_CONSTANTS)}, got {convention!r}")
    if not normals.is_floating_point():
        normals = normals.to(torch.get_default_dtype())  # never integer arithmetic
    x, y, z = normals.unbind(-1)
    c0, c1, c2, c3, c4 = _CONSTANTS[convention]
    return torch.stack(
        [
            torch.full_like(x, c0),
            c1 * z,
            c1 * y,
            c1 * x,
            c2 * (2 * z * z - x * x - y * y),
            c3 * y * z,
            c3 * x * z,
            c3 * x * y,
            c4 * (x * x - y * y),
        ],
        dim=-1,
    )


def sh_shading(
    normals: torch.Tensor, coefficients: torch.Tensor, convention: str = "lambertian"
) -> torch.Tensor:
    """Per-channel shading ``[B, ..., 3]`` of normals ``[B, ..., 3]``.

    ``coefficients`` is ``[B, 27]`` (colour-major: the nine coefficients of red, then
    green, then blue) or ``[B, 3, 9]``; ``convention`` as :func:`sh_basis`.
    ``shading[..., c] = sum_k coefficients[c, k] * sh_basis(n)[k]``; the rendered colour
    is ``albedo * shading``.
    """
    normals = as_float("normals", normals)
    coefficients = as_float("coefficients", coefficients)
    check_shape("normals", normals, ("...", 3))
    if normals.dim() < 2:
        raise ValueError(f"normals: expected shape [B, ..., 3], got {list(normals.shape)}")
    b = normals.shape[0]
    if coefficients.dim() == 2:
        check_shape("coefficients", coefficients, (b, 27))
        coefficients = coefficients.reshape(b, 3, 9)
    else:
        check_shape("coefficients", coefficients, (b, 3, 9))
    basis = sh_basis(normals, convention).to(coefficients.dtype)  # [B, ..., 9]
    flat = basis.reshape(b, math.prod(basis.shape[1:-1]), 9)
    return (flat @ coefficients.transpose(1, 2)).reshape(*normals.shape[:-1], 3)
