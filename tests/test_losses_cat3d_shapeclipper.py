"""Cat3D and ShapeClipper losses against hand-worked values, naive loops, scipy and autograd."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import wasserstein_distance
from torch.autograd import gradcheck

from svrecon.encoders import ProjectionDiscriminator
from svrecon.losses import (
    CategoryCentres,
    angle_range_loss,
    category_metric_loss,
    discriminator_loss,
    flip_symmetry_loss,
    generator_loss,
    normal_loss,
    r1_penalty,
    uniform_azimuth_loss,
    view_consistency_loss,
)

f64 = torch.float64


def trig_of(angles):
    angles = torch.as_tensor(angles, dtype=f64)
    return torch.stack([angles.cos(), angles.sin()], -1)


# --- category metric loss -----------------------------------------------------------------


def test_metric_loss_hand_value():
    s = torch.tensor([[3.0, 0.0]], dtype=f64)
    centres = torch.tensor([[2.0, 0.0], [0.0, 5.0]], dtype=f64)
    # cosines (1, 0) / 0.3 -> -log(e^{1/0.3} / (e^{1/0.3} + 1))
    expected = math.log1p(math.exp(-1 / 0.3))
    got = category_metric_loss(s, centres, torch.tensor([0]))
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_metric_loss_is_a_batch_sum_and_has_gradients():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(5, 4, dtype=f64, generator=g, requires_grad=True)
    c = torch.randn(3, 4, dtype=f64, generator=g, requires_grad=True)
    y = torch.tensor([0, 2, 1, 1, 0])
    per_item = [category_metric_loss(s[i : i + 1], c, y[i : i + 1]) for i in range(5)]
    # Eq. 5 sums over the batch; the Cat3D code averages.
    assert category_metric_loss(s, c, y).item() == pytest.approx(
        torch.stack(per_item).sum().item(), rel=1e-12
    )
    assert category_metric_loss(s, c, y, reduction="mean").item() == pytest.approx(
        torch.stack(per_item).mean().item(), rel=1e-12
    )
    assert gradcheck(lambda s, c: category_metric_loss(s, c, y), (s, c))


def test_metric_loss_zero_embedding_is_finite():
    s = torch.zeros(2, 4, requires_grad=True)
    module = CategoryCentres(3, 4)
    loss = module(s, torch.tensor([0, 1]))
    loss.backward()
    assert loss.item() == pytest.approx(2 * math.log(3), rel=1e-6)  # log C per item, summed
    assert torch.isfinite(s.grad).all() and torch.isfinite(module.centres.grad).all()
    assert (module.centres.abs() <= 1).all()
    with pytest.raises(ValueError, match="labels"):
        module(s, torch.tensor([0, 3]))


# --- GAN and R1 ---------------------------------------------------------------------------


def test_gan_losses_match_bce_formulas():
    real = torch.tensor([0.3, -1.2, 2.0], dtype=f64)
    fake = torch.tensor([[0.5], [-0.7]], dtype=f64)
    bce = F.binary_cross_entropy
    expected_d = bce(torch.sigmoid(real), torch.ones(3, dtype=f64)) + bce(
        torch.sigmoid(fake[:, 0]), torch.zeros(2, dtype=f64)
    )
    assert discriminator_loss(real, fake).item() == pytest.approx(expected_d.item(), rel=1e-12)
    expected_g = -torch.log(torch.sigmoid(fake[:, 0])).mean()
    assert generator_loss(fake).item() == pytest.approx(expected_g.item(), rel=1e-12)
    assert discriminator_loss(torch.zeros(1), torch.zeros(1)).item() == pytest.approx(
        2 * math.log(2)
    )
    assert gradcheck(discriminator_loss, (real.requires_grad_(), fake.requires_grad_()))
    assert gradcheck(generator_loss, (fake,))


def test_r1_of_linear_critic_is_weight_norm():
    w = torch.randn(3, 5, 5, dtype=f64)
    x = torch.randn(4, 3, 5, 5, dtype=f64, requires_grad=True)
    logits = (x * w).flatten(1).sum(-1)
    assert r1_penalty(logits, x).item() == pytest.approx((w**2).sum().item(), rel=1e-10)


def test_r1_matches_per_item_autograd_of_tiny_discriminator():
    torch.manual_seed(0)
    d = ProjectionDiscriminator(num_classes=3, base_channels=4, image_size=8).double().eval()
    x = torch.randn(3, 4, 8, 8, dtype=f64, requires_grad=True)
    y = torch.tensor([0, 2, 1])
    penalty = r1_penalty(d(x, y), x)
    expected = []
    for i in range(3):
        xi = x[i : i + 1].detach().clone().requires_grad_()
        (g,) = torch.autograd.grad(d(xi, y[i : i + 1]).sum(), xi)
        expected.append((g**2).sum())
    assert penalty.item() == pytest.approx(torch.stack(expected).mean().item(), rel=1e-10)
    penalty.backward()  # the penalty trains the discriminator
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in d.parameters())


def test_r1_gradcheck_on_smooth_critic():
    w = torch.randn(6, dtype=f64)

    def r1(x):
        return r1_penalty(torch.tanh(x @ w) ** 2, x)

    x = torch.randn(3, 6, dtype=f64, requires_grad=True)
    assert gradcheck(r1, (x,))
    with pytest.raises(ValueError, match="requires_grad"):
        r1_penalty(torch.zeros(3), torch.zeros(3, 6))


def test_projection_discriminator_structure():
    torch.manual_seed(1)
    d = ProjectionDiscriminator(num_classes=2, base_channels=8, image_size=16).double()
    x = torch.randn(2, 4, 16, 16, dtype=f64)
    y = torch.tensor([1, 0])
    d.eval()
    logits = d(x, y)
    assert logits.shape == (2,)
    phi = d.features(x).sum(dim=(2, 3))
    projection = (d.embedding(y) * phi).sum(-1)
    assert torch.allclose(logits, d.linear(phi)[:, 0] + projection)
    # spectral norm: after power iterations every conv has spectral norm ~ 1
    d.train()
    for _ in range(30):
        d(x, y)
    for module in d.features:
        if isinstance(module, torch.nn.Conv2d):
            sigma = torch.linalg.matrix_norm(module.weight.flatten(1), ord=2)
            assert sigma.item() == pytest.approx(1.0, abs=1e-2)
    with pytest.raises(ValueError, match="labels"):
        d(x)
    with pytest.raises(ValueError, match=r"images: expected shape \[B, 4, 16, 16\]"):
        d(x[:, :3], y)


# --- viewpoint losses ---------------------------------------------------------------------


class ConstantEstimator(torch.nn.Module):
    """Predicts (cos a, sin a) with a learnable a, whatever the image."""

    def __init__(self, angle):
        super().__init__()
        self.angle = torch.nn.Parameter(torch.tensor(angle, dtype=f64))
        self.seen = None

    def forward(self, images):
        self.seen = images
        return trig_of(self.angle).expand(images.shape[0], 2)


def test_view_consistency_hand_value_and_stopped_gradients():
    estimator = ConstantEstimator(0.3)
    renders = torch.rand(2, 4, 8, 8, dtype=f64, requires_grad=True)
    rendered_from = torch.tensor([0.3, 1.1], dtype=f64, requires_grad=True)
    loss = view_consistency_loss(estimator, renders * 2, trig_of(rendered_from))
    expected = np.mean([1 - math.cos(0.3 - 0.3), 1 - math.cos(0.3 - 1.1)])
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    loss.backward()
    assert renders.grad is None and rendered_from.grad is None
    assert not estimator.seen.requires_grad
    assert estimator.angle.grad.item() == pytest.approx(0.5 * math.sin(0.3 - 1.1), rel=1e-12)


def test_view_consistency_three_angle_pairs_average():
    def estimator(images):
        return trig_of([[0.0, 0.5, 1.0]]).expand(images.shape[0], 3, 2)

    target = trig_of([[0.0, 0.0, 0.0]])
    expected = 1 - (1 + math.cos(0.5) + math.cos(1.0)) / 3
    loss = view_consistency_loss(estimator, torch.zeros(1, 3, 4, 4), target.reshape(1, 6))
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_uniform_azimuth_zero_on_the_prior_grid_and_equals_scipy():
    b = 8
    grid = (2 * torch.arange(b, dtype=f64) + 1) * math.pi / b
    assert uniform_azimuth_loss(trig_of(grid[torch.randperm(b)])).item() == pytest.approx(
        0, abs=1e-12
    )
    trig = trig_of(torch.rand(b, dtype=f64) * 2)
    expected = []
    for stat in (lambda c, s: c, lambda c, s: s, lambda c, s: c * s):
        expected.append(
            wasserstein_distance(
                stat(trig[:, 0], trig[:, 1]).numpy(), stat(grid.cos(), grid.sin()).numpy()
            )
        )
    assert uniform_azimuth_loss(trig).item() == pytest.approx(np.mean(expected), rel=1e-10)
    trig.requires_grad_()
    assert gradcheck(uniform_azimuth_loss, (trig,))


def test_angle_range_hinge_hand_value():
    trig = trig_of(torch.deg2rad(torch.tensor([0.0, 40.0, -30.0], dtype=f64))).requires_grad_()
    loss = angle_range_loss(trig, -10, 30, margin=5)
    # below -15: 15 (third); above 35: 5 (second); both averaged over 3
    assert loss.item() == pytest.approx(15 / 3 + 5 / 3, rel=1e-10)
    assert gradcheck(lambda t: angle_range_loss(t, -10, 30, margin=5), (trig,))
    zero = torch.zeros(1, 2, requires_grad=True)
    angle_range_loss(zero, 10, 20).backward()
    assert torch.isfinite(zero.grad).all()


def test_flip_symmetry_hand_values():
    angles = torch.tensor([[0.4, 0.2, -0.1], [1.0, -0.3, 0.2]], dtype=f64)
    trig = trig_of(angles)
    mirrored = trig_of(angles * torch.tensor([-1.0, 1.0, -1.0], dtype=f64))
    assert flip_symmetry_loss(trig, mirrored).item() == pytest.approx(0, abs=1e-12)
    # an estimator that ignores the flip is off by 2 sin in azimuth and roll
    expected = (4 * angles[:, 0].sin() ** 2).mean() + (4 * angles[:, 2].sin() ** 2).mean()
    assert flip_symmetry_loss(trig, trig).item() == pytest.approx(expected.item(), rel=1e-12)
    t1, t2 = trig.clone().requires_grad_(), trig_of(angles + 0.1).requires_grad_()
    assert gradcheck(flip_symmetry_loss, (t1, t2))


# --- ShapeClipper normal loss -------------------------------------------------------------


def per_pixel_normal_loss(pred, target, beta=5.0):
    """Naive per-pixel loss, one pixel at a time."""
    out = []
    for p, t in zip(pred.reshape(-1, 3), target.reshape(-1, 3), strict=True):
        cos = float(p @ t) / (float(p.norm()) * float(t.norm()))
        out.append(beta * float((p - t).abs().sum()) + 1 - cos)
    return np.array(out)


def test_normal_loss_hand_value_and_rotation():
    pred = torch.tensor([[[1.0, 0.0, 0.0]]], dtype=f64)
    target = torch.tensor([[[0.0, 1.0, 0.0]]], dtype=f64)
    assert normal_loss(pred, target, drop_fraction=0).item() == pytest.approx(11.0)
    # R maps y to x: R N == pred, loss 0
    rotation = torch.tensor([[[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]], dtype=f64)
    assert normal_loss(pred, target, rotation=rotation, drop_fraction=0).item() == pytest.approx(
        0, abs=1e-12
    )


def test_normal_loss_outlier_dropout_is_batch_wide_and_exact():
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(2, 50, 3, dtype=f64, generator=g)
    target = torch.randn(2, 50, 3, dtype=f64, generator=g)
    target[0] *= 4  # image 0 holds most of the outliers, so per-image dropping would differ
    per_pixel = per_pixel_normal_loss(pred, target)
    kept = np.sort(per_pixel)[:80]
    assert normal_loss(pred, target, drop_fraction=0.2).item() == pytest.approx(
        kept.mean(), rel=1e-12
    )
    per_image = np.concatenate([np.sort(per_pixel[:50])[:40], np.sort(per_pixel[50:])[:40]])
    assert abs(per_image.mean() - kept.mean()) > 1e-3
    # rank_by="angle" keeps the 80 smallest 1 - cos instead
    cos = (F.normalize(pred, dim=-1) * F.normalize(target, dim=-1)).sum(-1).reshape(-1).numpy()
    by_angle = per_pixel[np.argsort(1 - cos)[:80]]
    got = normal_loss(pred, target, drop_fraction=0.2, rank_by="angle")
    assert got.item() == pytest.approx(by_angle.mean(), rel=1e-12)


def test_normal_loss_drops_exactly_the_fraction_of_masked_pixels():
    pred = torch.zeros(1, 100, 3, dtype=f64)
    pred[..., 0] = 1
    target = pred.clone()
    target[0, :, 1] = torch.arange(100, dtype=f64) / 10  # loss grows with the index
    mask = torch.zeros(1, 100, dtype=torch.bool)
    mask[0, 30:] = True  # 70 pixels: drop floor(0.3 * 70) = 21, the 21 largest
    per_pixel = per_pixel_normal_loss(pred[:, 30:], target[:, 30:])
    got = normal_loss(pred, target, mask=mask, drop_fraction=0.3)
    assert got.item() == pytest.approx(per_pixel[:49].mean(), rel=1e-12)
    assert got.item() != pytest.approx(per_pixel[1:50].mean(), rel=1e-6)
    frac = normal_loss(pred, target, mask=mask, drop_fraction=0.29)  # floor(20.3) = 20
    assert frac.item() == pytest.approx(per_pixel[:50].mean(), rel=1e-12)


def test_normal_loss_gradients_and_degenerate_inputs():
    g = torch.Generator().manual_seed(1)
    pred = torch.randn(2, 6, 3, dtype=f64, generator=g, requires_grad=True)
    target = torch.randn(2, 6, 3, dtype=f64, generator=g)
    rotation = torch.linalg.qr(torch.randn(2, 3, 3, dtype=f64, generator=g)).Q
    assert gradcheck(lambda p: normal_loss(p, target, rotation=rotation), (pred,))
    zero = torch.zeros(2, 6, 3, requires_grad=True)
    loss = normal_loss(zero, torch.zeros(2, 6, 3))
    loss.backward()
    assert loss.item() == pytest.approx(1.0) and torch.isfinite(zero.grad).all()
    empty = normal_loss(pred, target, mask=torch.zeros(2, 6, dtype=torch.bool))
    empty.backward()
    assert empty.item() == 0 and torch.equal(pred.grad, torch.zeros_like(pred))
    with pytest.raises(ValueError, match="mask"):
        normal_loss(pred, target, mask=torch.ones(2, 5))


def test_normal_loss_without_dropout_is_pixel_mean_over_batch():
    g = torch.Generator().manual_seed(2)
    pred = torch.randn(3, 7, 3, dtype=f64, generator=g)
    target = torch.randn(3, 7, 3, dtype=f64, generator=g)
    expected = per_pixel_normal_loss(pred, target).mean()
    got = normal_loss(pred, target, drop_fraction=0)
    assert got.item() == pytest.approx(expected, rel=1e-12)
