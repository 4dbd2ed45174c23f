"""Each seed's azimuth/elevation/roll convention, re-derived from its source code."""

import math

import numpy as np
import pytest
import torch

from svrecon.cameras import (
    POSE_PRESETS,
    PerspectiveCamera,
    pose_from_angle_trig,
    pose_from_angles,
)

f64 = torch.float64


def Rx(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def Ry(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def Rz(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


ANGLES = [(0.3, 0.4, 0.1), (-2.0, -0.3, 0.5), (1.2, 0.9, -0.7)]


def batch(preset, angles, distance=2.5):
    a, e, r = (torch.tensor([x[i] for x in angles], dtype=f64) for i in range(3))
    return pose_from_angles(preset, a, e, r, distance)


def test_shapeclipper_matches_seed_composition():
    # pred_pose: Ry = azim matrix (standard Ry), Rx = elev matrix (standard Rx),
    # Rz = roll matrix with rows [cos, sin], [-sin, cos] (= Rz(-roll)), R = Rz Rx Ry P.
    P = np.array([[-1, 0, 0], [0, 0, -1], [0, -1, 0]])
    poses = batch("shapeclipper", ANGLES)
    for pose, (a, e, r) in zip(poses, ANGLES, strict=True):
        roll_rows = np.array(
            [[math.cos(r), math.sin(r), 0], [-math.sin(r), math.cos(r), 0], [0, 0, 1]]
        )
        np.testing.assert_allclose(pose[:, :3].numpy(), roll_rows @ Rx(e) @ Ry(a) @ P, atol=1e-12)
        np.testing.assert_allclose(pose[:, 3].numpy(), [0, 0, 2.5])


def test_sdf_srn_pascal3d_matches_seed_composition():
    # get_camera: R = R2d(-theta) @ Rx(elev - pi/2) @ Rz(azim) @ R_trans, then t = (0, 0, dist).
    R_trans = np.array([[0, 0, 1], [-1, 0, 0], [0, 1, 0]])
    poses = batch("sdf_srn_pascal3d", ANGLES)
    for pose, (a, e, th) in zip(poses, ANGLES, strict=True):
        expected = Rz(-th) @ Rx(e - math.pi / 2) @ Rz(a) @ R_trans
        np.testing.assert_allclose(pose[:, :3].numpy(), expected, atol=1e-12)


def test_cat3d_matches_seed_composition_and_nmr_at_30_degrees():
    # azim2mat_shapenet13: euler2mat(x=-pi/6, y=azim, z=pi) = zmat @ xmat @ ymat.
    azim = torch.tensor([0.0, 0.7, -2.1, 3.0], dtype=f64)
    cat = pose_from_angles("cat3d", azim, -math.pi / 6, math.pi, 2.0)
    for pose, a in zip(cat, azim.tolist(), strict=True):
        np.testing.assert_allclose(
            pose[:, :3].numpy(), Rz(math.pi) @ Rx(-math.pi / 6) @ Ry(a), atol=1e-12
        )
    nmr = pose_from_angles("nmr", azim, math.pi / 6, 0.0, 2.0)
    torch.testing.assert_close(cat, nmr)


def test_nmr_camera_position_and_orientation():
    # NMR's get_points_from_angles: eye = d (cos e sin a, sin e, -cos e cos a), looking at 0, y up.
    d = 2.732
    poses = batch("nmr", [(a, e, 0.0) for a, e, _ in ANGLES], distance=d)
    cam = PerspectiveCamera(100.0, 32.0, poses)
    for centre, (a, e, _) in zip(cam.camera_center, ANGLES, strict=True):
        eye = d * np.array([math.cos(e) * math.sin(a), math.sin(e), -math.cos(e) * math.cos(a)])
        np.testing.assert_allclose(centre.numpy(), eye, atol=1e-12)
    origin = torch.zeros(3, 1, 3, dtype=f64)
    torch.testing.assert_close(cam.project(origin), torch.full((3, 1, 2), 32.0, dtype=f64))
    # The world's up direction appears upward (smaller v) and the horizon stays level.
    up = cam.project(torch.tensor([0.0, 0.1, 0.0], dtype=f64).expand(3, 1, 3))
    assert (up[..., 1] < 32).all()
    torch.testing.assert_close(up[..., 0], torch.full((3, 1), 32.0, dtype=f64))


def test_trig_input_matches_angles_for_every_preset():
    a, e, r = (torch.tensor([x[i] for x in ANGLES], dtype=f64) for i in range(3))
    scale = torch.tensor([[2.0], [0.5], [3.0]], dtype=f64)
    trig = torch.stack([a.cos(), a.sin(), e.cos(), e.sin(), r.cos(), r.sin()], -1) * scale
    for name in POSE_PRESETS:
        torch.testing.assert_close(pose_from_angle_trig(name, trig, 2.5), batch(name, ANGLES))


def test_presets_validate_input():
    with pytest.raises(ValueError, match="preset: expected one of"):
        pose_from_angles("blender", torch.zeros(2), 0.0, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"trig: expected shape \[B, 6\], got \[2, 4\]"):
        pose_from_angle_trig("nmr", torch.ones(2, 4), 1.0)
    with pytest.raises(ValueError, match="zero norm"):
        pose_from_angle_trig("nmr", torch.tensor([[1.0, 0, 0, 0, 1, 0]]), 1.0)
    with pytest.raises(ValueError, match="at least one must be a tensor"):
        pose_from_angles("nmr", 0.1, 0.2, 0.0, 1.0)


def test_preset_returns_a_copy_nested_values_included():
    from svrecon.models import get_model

    spec = get_model("msu")
    kwargs = spec.preset("cpu")
    kwargs["loss_weights"]["branch_colours"] = 0.0
    kwargs["encoder_widths"] = ()
    fresh = spec.preset("cpu")
    assert fresh["loss_weights"]["branch_colours"] == 100.0
    assert fresh["encoder_widths"] == (32, 64, 128, 256)
