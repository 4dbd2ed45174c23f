"""PSNR and the scale-invariant intrinsic-image errors against their formulas worked
by hand and a naive loop over patches (Grosse et al. 2009)."""

import math

import pytest
import torch

from svrecon.metrics import local_scale_invariant_mse, psnr, scale_invariant_mse


def test_psnr_by_hand():
    target = torch.full((2, 3, 4, 4), 0.5)
    pred = target.clone()
    pred[0] += 0.1  # MSE 0.01 -> 20 dB
    pred[1, :, :2] += 0.2  # half the pixels off by 0.2: MSE 0.02
    values = psnr(pred, target)
    torch.testing.assert_close(values, torch.tensor([20.0, -10 * math.log10(0.02)]))
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[:, 2:] = True  # only the rows that are right in item 1
    assert psnr(pred, target, mask)[1] == math.inf
    one_empty = mask.clone()
    one_empty[1] = False
    with pytest.raises(ValueError, match=r"mask: item\(s\) \[1\] select no pixel"):
        psnr(pred, target, one_empty)
    assert psnr(pred * 255, target * 255, max_value=255)[0].item() == pytest.approx(20.0)


def test_scale_invariant_mse_ignores_a_scale_per_channel():
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, 5, 5, generator=gen)
    scaled = target * torch.tensor([2.0, 0.5, 3.0])[None, :, None, None]
    torch.testing.assert_close(scale_invariant_mse(scaled, target), torch.zeros(2))
    noisy = target + 0.1 * torch.rand(2, 3, 5, 5, generator=gen)
    naive = []
    for b in range(2):
        total = 0.0
        for c in range(3):
            p, t = noisy[b, c].flatten().double(), target[b, c].flatten().double()
            a = (p @ t) / (p @ p)
            total += ((a * p - t) ** 2).sum()
        naive.append(total / 75)
    torch.testing.assert_close(scale_invariant_mse(noisy, target).double(), torch.stack(naive))
    assert (scale_invariant_mse(torch.zeros_like(target), target) > 0).all()  # a = 0


def test_masked_out_values_are_never_read():
    target = torch.rand(1, 3, 20, 20)
    pred = target * 2
    mask = torch.ones(1, 20, 20, dtype=torch.bool)
    mask[0, 0, 0] = False
    pred[0, :, 0, 0] = float("nan")
    target_nan = target.clone()
    target_nan[0, :, 0, 0] = float("inf")
    for metric in (psnr, scale_invariant_mse, local_scale_invariant_mse):
        assert torch.isfinite(metric(pred, target_nan, mask)).all(), metric.__name__


def naive_lmse(pred, target, window, stride):
    h, w = pred.shape[-2:]
    error = norm = 0.0
    for i in range(0, h - window + 1, stride):
        for j in range(0, w - window + 1, stride):
            for c in range(pred.shape[0]):
                p = pred[c, i : i + window, j : j + window].flatten().double()
                t = target[c, i : i + window, j : j + window].flatten().double()
                a = (p @ t) / (p @ p) if (p @ p) > 0 else 0.0
                error += ((a * p - t) ** 2).sum()
                norm += (t**2).sum()
    return error / norm


def test_lmse_matches_a_loop_over_patches():
    gen = torch.Generator().manual_seed(1)
    target = torch.rand(2, 3, 24, 30, generator=gen)
    pred = target * torch.rand(2, 3, 24, 30, generator=gen)
    values = local_scale_invariant_mse(pred, target, window=8, stride=4)
    for b in range(2):
        assert values[b].item() == pytest.approx(naive_lmse(pred[b], target[b], 8, 4).item())
    assert local_scale_invariant_mse(3 * target, target, window=8).max() < 1e-6
    torch.testing.assert_close(local_scale_invariant_mse(0 * target, target), torch.ones(2))


def test_bad_inputs_name_the_argument():
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="target: expected shape"):
        psnr(x, x[:, :2])
    with pytest.raises(ValueError, match="mask: expected shape"):
        scale_invariant_mse(x, x, torch.ones(1, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="at least 20 pixels"):
        local_scale_invariant_mse(x, x)
    assert psnr(x.mul(255).round().to(torch.uint8), x.mul(255).round().to(torch.uint8),
                max_value=255).isinf().all()  # integers promoted  # fmt: skip


def test_empty_masks_and_zero_targets_are_refused_not_nan():
    x = torch.rand(2, 3, 20, 20) + 0.1
    empty = torch.ones(2, 20, 20, dtype=torch.bool)
    empty[0] = False
    for metric in (psnr, scale_invariant_mse, local_scale_invariant_mse):
        with pytest.raises(ValueError, match=r"mask: item\(s\) \[0\]|target: item\(s\) \[0\]"):
            metric(x, x, empty)
        assert torch.isfinite(metric(x[1:] * 0.5, x[1:], empty[1:])).all()
    dark = x.clone()
    dark[1] = 0
    with pytest.raises(ValueError, match=r"target: item\(s\) \[1\] are zero"):
        local_scale_invariant_mse(x, dark)
