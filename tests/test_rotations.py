import itertools

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation
from torch.autograd import gradcheck, gradgradcheck

from svrecon.cameras import (
    axis_angle_to_matrix,
    euler_to_matrix,
    euler_trig_to_matrix,
    look_at,
    matrix_to_axis_angle,
    matrix_to_euler,
    matrix_to_euler_trig,
    matrix_to_rotation_6d,
    rotation_6d_to_matrix,
)

SEQUENCES = ["".join(s) for s in itertools.product("xyz", repeat=3) if s[0] != s[1] != s[2]]
CONVENTIONS = SEQUENCES + [s.upper() for s in SEQUENCES]
f64 = torch.float64


def random_rotations(n, seed):
    return torch.from_numpy(Rotation.random(n, random_state=seed).as_matrix())


def test_twelve_sequences_each_way():
    assert len(SEQUENCES) == 12 and len(CONVENTIONS) == 24


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_euler_to_matrix_matches_scipy(convention):
    angles = (torch.rand(200, 3, dtype=f64) * 2 - 1) * 3.0
    ours = euler_to_matrix(angles, convention)
    ref = Rotation.from_euler(convention, angles.numpy()).as_matrix()
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_matrix_to_euler_matches_scipy_and_round_trips(convention):
    R = random_rotations(300, seed=1)
    ours = matrix_to_euler(R, convention)
    ref = Rotation.from_matrix(R.numpy()).as_euler(convention)
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(euler_to_matrix(ours, convention), R, atol=1e-10, rtol=0)


@pytest.mark.parametrize("convention", ["XYZ", "zyx", "ZXZ", "yxy"])
def test_matrix_to_euler_in_gimbal_lock_reproduces_matrix(convention):
    proper = convention[0].lower() == convention[2].lower()
    middle = torch.tensor([0.0, np.pi] if proper else [np.pi / 2, -np.pi / 2], dtype=f64)
    angles = torch.stack(
        [torch.tensor([0.3, -1.2], dtype=f64), middle, torch.tensor([0.7, 2.0], dtype=f64)], -1
    )
    R = euler_to_matrix(angles, convention)
    back = matrix_to_euler(R, convention)
    assert torch.isfinite(back).all()
    torch.testing.assert_close(euler_to_matrix(back, convention), R, atol=1e-7, rtol=0)


@pytest.mark.parametrize("convention", ["XYZ", "zxz", "YZX"])
def test_euler_trig_matches_angles_and_normalises(convention):
    angles = (torch.rand(50, 3, dtype=f64) * 2 - 1) * 3.0
    scale = torch.rand(50, 3, 1, dtype=f64) * 3 + 0.1  # unnormalised pairs, as a head outputs
    trig = (torch.stack([angles.cos(), angles.sin()], -1) * scale).flatten(-2)
    torch.testing.assert_close(
        euler_trig_to_matrix(trig, convention), euler_to_matrix(angles, convention)
    )
    R = random_rotations(50, seed=3)
    back = matrix_to_euler_trig(R, convention)
    torch.testing.assert_close(euler_trig_to_matrix(back, convention), R)


def test_axis_angle_matches_scipy_and_round_trips():
    R = random_rotations(500, seed=2)
    aa = matrix_to_axis_angle(R)
    np.testing.assert_allclose(aa.numpy(), Rotation.from_matrix(R.numpy()).as_rotvec(), atol=1e-6)
    rotvec = torch.from_numpy(Rotation.random(100, random_state=4).as_rotvec())
    ref = Rotation.from_rotvec(rotvec.numpy()).as_matrix()
    np.testing.assert_allclose(axis_angle_to_matrix(rotvec).numpy(), ref, atol=1e-6)
    torch.testing.assert_close(axis_angle_to_matrix(aa), R)


def test_axis_angle_near_identity_and_half_turn():
    tiny = torch.tensor([[1e-9, -2e-9, 0.5e-9], [0.0, 0.0, 0.0]], dtype=f64)
    ref = Rotation.from_rotvec(tiny.numpy()).as_matrix()
    np.testing.assert_allclose(axis_angle_to_matrix(tiny).numpy(), ref, atol=1e-15)
    torch.testing.assert_close(
        matrix_to_axis_angle(axis_angle_to_matrix(tiny)), tiny, atol=1e-15, rtol=0
    )
    half = torch.tensor([[np.pi, 0, 0], [0, np.pi / np.sqrt(2), np.pi / np.sqrt(2)]], dtype=f64)
    R = axis_angle_to_matrix(half)
    back = matrix_to_axis_angle(R)
    torch.testing.assert_close(back.norm(dim=-1), torch.full((2,), np.pi, dtype=f64))
    torch.testing.assert_close(axis_angle_to_matrix(back), R)


def test_rotation_6d_is_orthonormal_and_round_trips():
    d6 = torch.randn(1000, 6, dtype=f64) * 5
    R = rotation_6d_to_matrix(d6)
    eye = torch.eye(3, dtype=f64).expand(1000, 3, 3)
    torch.testing.assert_close(R.transpose(-1, -2) @ R, eye)
    torch.testing.assert_close(torch.det(R), torch.ones(1000, dtype=f64))
    # The first column is a1 normalised (Zhou et al.: columns, not rows).
    torch.testing.assert_close(R[..., 0], d6[:, :3] / d6[:, :3].norm(dim=-1, keepdim=True))
    Rr = random_rotations(100, seed=5)
    torch.testing.assert_close(rotation_6d_to_matrix(matrix_to_rotation_6d(Rr)), Rr)


def test_rotation_6d_rejects_degenerate_input():
    with pytest.raises(ValueError, match="d6: the first 3-vector has zero norm"):
        rotation_6d_to_matrix(torch.tensor([[0.0, 0, 0, 1, 0, 0]]))
    with pytest.raises(ValueError, match="d6: the second 3-vector is zero or parallel"):
        rotation_6d_to_matrix(torch.tensor([[1.0, 0, 0, 2, 0, 0]]))


def test_bad_shapes_and_conventions_raise():
    with pytest.raises(ValueError, match=r"angles: expected shape \[\.\.\., 3\], got \[4, 2\]"):
        euler_to_matrix(torch.zeros(4, 2), "XYZ")
    with pytest.raises(
        ValueError, match=r"matrix: expected shape \[\.\.\., 3, 3\], got \[2, 3, 4\]"
    ):
        matrix_to_euler(torch.zeros(2, 3, 4), "XYZ")
    with pytest.raises(ValueError, match="mixes intrinsic"):
        euler_to_matrix(torch.zeros(1, 3), "XyZ")
    with pytest.raises(ValueError, match="consecutive axes"):
        euler_to_matrix(torch.zeros(1, 3), "XXY")
    with pytest.raises(ValueError, match="trig: a \\(cos, sin\\) pair has zero norm"):
        euler_trig_to_matrix(torch.tensor([[1.0, 0, 0, 0, 1, 0]]), "XYZ")


def test_gradcheck_rotations():
    angles = torch.rand(4, 3, dtype=f64, requires_grad=True)
    assert gradcheck(lambda a: euler_to_matrix(a, "ZXY"), (angles,))
    assert gradgradcheck(lambda a: euler_to_matrix(a, "zyz"), (angles,))
    # matrix_to_euler is only defined on rotations: differentiate through a rotation map.
    assert gradcheck(lambda a: matrix_to_euler(euler_to_matrix(a, "XYZ"), "xzx"), (angles,))
    trig = torch.randn(4, 6, dtype=f64, requires_grad=True)
    assert gradcheck(lambda t: euler_trig_to_matrix(t, "ZXY"), (trig,))
    d6 = torch.randn(4, 6, dtype=f64, requires_grad=True)
    assert gradcheck(rotation_6d_to_matrix, (d6,))
    assert gradgradcheck(rotation_6d_to_matrix, (d6,))
    aa = torch.randn(4, 3, dtype=f64, requires_grad=True)
    assert gradcheck(axis_angle_to_matrix, (aa,))
    assert gradgradcheck(axis_angle_to_matrix, (aa,))
    assert gradcheck(lambda a: matrix_to_axis_angle(axis_angle_to_matrix(a)), (aa,))


def test_axis_angle_gradient_finite_at_identity():
    aa = torch.zeros(2, 3, dtype=f64, requires_grad=True)
    assert gradcheck(axis_angle_to_matrix, (aa,))
    R = axis_angle_to_matrix(aa)
    (g,) = torch.autograd.grad(matrix_to_axis_angle(R).sum(), aa)
    assert torch.isfinite(g).all()


def test_look_at_opencv_frame():
    eye = torch.tensor([[0.0, 0.0, 3.0]], dtype=f64)
    target = torch.zeros(1, 3, dtype=f64)
    up = torch.tensor([[0.0, 1.0, 0.0]], dtype=f64)
    pose = look_at(eye, target, up)
    # Camera on +z looking at the origin with y up: x_cam = +x_world, y_cam = -y_world.
    expected = torch.tensor([[[1.0, 0, 0, 0], [0, -1, 0, 0], [0, 0, -1, 3]]], dtype=f64)
    torch.testing.assert_close(pose, expected)
    with pytest.raises(ValueError, match="eye equals its target"):
        look_at(target, target, up)
    with pytest.raises(ValueError, match="up: parallel"):
        look_at(torch.tensor([[0.0, 2.0, 0.0]], dtype=f64), target, up)
