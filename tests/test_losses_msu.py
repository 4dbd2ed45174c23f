"""MSU joint-occupancy losses against hand-worked values, naive loops and numpy."""

import itertools
import math

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from svrecon.losses import (
    albedo_constancy_loss,
    branch_balance_loss,
    branch_colour_separation_loss,
    feature_consistency_loss,
    largest_eigenvector,
    masked_l1_loss,
    occupancy_photometric_loss,
    occupancy_pretraining_losses,
    occupancy_silhouette_loss,
    white_shading_loss,
)

f64 = torch.float64


def test_silhouette_loss_hand_value_batch_mean_and_gradient():
    occ = torch.tensor([[0.5, 0.2], [0.7, 0.0]], dtype=f64, requires_grad=True)
    mask = torch.tensor([[1, 0], [1, 1]])
    # targets 0.5 inside, 0 outside: |0| + |0.2| + |0.2| + |0.5|
    assert occupancy_silhouette_loss(occ, mask).item() == pytest.approx(0.9 / 4)
    per_item = [occupancy_silhouette_loss(occ[i : i + 1], mask[i : i + 1]) for i in range(2)]
    assert occupancy_silhouette_loss(occ, mask).item() == pytest.approx(
        torch.stack(per_item).mean().item()
    )
    occ2 = occ.detach() + 0.01  # away from the kinks of |.|
    assert gradcheck(lambda o: occupancy_silhouette_loss(o, mask), (occ2.requires_grad_(),))
    with pytest.raises(ValueError, match="mask"):
        occupancy_silhouette_loss(occ, mask[:1])


def test_photometric_loss_sums_channels_over_foreground_pixels():
    pred = torch.tensor([[[0.1, 0.2, 0.3], [0.0, 0.0, 0.0]]], dtype=f64, requires_grad=True)
    target = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]], dtype=f64)
    mask = torch.tensor([[True, False]])
    assert occupancy_photometric_loss(pred, target, mask).item() == pytest.approx(0.6)
    g = torch.Generator().manual_seed(0)
    p, t = torch.rand(2, 9, 3, generator=g, dtype=f64), torch.rand(2, 9, 3, generator=g, dtype=f64)
    m = torch.rand(2, 9, generator=g) > 0.4
    assert occupancy_photometric_loss(p, t, m).item() == pytest.approx(
        3 * masked_l1_loss(p, t, m).item(), rel=1e-12
    )
    assert gradcheck(lambda x: occupancy_photometric_loss(x, t, m), (p.requires_grad_(),))
    empty = occupancy_photometric_loss(pred, target, torch.zeros(1, 2, dtype=torch.bool))
    empty.backward()
    assert empty.item() == 0 and torch.equal(pred.grad, torch.zeros_like(pred))


def test_pretraining_losses_hand_values():
    occ = torch.tensor([[0.2, 0.9]], dtype=f64)
    occ_t = torch.tensor([[0.0, 1.0]], dtype=f64)
    albedo = torch.zeros(1, 2, 3, dtype=f64)
    albedo_t = torch.full((1, 2, 3), 0.5, dtype=f64)
    logits = torch.tensor([[2.0, 0.0, 0.0]], dtype=f64, requires_grad=True)
    out = occupancy_pretraining_losses(occ, occ_t, albedo, albedo_t, logits, torch.tensor([0]))
    # Eq. 8 sums over the K points (and the albedo's channels): 0.04 + 0.01; 6 x 0.25.
    assert out["occupancy"].item() == pytest.approx(0.04 + 0.01)
    assert out["albedo"].item() == pytest.approx(1.5)
    means = occupancy_pretraining_losses(occ, occ_t, albedo, albedo_t, reduction="mean")
    assert means["occupancy"].item() == pytest.approx((0.04 + 0.01) / 2)
    assert means["albedo"].item() == pytest.approx(0.25)
    assert out["category"].item() == pytest.approx(-math.log(math.e**2 / (math.e**2 + 2)))
    out["category"].backward()
    assert torch.isfinite(logits.grad).all()
    assert set(occupancy_pretraining_losses(occ, occ_t)) == {"occupancy"}
    with pytest.raises(ValueError, match="albedo"):
        occupancy_pretraining_losses(occ, occ_t, albedo=albedo)


def test_pretraining_albedo_over_the_occupied_points_only():
    occ = torch.tensor([[0.9, 0.1], [0.2, 0.3]], dtype=f64)
    occ_t = torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=f64)
    albedo = torch.zeros(2, 2, 3, dtype=f64, requires_grad=True)
    # The empty voxel's colour is NaN: a masked term must never read it.
    albedo_t = torch.tensor([[[0.5, 0.5, 0.5], [math.nan] * 3], [[0.1] * 3, [0.2] * 3]], dtype=f64)
    mask = occ_t > 0.5
    out = occupancy_pretraining_losses(occ, occ_t, albedo, albedo_t, albedo_mask=mask)
    # Per shape: 3 x 0.25 over its one occupied point, and 0 for the empty second
    # shape; averaged over the batch of 2.
    assert out["albedo"].item() == pytest.approx(0.75 / 2)
    out["albedo"].backward()
    assert torch.isfinite(albedo.grad).all() and albedo.grad[0, 1].eq(0).all()
    assert albedo.grad[1].eq(0).all()
    means = occupancy_pretraining_losses(
        occ, occ_t, albedo, albedo_t, reduction="mean", albedo_mask=mask
    )
    assert means["albedo"].item() == pytest.approx(0.25)  # over 1 point x 3 channels
    none = occupancy_pretraining_losses(
        occ, occ_t, albedo, albedo_t, reduction="mean", albedo_mask=torch.zeros_like(mask)
    )
    assert none["albedo"].item() == 0
    with pytest.raises(ValueError, match="albedo_mask"):
        occupancy_pretraining_losses(occ, occ_t, albedo, albedo_t, albedo_mask=mask[:, :1])
    with pytest.raises(ValueError, match="albedo_mask: expected a bool"):
        occupancy_pretraining_losses(occ, occ_t, albedo, albedo_t, albedo_mask=occ_t)


def naive_albedo_constancy(albedo, image, mask, alpha=15.0, p=0.8, chroma="sum", reduce="sum"):
    """Sum over pixels j and their in-image 4-neighbours t, both in the mask, per image
    and averaged over the batch (``reduce="mean"``: divided by the count instead)."""
    b, c, h, w = albedo.shape
    total, count = 0.0, 0
    norm = (lambda v: v.sum()) if chroma == "sum" else np.linalg.norm
    for n in range(b):
        for y in range(h):
            for x in range(w):
                for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                    ty, tx = y + dy, x + dx
                    if not (0 <= ty < h and 0 <= tx < w) or not (mask[n, y, x] and mask[n, ty, tx]):
                        continue
                    ij, it = image[n, :, y, x], image[n, :, ty, tx]
                    cj, ct = ij / norm(ij), it / norm(it)
                    weight = math.exp(-alpha * np.linalg.norm(cj - ct))
                    diff = np.linalg.norm(albedo[n, :, y, x] - albedo[n, :, ty, tx])
                    total += weight * diff**p
                    count += 1
    return total / count if reduce == "mean" else total / b


def test_albedo_constancy_matches_naive_loop():
    g = torch.Generator().manual_seed(0)
    albedo = torch.rand(2, 3, 5, 4, generator=g, dtype=f64)
    image = torch.rand(2, 3, 5, 4, generator=g, dtype=f64) + 0.05
    mask = torch.rand(2, 5, 4, generator=g) > 0.3
    expected = naive_albedo_constancy(albedo.numpy(), image.numpy(), mask.numpy())
    assert albedo_constancy_loss(albedo, image, mask).item() == pytest.approx(expected, rel=1e-10)
    # The previous behaviour, kept as options: unit-norm chromaticity, mean over pairs.
    mean_l2 = naive_albedo_constancy(albedo.numpy(), image.numpy(), mask.numpy(), chroma="l2",
                                     reduce="mean")  # fmt: skip
    got = albedo_constancy_loss(albedo, image, mask, chromaticity="l2", reduction="mean")
    assert got.item() == pytest.approx(mean_l2, rel=1e-10)
    full = naive_albedo_constancy(albedo.numpy(), image.numpy(), np.ones((2, 5, 4), bool))
    assert albedo_constancy_loss(albedo, image).item() == pytest.approx(full, rel=1e-10)
    assert gradcheck(
        lambda a: albedo_constancy_loss(a, image, mask), (albedo.clone().requires_grad_(),)
    )


def test_albedo_constancy_degenerate_inputs_are_finite():
    albedo = torch.full((1, 3, 4, 4), 0.3, requires_grad=True)  # constant: zero differences
    image = torch.zeros(1, 3, 4, 4)  # black: zero chromaticity
    loss = albedo_constancy_loss(albedo, image)
    loss.backward()
    assert loss.item() == 0 and torch.isfinite(albedo.grad).all()
    empty = albedo_constancy_loss(albedo, image, torch.zeros(1, 4, 4, dtype=torch.bool))
    assert empty.item() == 0


def test_white_shading_hand_value_and_gradient():
    shading = torch.tensor(
        [[[1.0, 0.5, 2.0], [3.0, 0.5, 0.0]], [[9.0, 9.0, 9.0], [2.0, 1.5, 1.0]]], dtype=f64
    )
    mask = torch.tensor([[True, True], [False, True]])
    # foreground means per channel: (2, 0.8333, 1) -> |1| + |-0.1667| + |0|
    expected = 1 + (1 - 2.5 / 3) + 0
    assert white_shading_loss(shading, mask).item() == pytest.approx(expected, rel=1e-12)
    s = shading.clone().requires_grad_()
    assert gradcheck(lambda x: white_shading_loss(x + 0.01, mask), (s,))
    empty = white_shading_loss(s, torch.zeros(2, 2, dtype=torch.bool))
    empty.backward()
    assert empty.item() == 0 and torch.isfinite(s.grad).all()
    with pytest.raises(ValueError, match="mask"):
        white_shading_loss(shading, mask[0])


def numpy_top_eigenvector(features):
    centred = features - features.mean(0)
    values, vectors = np.linalg.eigh(centred.T @ centred)
    return vectors[:, -1]


def test_largest_eigenvector_matches_numpy_up_to_sign():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(3, 10, 6, generator=g, dtype=f64)
    vectors, defined = largest_eigenvector(feats)
    assert defined.all()
    for i in range(3):
        ref = numpy_top_eigenvector(feats[i].numpy())
        v = vectors[i].numpy()
        assert min(np.abs(v - ref).max(), np.abs(v + ref).max()) < 1e-10
    # valid points only
    valid = torch.ones(3, 10, dtype=torch.bool)
    valid[0, 7:] = False
    vectors, _ = largest_eigenvector(feats, valid)
    ref = numpy_top_eigenvector(feats[0, :7].numpy())
    assert (
        min(np.abs(vectors[0].numpy() - ref).max(), np.abs(vectors[0].numpy() + ref).max()) < 1e-10
    )


def test_feature_consistency_value_pairs_and_sign_invariance():
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(3, 12, 5, generator=g, dtype=f64)
    labels = torch.tensor([0, 1, 0])
    v = [numpy_top_eigenvector(feats[i].numpy()) for i in range(3)]
    pair = min(np.abs(v[0] - v[2]).sum(), np.abs(v[0] + v[2]).sum())  # only items 0 and 2 pair
    assert feature_consistency_loss(feats, labels).item() == pytest.approx(pair, rel=1e-10)
    # a Householder reflection of item 0's features turns its eigenvector into -v: the
    # same direction, so the loss is 0 whatever sign eigh returns for either item
    h = torch.eye(5, dtype=f64) - 2 * torch.outer(torch.from_numpy(v[0]), torch.from_numpy(v[0]))
    pair_feats = torch.stack([feats[0], feats[0] @ h])
    assert feature_consistency_loss(pair_feats).item() == pytest.approx(0, abs=1e-10)
    negated, _ = largest_eigenvector(pair_feats)
    assert min(
        (negated[0] - negated[1]).abs().max(), (negated[0] + negated[1]).abs().max()
    ) == pytest.approx(0, abs=1e-10)


def test_eigenvector_gradient_with_fewer_points_than_dimensions():
    # q = 4 points in D = 9 dimensions: the covariance has five zero eigenvalues, where
    # eigh's own backward gives 0 * inf = NaN; the gradient must stay exact
    g = torch.Generator().manual_seed(5)
    feats = torch.randn(2, 4, 9, generator=g, dtype=f64, requires_grad=True)
    labels = torch.tensor([0, 0])

    def top(x):
        v, _ = largest_eigenvector(x)
        return v * v[:, :1].sign()  # fix the arbitrary sign

    assert gradcheck(top, (feats,))
    assert gradcheck(lambda x: feature_consistency_loss(x, labels), (feats,))
    valid = torch.tensor([[True, True, True, False], [True] * 4])
    loss = feature_consistency_loss(feats, labels, valid)
    loss.backward()
    assert torch.isfinite(feats.grad).all() and (feats.grad[0, 3] == 0).all()


def test_feature_consistency_gradient_and_degenerate_items():
    g = torch.Generator().manual_seed(2)
    feats = torch.randn(2, 8, 4, generator=g, dtype=f64, requires_grad=True)
    assert gradcheck(feature_consistency_loss, (feats,))
    # constant features and single points have no principal direction: skipped, finite
    constant = torch.ones(3, 6, 4, requires_grad=True)
    loss = feature_consistency_loss(constant)
    loss.backward()
    assert loss.item() == 0 and torch.isfinite(constant.grad).all()
    mixed = torch.cat([feats.detach(), torch.zeros(1, 8, 4, dtype=f64)]).requires_grad_()
    vectors, defined = largest_eigenvector(mixed)
    assert defined.tolist() == [True, True, False] and (vectors[2] == 0).all()
    loss = feature_consistency_loss(mixed)
    loss.backward()
    assert torch.isfinite(mixed.grad).all() and (mixed.grad[2] == 0).all()
    single = torch.randn(2, 8, 4, dtype=f64)
    valid = torch.zeros(2, 8, dtype=torch.bool)
    valid[:, 0] = True
    assert feature_consistency_loss(single, valid=valid).item() == 0


def test_invalid_points_and_non_finite_items_never_reach_the_gradient():
    # MSU stage 3 stopped on a NaN gradient with a finite loss: a boundary point at
    # the regressed camera's plane sampled a NaN feature; masked out by `valid`, it
    # still poisoned the backward (NaN * 0). The mask must keep it out of both.
    g = torch.Generator().manual_seed(5)
    feats = torch.randn(3, 8, 4, generator=g, dtype=f64)
    valid = torch.ones(3, 8, dtype=torch.bool)
    poisoned = feats.clone()
    poisoned[0, 3] = math.nan
    valid[0, 3] = False
    x = poisoned.clone().requires_grad_()
    vectors, defined = largest_eigenvector(x, valid)
    assert defined.all()
    clean, _ = largest_eigenvector(feats[[0]][:, [0, 1, 2, 4, 5, 6, 7]])
    assert torch.allclose(vectors[0].abs(), clean[0].abs())
    loss = feature_consistency_loss(x, valid=valid)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    assert (x.grad[0, 3] == 0).all()
    # A non-finite feature at a valid point propagates (eigh would refuse it).
    poisoned[1, 2] = math.inf
    vectors, defined = largest_eigenvector(poisoned, valid)
    assert defined.all() and vectors[1].isnan().all() and torch.isfinite(vectors[[0, 2]]).all()
    assert feature_consistency_loss(poisoned, valid=valid).isnan()


def test_pretraining_losses_batch_mean_and_gradients():
    g = torch.Generator().manual_seed(3)
    occ = torch.rand(2, 5, generator=g, dtype=f64, requires_grad=True)
    occ_t = (torch.rand(2, 5, generator=g) > 0.5).to(f64)
    albedo = torch.rand(2, 5, 3, generator=g, dtype=f64, requires_grad=True)
    albedo_t = torch.rand(2, 5, 3, generator=g, dtype=f64)
    logits = torch.randn(2, 4, generator=g, dtype=f64, requires_grad=True)
    labels = torch.tensor([3, 1])

    def total(o, a, lg):
        out = occupancy_pretraining_losses(o, occ_t, a, albedo_t, lg, labels)
        return out["occupancy"] + out["albedo"] + out["category"]

    assert gradcheck(total, (occ, albedo, logits))
    halves = [
        occupancy_pretraining_losses(
            occ[i : i + 1],
            occ_t[i : i + 1],
            albedo[i : i + 1],
            albedo_t[i : i + 1],
            logits[i : i + 1],
            labels[i : i + 1],
        )
        for i in range(2)
    ]
    whole = occupancy_pretraining_losses(occ, occ_t, albedo, albedo_t, logits, labels)
    for key in whole:
        assert whole[key].item() == pytest.approx((halves[0][key] + halves[1][key]).item() / 2)


def _naive_boundary(occupied, branch):
    r = occupied.shape[0]
    out = torch.zeros_like(occupied)
    for i, j, k in itertools.product(range(r), repeat=3):
        if not occupied[i, j, k]:
            continue
        for di, dj, dk in ((1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)):
            a, b, c = i + di, j + dj, k + dk
            if 0 <= a < r and 0 <= b < r and 0 <= c < r and occupied[a, b, c]:
                out[i, j, k] |= bool(branch[a, b, c] != branch[i, j, k])
    return out


def test_part_boundary_points_are_the_voxels_next_to_another_branch():
    from svrecon.data import voxel_centres
    from svrecon.losses import part_boundary_points

    gen = torch.Generator().manual_seed(0)
    centres = voxel_centres(6)
    occupied = torch.rand(2, 6, 6, 6, generator=gen) < 0.7
    branch = torch.randint(0, 3, (2, 6, 6, 6), generator=gen)
    branch[1] = (centres[..., 0] > 0).long()  # item 1: two halves
    points, valid = part_boundary_points(centres, occupied, branch, 20, generator=gen)
    assert points.shape == (2, 20, 3) and valid.all()
    for b in range(2):
        expected = _naive_boundary(occupied[b], branch[b])
        index = ((points[b] + 0.6) / 0.2 - 0.5).round().long()
        assert expected[tuple(index.T)].all()  # every drawn point is on a boundary
        assert len(torch.unique(index, dim=0)) == 20  # without replacement
    # Item 1's boundaries lie in the two layers beside x = 0.
    assert torch.allclose(points[1, :, 0].abs(), torch.full((20,), 0.1))
    # More slots than boundary voxels: all of them, then invalid slots at the origin.
    count = int(_naive_boundary(occupied[1], branch[1]).sum())
    points, valid = part_boundary_points(centres, occupied, branch, count + 5, generator=gen)
    assert valid[1].sum() == count and (points[1][~valid[1]] == 0).all()
    one_branch = torch.zeros_like(branch)
    _, valid = part_boundary_points(centres, occupied, one_branch, 4)
    assert not valid.any()  # no segments, no boundary
    with pytest.raises(ValueError, match="branch_index: expected shape"):
        part_boundary_points(centres, occupied, branch[:1], 4)


def _balance_loop(logits, mask):
    """Naive reference: per item, K * sum_k f_k P_k over the masked points, then the mean."""
    values = []
    for item_logits, item_mask in zip(logits, mask, strict=True):
        k = item_logits.shape[-1]
        rows = item_logits[item_mask]
        points = [(row, int(row.argmax())) for row in rows]
        if not points:
            values.append(0.0)
            continue
        total = 0.0
        for branch in range(k):
            share = sum(1 for _, w in points if w == branch) / len(points)
            mean_p = sum(float(torch.softmax(row, 0)[branch]) for row, _ in points) / len(points)
            total += share * mean_p
        values.append(k * total)
    return sum(values) / len(values)


def test_branch_balance_hand_values_extremes_and_naive_loop():
    inside = torch.ones(1, 2, dtype=torch.bool)
    logits = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0]]])  # branch 0 wins both
    # f = (1, 0), P = (5/8, 3/8): 2 * 5/8
    assert branch_balance_loss(logits, inside).item() == pytest.approx(1.25)
    # one branch takes everything with certainty: K; an even split with certainty: 1
    sure = torch.tensor([[[20.0, 0.0, 0.0], [20.0, 0.0, 0.0], [20.0, 0.0, 0.0]]])
    assert branch_balance_loss(sure, torch.ones(1, 3, dtype=bool)).item() == pytest.approx(3.0)
    split = torch.eye(3)[None] * 20
    assert branch_balance_loss(split, torch.ones(1, 3, dtype=bool)).item() == pytest.approx(1.0)
    # masked points do not count
    assert branch_balance_loss(logits, torch.tensor([[True, False]])).item() == pytest.approx(1.0)
    torch.manual_seed(0)
    logits = torch.randn(3, 17, 5, dtype=torch.float64)
    mask = torch.rand(3, 17) > 0.3
    mask[1] = False  # an item with nothing inside contributes 0
    got = branch_balance_loss(logits, mask)
    assert got.item() == pytest.approx(_balance_loop(logits, mask), rel=1e-12)
    # over the batch: the items' points pooled
    pooled = branch_balance_loss(logits, mask, per_item=False)
    flat = _balance_loop(logits[mask][None], torch.ones(1, int(mask.sum()), dtype=bool))
    assert pooled.item() == pytest.approx(flat, rel=1e-12)


def test_branch_balance_gradient_reaches_every_branch_and_passes_gradcheck():
    torch.manual_seed(1)
    logits = torch.randn(2, 9, 4, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(2, 9) > 0.2
    branch_balance_loss(logits, mask).backward()
    assert (logits.grad[mask].abs() > 0).all()  # losers too: not only the argmax branch
    assert (logits.grad[~mask] == 0).all()
    assert gradcheck(lambda x: branch_balance_loss(x, mask), (logits.detach().requires_grad_(),))


def test_branch_balance_refuses_bad_shapes_and_keeps_empty_inputs_finite():
    with pytest.raises(ValueError, match=r"logits: expected shape \[B, N, K\]"):
        branch_balance_loss(torch.zeros(2, 3), torch.ones(2, 3, dtype=bool))
    with pytest.raises(ValueError, match="mask"):
        branch_balance_loss(torch.zeros(2, 3, 4), torch.ones(2, 4, dtype=bool))
    with pytest.raises(ValueError, match="mask: expected a bool"):
        branch_balance_loss(torch.zeros(2, 3, 4), torch.ones(2, 3))
    empty = torch.zeros(0, 3, 4, requires_grad=True)
    loss = branch_balance_loss(empty, torch.zeros(0, 3, dtype=bool))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(empty.grad, torch.zeros_like(empty))
    none_inside = torch.randn(2, 3, 4, requires_grad=True)
    loss = branch_balance_loss(none_inside, torch.zeros(2, 3, dtype=bool))
    assert loss.item() == 0.0 and torch.isfinite(loss)


def _colour_separation_loop(logits, albedo, mask, scale):
    """Naive reference: every ordered pair of distinct masked points, one at a time."""
    values = []
    for b in range(logits.shape[0]):
        inside = [i for i in range(logits.shape[1]) if mask[b, i]]
        num = den = 0.0
        for i in inside:
            for j in inside:
                if i == j:
                    continue
                d = 1 - math.exp(-math.dist(albedo[b, i].tolist(), albedo[b, j].tolist()) / scale)
                p_i, p_j = torch.softmax(logits[b, i], 0), torch.softmax(logits[b, j], 0)
                num += d * float((p_i * p_j).sum())
                den += d
        values.append(num / den if den > 0 else 0.0)
    return sum(values) / len(values)


def test_branch_colour_separation_hand_values_and_naive_loop():
    inside = torch.ones(1, 3, dtype=torch.bool)
    red, blue = [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]
    albedo = torch.tensor([[red, blue, blue]])
    # branches 0, 1, 1 with certainty: the red point shares no branch with a blue one
    parted = torch.tensor([[[30.0, 0.0], [0.0, 30.0], [0.0, 30.0]]])
    assert branch_colour_separation_loss(parted, albedo, inside).item() == pytest.approx(0.0)
    # one branch for all: every differing pair shares it
    one = torch.tensor([[[30.0, 0.0]] * 3])
    assert branch_colour_separation_loss(one, albedo, inside).item() == pytest.approx(1.0)
    # the blue pair does not count, however its branches fall
    blues_apart = torch.tensor([[[30.0, 0.0], [30.0, 0.0], [0.0, 30.0]]])
    assert branch_colour_separation_loss(blues_apart, albedo, inside).item() == pytest.approx(0.5)
    # one colour everywhere, or fewer than two masked points: 0
    assert branch_colour_separation_loss(one, albedo[:, [1, 1, 1]], inside).item() == 0.0
    assert branch_colour_separation_loss(one, albedo, torch.tensor([[True, False, False]])) == 0
    # uniform branch probabilities: 1/K for every pair
    flat = torch.zeros(1, 3, 4)
    assert branch_colour_separation_loss(flat, albedo, inside).item() == pytest.approx(0.25)
    torch.manual_seed(0)
    logits = torch.randn(3, 11, 4, dtype=torch.float64)
    colours = torch.rand(3, 11, 3, dtype=torch.float64)
    mask = torch.rand(3, 11) > 0.3
    mask[2] = False
    for scale in (0.1, 0.5):
        got = branch_colour_separation_loss(logits, colours, mask, scale=scale, num_points=None)
        assert got.item() == pytest.approx(
            _colour_separation_loop(logits, colours, mask, scale), rel=1e-10
        )
    # num_points: the pairs of the first n masked points of each item
    got = branch_colour_separation_loss(logits, colours, mask, num_points=4)
    firsts = torch.zeros_like(mask)
    for b in range(3):
        firsts[b, torch.nonzero(mask[b]).flatten()[:4]] = True
    assert got.item() == pytest.approx(_colour_separation_loop(logits, colours, firsts, 0.1))


def test_branch_colour_separation_gradient_and_gradcheck():
    torch.manual_seed(2)
    logits = torch.randn(2, 7, 3, dtype=torch.float64, requires_grad=True)
    colours = torch.rand(2, 7, 3, dtype=torch.float64)
    mask = torch.rand(2, 7) > 0.2
    branch_colour_separation_loss(logits, colours, mask).backward()
    assert (logits.grad[~mask] == 0).all()
    assert (logits.grad[mask].abs() > 0).any(-1).all()  # every counted point is pushed
    loss = lambda x: branch_colour_separation_loss(x, colours, mask)  # noqa: E731
    assert gradcheck(loss, (logits.detach().requires_grad_(),))
    assert gradgradcheck(loss, (logits.detach().requires_grad_(),))


def test_branch_colour_separation_refuses_bad_inputs_and_keeps_empty_finite():
    logits, colours = torch.zeros(2, 3, 4), torch.rand(2, 3, 3)
    mask = torch.ones(2, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"logits: expected shape \[B, N, K\]"):
        branch_colour_separation_loss(torch.zeros(2, 3), colours, mask)
    with pytest.raises(ValueError, match="albedo"):
        branch_colour_separation_loss(logits, colours[..., :2], mask)
    with pytest.raises(ValueError, match="mask: expected a bool"):
        branch_colour_separation_loss(logits, colours, mask.float())
    with pytest.raises(ValueError, match="scale"):
        branch_colour_separation_loss(logits, colours, mask, scale=0.0)
    with pytest.raises(ValueError, match="num_points"):
        branch_colour_separation_loss(logits, colours, mask, num_points=1)
    empty = torch.zeros(0, 3, 4, requires_grad=True)
    loss = branch_colour_separation_loss(empty, torch.zeros(0, 3, 3), torch.zeros(0, 3, dtype=bool))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(empty.grad, torch.zeros_like(empty))
