"""Azimuth / elevation / roll to pose, in each seed repository's convention.

Every preset builds a world-to-camera pose ``[B, 3, 4]`` (OpenCV frame) with the
object at the world origin and the camera at ``distance`` along its optical axis,
``t = (0, 0, distance)``, and a rotation ``R = E(angles) @ P`` where ``E`` is an
intrinsic Euler sequence of the (mapped) angles and ``P`` a fixed axis permutation:

==================== ================================================ ======================
preset               rotation                                         source
==================== ================================================ ======================
``nmr``              ``Rz(pi + roll) Rx(-elevation) Ry(azimuth)``     Neural Mesh Renderer's
                     (camera at ``d (cos e sin a, sin e, -cos e       ``get_points_from_angles``
                     cos a)`` looking at the origin, y up)            + look-at, y-up world
``cat3d``            ``Rz(roll) Rx(elevation) Ry(azimuth)``           cat-3d ``euler2mat``;
                                                                      ShapeNet-13 uses
                                                                      elevation -pi/6, roll pi
``shapeclipper``     ``Rz(-roll) Rx(elevation) Ry(azimuth) P``,       ShapeClipper
                     ``P = [[-1,0,0],[0,0,-1],[0,-1,0]]``             ``pred_pose``
``sdf_srn_pascal3d`` ``Rz(-theta) Rx(elevation - pi/2) Rz(azimuth)    SDF-SRN Pascal3D+
                     P``, ``P = [[0,0,1],[-1,0,0],[0,1,0]]``          ``get_camera``
                     (``roll`` is Pascal3D+'s in-plane ``theta``)      (orthographic)
==================== ================================================ ======================

Cat3D's ShapeNet-13 camera (elevation -pi/6, roll pi) equals ``nmr`` at elevation
+pi/6, which the tests check. Rx, Ry, Rz are right-handed axis rotations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..checks import check_shape
from .rotations import euler_trig_to_matrix

__all__ = ["POSE_PRESETS", "PosePreset", "pose_from_angle_trig", "pose_from_angles"]

Pair = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class PosePreset:
    """How one seed turns (azimuth, elevation, roll) into ``R = E(angles) @ P``."""

    name: str
    convention: str  # intrinsic Euler sequence of ``E``
    # maps the (cos, sin) pairs of azimuth, elevation, roll to E's three pairs
    map_angles: Callable[[Pair, Pair, Pair], tuple[Pair, Pair, Pair]]
    permutation: tuple[tuple[float, ...], ...] | None
    source: str


def _neg(p: Pair) -> Pair:
    return p[0], -p[1]


def _plus_pi(p: Pair) -> Pair:
    return -p[0], -p[1]


def _minus_half_pi(p: Pair) -> Pair:
    return p[1], -p[0]


POSE_PRESETS: dict[str, PosePreset] = {
    p.name: p
    for p in (
        PosePreset(
            "nmr",
            "ZXY",
            lambda a, e, r: (_plus_pi(r), _neg(e), a),
            None,
            "daniilidis-group/neural_renderer get_points_from_angles + look_at (y up)",
        ),
        PosePreset(
            "cat3d",
            "ZXY",
            lambda a, e, r: (r, e, a),
            None,
            "zxhuang1698/cat-3d utils/util_cam.py euler2mat, model/graph.py azim2mat",
        ),
        PosePreset(
            "shapeclipper",
            "ZXY",
            lambda a, e, r: (_neg(r), e, a),
            ((-1.0, 0.0, 0.0), (0.0, 0.0, -1.0), (0.0, -1.0, 0.0)),
            "zxhuang1698/ShapeClipper model/graph.py pred_pose",
        ),
        PosePreset(
            "sdf_srn_pascal3d",
            "ZXZ",
            lambda a, e, r: (_neg(r), _minus_half_pi(e), a),
            ((0.0, 0.0, 1.0), (-1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
            "chenhsuanlin/signed-distance-SRN data/pascal3d.py get_camera",
        ),
    )
}


def _get_preset(preset: str) -> PosePreset:
    try:
        return POSE_PRESETS[preset]
    except KeyError:
        raise ValueError(
            f"preset: expected one of {sorted(POSE_PRESETS)}, got {preset!r}"
        ) from None


def pose_from_angle_trig(preset: str, trig: torch.Tensor, distance) -> torch.Tensor:
    """Pose ``[B, 3, 4]`` from ``(cos, sin)`` pairs of azimuth, elevation and roll.

    Args:
        preset: a key of :data:`POSE_PRESETS`.
        trig: ``[B, 6]`` = ``[cos a, sin a, cos e, sin e, cos r, sin r]``; each pair
            is normalised, so a viewpoint head's raw output can be passed directly.
        distance: camera-to-origin distance, a number or ``[B]``.
    """
    spec = _get_preset(preset)
    dims = check_shape("trig", trig, ("B", 6))
    # Each mapping only swaps and negates entries, so pair norms are kept and
    # euler_trig_to_matrix normalises (and rejects zero pairs) for us.
    pairs = trig.unflatten(-1, (3, 2))
    a, e, r = ((pairs[:, n, 0], pairs[:, n, 1]) for n in range(3))
    mapped = spec.map_angles(a, e, r)
    euler_trig = torch.stack([x for pair in mapped for x in pair], dim=-1)
    R = euler_trig_to_matrix(euler_trig, spec.convention)
    if spec.permutation is not None:
        R = R @ torch.tensor(spec.permutation, dtype=trig.dtype, device=trig.device)
    d = torch.as_tensor(distance, dtype=trig.dtype, device=trig.device)
    d = d.expand(dims["B"]) if d.dim() == 0 else d
    check_shape("distance", d, (dims["B"],))
    t = torch.stack([torch.zeros_like(d), torch.zeros_like(d), d], dim=-1)
    return torch.cat([R, t[..., None]], dim=-1)


def pose_from_angles(preset: str, azimuth, elevation, roll, distance) -> torch.Tensor:
    """Pose ``[B, 3, 4]`` from azimuth, elevation and roll in radians (numbers or ``[B]``).

    At least one argument must be a tensor ``[B]``; numbers are broadcast to it.
    See the module docstring for each preset's exact formula.
    """
    values = [azimuth, elevation, roll, distance]
    like = next((v for v in values if isinstance(v, torch.Tensor)), None)
    if like is None:
        raise ValueError("azimuth, elevation, roll, distance: at least one must be a tensor [B]")
    dtype = like.dtype if like.is_floating_point() else torch.get_default_dtype()
    angles = []
    for name, v in zip(("azimuth", "elevation", "roll"), values[:3], strict=True):
        v = torch.as_tensor(v, dtype=dtype, device=like.device)
        if v.dim() > 1:
            raise ValueError(f"{name}: expected a number or shape [B], got {list(v.shape)}")
        angles.append(v)
    angles = torch.broadcast_tensors(*angles)
    trig = torch.stack([f(x) for x in angles for f in (torch.cos, torch.sin)], dim=-1)
    return pose_from_angle_trig(preset, trig.reshape(-1, 6), distance)
