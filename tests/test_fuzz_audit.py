"""A second, differently built audit of the paired and masked functions (it found the
masked-NaN gradients of albedo_constancy_loss and normal_loss, and the integer
arithmetic of soft_iou_loss): for each function, built from valid arguments,

- one argument with batch 1 beside batch 2 is a ValueError (no silent broadcast);
- a NaN in a masked-out entry changes neither the value nor reaches the gradient;
- integer copies of float arguments give the float result (promotion, never integer
  arithmetic), or a ValueError / TypeError;
- non-contiguous arguments give the contiguous result."""

import pytest
import torch
import torch.nn.functional as F

import svrecon.losses as L
import svrecon.metrics as M

f64 = torch.float64
N = 7


def r(*shape, low=0.0, high=1.0):
    return torch.rand(*shape, dtype=f64) * (high - low) + low


def m(*shape):
    return torch.rand(*shape) > 0.5


def unit(*shape):
    return F.normalize(r(*shape, low=-1), dim=-1)


# name -> (function, builder of the arguments for batch b, index of a reduction mask
# (whose off entries are never read) or None)
SPECS = {
    "masked_l1_loss": (L.masked_l1_loss, lambda b: [r(b, N, 3), r(b, N, 3), m(b, N)], 2),
    "masked_mse_loss": (L.masked_mse_loss, lambda b: [r(b, N, 3), r(b, N, 3), m(b, N)], 2),
    "occupancy_photometric_loss": (
        L.occupancy_photometric_loss, lambda b: [r(b, N, 3), r(b, N, 3), m(b, N)], 2),
    "white_shading_loss": (L.white_shading_loss, lambda b: [r(b, N, 3), m(b, N)], 1),
    "normal_loss": (L.normal_loss, lambda b: [unit(b, N, 3), unit(b, N, 3), m(b, N)], 2),
    "albedo_constancy_loss": (
        L.albedo_constancy_loss, lambda b: [r(b, 3, 6, 6), r(b, 3, 6, 6), m(b, 6, 6)], 2),
    "psnr": (M.psnr, lambda b: [r(b, 3, 5, 5), r(b, 3, 5, 5), m(b, 5, 5)], 2),
    "scale_invariant_mse": (
        M.scale_invariant_mse, lambda b: [r(b, 3, 5, 5), r(b, 3, 5, 5), m(b, 5, 5)], 2),
    "local_scale_invariant_mse": (
        M.local_scale_invariant_mse,
        lambda b: [r(b, 3, 24, 24), r(b, 3, 24, 24), m(b, 24, 24)], 2),
    "occupancy_silhouette_loss": (L.occupancy_silhouette_loss, lambda b: [r(b, N), m(b, N)], None),
    "soft_iou_loss": (L.soft_iou_loss, lambda b: [r(b, N), r(b, N)], None),
    "disn_sdf_loss": (
        L.disn_sdf_loss, lambda b: [r(b, N, low=-1), r(b, N, low=-0.1, high=0.1)], None),
    "silhouette_sdf_loss": (
        L.silhouette_sdf_loss, lambda b: [r(b, N, 4, low=-1), r(b, N, 4), m(b, N)], None),
    "ray_intersection_loss": (
        L.ray_intersection_loss, lambda b: [r(b, N, 5, low=-1), m(b, N)], None),
    "camera_point_cloud_loss": (
        L.camera_point_cloud_loss,
        lambda b: [r(b, N, 3), r(b, 3, 4), r(b, 3, 4)], None),
    "chamfer_distance": (lambda p, g: M.chamfer_distance(p, g).chamfer,
                         lambda b: [r(b, N, 3), r(b, 9, 3)], None),
    "f_score": (lambda p, g: M.f_score(p, g, [0.3]).fscore,
                lambda b: [r(b, N, 3), r(b, 9, 3)], None),
    "volumetric_iou": (M.volumetric_iou, lambda b: [m(b, 4, 4, 4), m(b, 4, 4, 4)], None),
}  # fmt: skip


def _build(name, b, seed=0):
    torch.manual_seed(seed)
    return SPECS[name][1](b)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_a_batch_of_one_beside_two_is_refused(name):
    fn = SPECS[name][0]
    args, ones = _build(name, 2), _build(name, 1, seed=1)
    for i in range(len(args)):
        with pytest.raises(ValueError):
            fn(*[ones[i] if j == i else a for j, a in enumerate(args)])


@pytest.mark.parametrize("name", sorted(n for n, s in SPECS.items() if s[2] is not None))
def test_a_nan_where_the_mask_is_off_is_never_read(name):
    fn, _, where = SPECS[name]
    args = _build(name, 2)
    off = ~args[where]
    assert off.any()
    clean = fn(*args)
    for i, x in enumerate(args[:where]):
        poisoned = x.clone()
        channel_last = poisoned.shape[: off.dim()] == off.shape
        view = poisoned if channel_last else poisoned.movedim(1, -1)  # [B, C, H, W]
        view[off] = float("nan")
        poisoned.requires_grad_()
        value = fn(*[poisoned if j == i else a for j, a in enumerate(args)])
        torch.testing.assert_close(value, clean)
        (grad,) = torch.autograd.grad(value.sum(), poisoned, allow_unused=True)
        assert grad is None or torch.isfinite(grad).all(), (name, i)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_integer_arguments_are_promoted_or_refused(name):
    fn = SPECS[name][0]
    args = _build(name, 2)
    for i, x in enumerate(args):
        if not x.is_floating_point():
            continue
        whole = (x * 4).round()
        expected = fn(*[whole if j == i else a for j, a in enumerate(args)])
        try:
            value = fn(*[whole.long() if j == i else a for j, a in enumerate(args)])
        except (ValueError, TypeError):
            continue
        assert value.is_floating_point(), (name, i)
        torch.testing.assert_close(value.double(), expected.double(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_non_contiguous_arguments_give_the_same_result(name):
    fn = SPECS[name][0]
    args = _build(name, 2)
    strided = []
    for x in args:
        if x.dim() < 2:
            strided.append(x)
            continue
        y = torch.empty(x.shape[::-1], dtype=x.dtype).permute(*reversed(range(x.dim())))
        y.copy_(x)
        assert not y.is_contiguous()
        strided.append(y)
    torch.testing.assert_close(fn(*strided), fn(*args))
