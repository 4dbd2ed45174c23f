"""Rotation parameterisations, batched and differentiable.

All matrices are ``[..., 3, 3]`` and act on column vectors (``x' = R @ x``). Euler
conventions follow :class:`scipy.spatial.transform.Rotation`: three letters from
``xyz``; upper case is intrinsic (rotations about the moving axes, ``"XYZ"`` gives
``R = Rx(a) @ Ry(b) @ Rz(c)``), lower case is extrinsic (about the fixed axes,
``"xyz"`` gives ``R = Rz(c) @ Ry(b) @ Rx(a)``). Angles are in radians.
"""

from __future__ import annotations

from typing import Literal

import torch

from ..checks import as_float, as_floats, check_rotation, check_shape, safe_eps

__all__ = [
    "axis_angle_to_matrix",
    "euler_to_matrix",
    "euler_trig_to_matrix",
    "look_at",
    "matrix_to_axis_angle",
    "matrix_to_euler",
    "matrix_to_euler_trig",
    "matrix_to_rotation_6d",
    "rotation_6d_to_matrix",
]

_AXIS_INDEX = {"x": 0, "y": 1, "z": 2}


def _parse_convention(convention: str) -> tuple[list[int], bool]:
    """Return (axis indices in order of application as written, intrinsic?)."""
    if not isinstance(convention, str) or len(convention) != 3:
        raise ValueError(f"convention: expected 3 letters from 'xyz' or 'XYZ', got {convention!r}")
    if convention.isupper():
        intrinsic = True
    elif convention.islower():
        intrinsic = False
    else:
        raise ValueError(
            f"convention: mixes intrinsic (upper case) and extrinsic (lower case): {convention!r}"
        )
    try:
        axes = [_AXIS_INDEX[c] for c in convention.lower()]
    except KeyError:
        raise ValueError(f"convention: letters must be x, y or z, got {convention!r}") from None
    if axes[0] == axes[1] or axes[1] == axes[2]:
        raise ValueError(f"convention: consecutive axes must differ, got {convention!r}")
    return axes, intrinsic


def _levi_civita(i: int, j: int, k: int) -> int:
    return 1 if (i, j, k) in ((0, 1, 2), (1, 2, 0), (2, 0, 1)) else -1


def _axis_rotation(axis: int, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Right-handed rotation about a coordinate axis, from cos and sin ``[...]``."""
    one, zero = torch.ones_like(cos), torch.zeros_like(cos)
    if axis == 0:
        rows = ((one, zero, zero), (zero, cos, -sin), (zero, sin, cos))
    elif axis == 1:
        rows = ((cos, zero, sin), (zero, one, zero), (-sin, zero, cos))
    else:
        rows = ((cos, -sin, zero), (sin, cos, zero), (zero, zero, one))
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def _compose(axes: list[int], intrinsic: bool, cos: torch.Tensor, sin: torch.Tensor):
    mats = [_axis_rotation(a, cos[..., n], sin[..., n]) for n, a in enumerate(axes)]
    if intrinsic:
        return mats[0] @ mats[1] @ mats[2]
    return mats[2] @ mats[1] @ mats[0]


def euler_to_matrix(angles: torch.Tensor, convention: str) -> torch.Tensor:
    """Euler angles ``[..., 3]`` (radians) to rotation matrices ``[..., 3, 3]``.

    ``convention`` uses scipy's strings (see module docstring); all 12 sequences
    (6 Tait-Bryan such as ``"XYZ"``, 6 proper Euler such as ``"ZXZ"``) are supported.
    """
    check_shape("angles", angles, ("...", 3))
    axes, intrinsic = _parse_convention(convention)
    return _compose(axes, intrinsic, torch.cos(angles), torch.sin(angles))


def _unit(v: torch.Tensor, message: str) -> torch.Tensor:
    """``v / |v|`` over the last dimension; ``ValueError(message)`` where ``|v|`` vanishes."""
    norm = v.norm(dim=-1, keepdim=True)
    if (norm <= safe_eps(v.dtype)).any():
        raise ValueError(message)
    return v / norm


def _normalize_trig(trig: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = _unit(
        trig.unflatten(-1, (3, 2)), f"{name}: a (cos, sin) pair has zero norm and gives no angle"
    )
    return pairs[..., 0], pairs[..., 1]


def euler_trig_to_matrix(trig: torch.Tensor, convention: str) -> torch.Tensor:
    """Euler angles given as three ``(cos, sin)`` pairs ``[..., 6]`` to ``[..., 3, 3]``.

    Layout ``[cos a, sin a, cos b, sin b, cos c, sin c]`` for the three angles of
    ``convention``. Each pair is normalised first, so an unconstrained network output
    (Cat3D, ShapeClipper viewpoint heads) always gives a rotation. A zero pair raises.
    """
    trig = as_float("trig", trig)
    check_shape("trig", trig, ("...", 6))
    axes, intrinsic = _parse_convention(convention)
    cos, sin = _normalize_trig(trig, "trig")
    return _compose(axes, intrinsic, cos, sin)


def _safe_atan2(y: torch.Tensor, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    # atan2's gradient is 0/0 at the origin; feed a harmless value where invalid.
    return torch.atan2(torch.where(valid, y, torch.zeros_like(y)), torch.where(valid, x, 1.0))


def _safe_hypot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.sqrt((a * a + b * b).clamp_min(torch.finfo(a.dtype).tiny))


def _intrinsic_matrix_to_euler(R: torch.Tensor, axes: list[int]) -> torch.Tensor:
    i, j, last = axes
    proper = i == last
    k = 3 - i - j  # the axis not among the first two
    s = float(_levi_civita(i, j, k))
    tol = 1e-7 if R.dtype == torch.float64 else 1e-4
    if proper:  # R = Ri(a) Rj(b) Ri(c)
        sin_b = _safe_hypot(R[..., i, j], R[..., i, k])
        b = torch.atan2(sin_b, R[..., i, i])
        locked = sin_b < tol
        a = _safe_atan2(R[..., j, i], -s * R[..., k, i], ~locked)
        c = _safe_atan2(R[..., i, j], s * R[..., i, k], ~locked)
    else:  # R = Ri(a) Rj(b) Rk(c)
        cos_b = _safe_hypot(R[..., i, i], R[..., i, j])
        b = torch.atan2(s * R[..., i, k], cos_b)
        locked = cos_b < tol
        a = _safe_atan2(-s * R[..., j, k], R[..., k, k], ~locked)
        c = _safe_atan2(-s * R[..., i, j], R[..., i, i], ~locked)
    # Gimbal lock: only a + c (or a - c) is defined; set c = 0 and read a from R e_j.
    a_locked = _safe_atan2(s * R[..., k, j], R[..., j, j], locked)
    a = torch.where(locked, a_locked, a)
    c = torch.where(locked, torch.zeros_like(c), c)
    return torch.stack([a, b, c], dim=-1)


def matrix_to_euler(matrix: torch.Tensor, convention: str) -> torch.Tensor:
    """Rotation matrices ``[..., 3, 3]`` to Euler angles ``[..., 3]`` (radians).

    The first and third angles lie in ``(-pi, pi]``; the middle one in
    ``[-pi/2, pi/2]`` (Tait-Bryan) or ``[0, pi]`` (proper Euler). In gimbal lock the
    last-applied angle of an intrinsic sequence (the first of an extrinsic one) is
    set to zero; ``euler_to_matrix`` of the result still reproduces ``matrix``.
    """
    check_shape("matrix", matrix, ("...", 3, 3))
    check_rotation("matrix", matrix)
    axes, intrinsic = _parse_convention(convention)
    if intrinsic:
        return _intrinsic_matrix_to_euler(matrix, axes)
    # Extrinsic (a, b, c) about axes (p, q, r) equals intrinsic (c, b, a) about (r, q, p).
    return _intrinsic_matrix_to_euler(matrix, axes[::-1]).flip(-1)


def matrix_to_euler_trig(matrix: torch.Tensor, convention: str) -> torch.Tensor:
    """Inverse of :func:`euler_trig_to_matrix`: ``[..., 3, 3]`` to ``[..., 6]``."""
    angles = matrix_to_euler(matrix, convention)
    return torch.stack([angles.cos(), angles.sin()], dim=-1).flatten(-2)


def rotation_6d_to_matrix(
    d6: torch.Tensor, layout: Literal["columns", "rows"] = "columns"
) -> torch.Tensor:
    """The 6D representation ``[..., 6]`` to rotations ``[..., 3, 3]``.

    Gram-Schmidt on ``d6 = [a1, a2]``: ``x = a1/|a1|``, ``z = N(x x a2)``,
    ``y = z x x``. ``layout="columns"``: ``R = [x | y | z]`` (Zhou et al., CVPR 2019);
    ``layout="rows"``: ``x, y, z`` are the rows of ``R`` (DISN Eq. 1 and its code,
    which computes ``points @ [x | y | z]``; PyTorch3D also uses rows). Raises
    ``ValueError`` when ``a1`` has zero norm or ``a2`` is parallel to it.
    """
    if layout not in ("columns", "rows"):
        raise ValueError(f"layout: expected 'columns' or 'rows', got {layout!r}")
    d6 = as_float("d6", d6)
    check_shape("d6", d6, ("...", 6))
    a1, a2 = d6[..., :3], d6[..., 3:]
    x = _unit(a1, "d6: the first 3-vector has zero norm; no rotation can be built")
    z = _unit(torch.linalg.cross(x, a2), "d6: the second 3-vector is zero or parallel to the first")
    y = torch.linalg.cross(z, x)
    return torch.stack([x, y, z], dim=-1 if layout == "columns" else -2)


def matrix_to_rotation_6d(
    matrix: torch.Tensor, layout: Literal["columns", "rows"] = "columns"
) -> torch.Tensor:
    """Rotation matrices ``[..., 3, 3]`` to the 6D representation ``[..., 6]``: the
    first two columns (or rows) of each, the inverse of :func:`rotation_6d_to_matrix`."""
    check_shape("matrix", matrix, ("...", 3, 3))
    check_rotation("matrix", matrix)
    if layout not in ("columns", "rows"):
        raise ValueError(f"layout: expected 'columns' or 'rows', got {layout!r}")
    if layout == "rows":
        return torch.cat([matrix[..., 0, :], matrix[..., 1, :]], dim=-1)
    return torch.cat([matrix[..., :, 0], matrix[..., :, 1]], dim=-1)


def _hat(v: torch.Tensor) -> torch.Tensor:
    zero = torch.zeros_like(v[..., 0])
    x, y, z = v.unbind(-1)
    rows = ((zero, -z, y), (z, zero, -x), (-y, x, zero))
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rotation vectors ``[..., 3]`` (axis times angle, radians) to ``[..., 3, 3]``.

    Rodrigues' formula ``R = I + A K + B K^2`` with ``A = sin(t)/t`` and
    ``B = (1 - cos t)/t^2``, using Taylor series near ``t = 0`` so that values and
    gradients stay finite at the identity.
    """
    check_shape("axis_angle", axis_angle, ("...", 3))
    theta2 = (axis_angle * axis_angle).sum(-1)
    small = theta2 < 1e-6
    # The unselected branch must stay finite too, or its zero gradient becomes NaN.
    theta2_safe = torch.where(small, torch.ones_like(theta2), theta2)
    theta = torch.sqrt(theta2_safe)
    a = torch.where(small, 1 - theta2 / 6 + theta2**2 / 120, torch.sin(theta) / theta)
    b = torch.where(
        small, 0.5 - theta2 / 24 + theta2**2 / 720, (1 - torch.cos(theta)) / theta2_safe
    )
    K = _hat(axis_angle)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + a[..., None, None] * K + b[..., None, None] * (K @ K)


def _matrix_to_quaternion(R: torch.Tensor) -> torch.Tensor:
    """``[..., 3, 3]`` to unit quaternions ``[..., 4]`` as (w, x, y, z) with w >= 0."""
    r00, r01, r02 = R[..., 0, 0], R[..., 0, 1], R[..., 0, 2]
    r10, r11, r12 = R[..., 1, 0], R[..., 1, 1], R[..., 1, 2]
    r20, r21, r22 = R[..., 2, 0], R[..., 2, 1], R[..., 2, 2]
    # 4 w^2, 4 x^2, 4 y^2, 4 z^2 from the diagonal; pick the largest to divide by.
    sq = torch.stack(
        [1 + r00 + r11 + r22, 1 + r00 - r11 - r22, 1 - r00 + r11 - r22, 1 - r00 - r11 + r22],
        dim=-1,
    )
    two_abs = torch.sqrt(sq.clamp_min(torch.finfo(R.dtype).tiny))  # 2|w|, 2|x|, 2|y|, 2|z|
    candidates = torch.stack(
        [
            torch.stack([sq[..., 0], r21 - r12, r02 - r20, r10 - r01], dim=-1),
            torch.stack([r21 - r12, sq[..., 1], r10 + r01, r02 + r20], dim=-1),
            torch.stack([r02 - r20, r10 + r01, sq[..., 2], r12 + r21], dim=-1),
            torch.stack([r10 - r01, r20 + r02, r21 + r12, sq[..., 3]], dim=-1),
        ],
        dim=-2,
    )
    # The largest of the four is >= 1, so clamping the others never changes the pick.
    candidates = candidates / (2 * two_abs.clamp_min(0.1))[..., None]
    best = sq.argmax(dim=-1, keepdim=True)
    q = torch.gather(candidates, -2, best[..., None].expand(*best.shape, 4)).squeeze(-2)
    return torch.where(q[..., :1] < 0, -q, q)


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``[..., 3, 3]`` to rotation vectors ``[..., 3]``.

    The angle lies in ``[0, pi]``; at exactly ``pi`` the sign of the axis is
    arbitrary (both describe the same rotation).
    """
    check_shape("matrix", matrix, ("...", 3, 3))
    check_rotation("matrix", matrix)
    q = _matrix_to_quaternion(matrix)
    w, v = q[..., 0], q[..., 1:]
    n = _safe_hypot(v.norm(dim=-1), torch.zeros_like(w))
    small = n < 1e-6
    n_safe = torch.where(small, torch.ones_like(n), n)
    # angle / sin(angle / 2) = 2 atan2(n, w) / n, with its series 2/w - 2n^2/(3 w^3) at n -> 0.
    ratio = torch.where(small, 2 / w - 2 * n**2 / (3 * w**3), 2 * torch.atan2(n, w) / n_safe)
    return v * ratio[..., None]


def look_at(eye: torch.Tensor, target: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """World-to-camera poses ``[B, 3, 4]`` of cameras at ``eye`` looking at ``target``.

    Shapes: ``eye``, ``target``, ``up`` are ``[B, 3]``. OpenCV frame: camera z points
    from ``eye`` to ``target``, y points down (away from ``up``), x to the right, so
    that ``up`` appears upward in the image. Raises when ``eye == target`` or when the
    viewing direction is parallel to ``up``.
    """
    eye, target, up = as_floats(("eye", eye), ("target", target), ("up", up))
    dims = check_shape("eye", eye, ("B", 3))
    check_shape("target", target, ("B", 3), dims)
    check_shape("up", up, ("B", 3), dims)
    z = _unit(target - eye, "eye, target: a camera's eye equals its target; no viewing direction")
    x = _unit(
        torch.linalg.cross(z, up),
        "up: parallel to the viewing direction (or zero); the roll is undefined",
    )
    y = torch.linalg.cross(z, x)
    R = torch.stack([x, y, z], dim=-2)
    t = -(R @ eye[..., None])[..., 0]
    return torch.cat([R, t[..., None]], dim=-1)
