"""A fuzz of the point-cloud metrics by category (hypothesis), against scipy. Policy
(docs/reliability.md): finite clouds give finite values (and gradients where the
metric is differentiable); integer clouds are promoted, never computed in integer
arithmetic; float16 works to float16's precision; a non-finite point makes its item
NaN and leaves the others untouched; an empty or wrongly shaped cloud is a ValueError
that names the argument. A new cloud metric is covered by adding its spec to SPECS."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from svrecon import metrics as M


def _nearest(p, g):
    return cdist(p, g).min(1)


def scipy_chamfer(p, g):
    return (_nearest(p, g).mean() + _nearest(g, p).mean()) / 2


def scipy_fscore(p, g, t=0.5):
    precision, recall = (_nearest(p, g) < t).mean(), (_nearest(g, p) < t).mean()
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def scipy_emd(p, g):
    cost = cdist(p, g)
    rows, cols = linear_sum_assignment(cost)
    return cost[rows, cols].mean()


def scipy_nearest_mean(p, g):
    return _nearest(p, g).mean()


# name -> (metric on (pred, gt) returning [B], scipy on one item's float64 arrays,
# whether pred and gt must have equal sizes)
SPECS = {
    "chamfer_distance": (lambda p, g: M.chamfer_distance(p, g).chamfer, scipy_chamfer, False),
    "f_score": (lambda p, g: M.f_score(p, g, [0.5]).fscore[:, 0], scipy_fscore, False),
    "nearest_neighbors": (lambda p, g: M.nearest_neighbors(p, g)[0].mean(-1),
                          scipy_nearest_mean, False),
    "earth_movers_distance": (M.earth_movers_distance, scipy_emd, True),
}  # fmt: skip
ARGUMENTS = {"nearest_neighbors": ("query", "reference")}


def clouds(b, n, m, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(b, n, 3, generator=gen, dtype=torch.float64).to(dtype),
            torch.rand(b, m, 3, generator=gen, dtype=torch.float64).to(dtype))  # fmt: skip


def reference(name, pred, gt):
    ref = SPECS[name][1]
    values = [ref(p.double().numpy(), g.double().numpy()) for p, g in zip(pred, gt, strict=True)]
    return torch.tensor(values, dtype=torch.float64)


sizes = dict(b=st.integers(1, 3), n=st.integers(1, 7), m=st.integers(1, 7), seed=st.integers(0, 99))


@pytest.mark.parametrize("name", sorted(SPECS))
@settings(max_examples=10, deadline=None)
@given(**sizes)
def test_finite_clouds_match_scipy(name, b, n, m, seed):
    metric, _, equal = SPECS[name]
    pred, gt = clouds(b, n, n if equal else m, seed=seed)
    value = metric(pred, gt)
    assert value.shape == (b,) and torch.isfinite(value).all()
    torch.testing.assert_close(value.double(), reference(name, pred, gt))


@pytest.mark.parametrize("name", ["chamfer_distance", "nearest_neighbors"])
@settings(max_examples=10, deadline=None)
@given(**sizes)
def test_differentiable_metrics_have_finite_gradients(name, b, n, m, seed):
    pred, gt = (c.requires_grad_() for c in clouds(b, n, m, seed=seed))
    gt.data[:, :1] = pred.data[:, :1]  # a coincident pair: a zero, not NaN, gradient
    grads = torch.autograd.grad(SPECS[name][0](pred, gt).sum(), [pred, gt])
    assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", sorted(SPECS))
@settings(max_examples=10, deadline=None)
@given(**sizes)
def test_integer_clouds_are_promoted(name, b, n, m, seed):
    metric, _, equal = SPECS[name]
    gen = torch.Generator().manual_seed(seed)
    pred = torch.randint(-3, 4, (b, n, 3), generator=gen)
    gt = torch.randint(-3, 4, (b, n if equal else m, 3), generator=gen)
    value = metric(pred, gt)
    assert value.is_floating_point()
    # promoted to the default dtype (float32): its precision, not float64's
    tolerance = {} if value.dtype == torch.float64 else {"rtol": 1.3e-6, "atol": 1e-5}
    torch.testing.assert_close(value.double(), reference(name, pred, gt), **tolerance)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_float16_works_to_its_precision(name):
    metric, _, equal = SPECS[name]
    pred, gt = clouds(2, 6, 6 if equal else 5, dtype=torch.float16)
    value = metric(pred, gt)
    assert value.dtype == (torch.float64 if name == "f_score" else torch.float16)  # a fraction
    torch.testing.assert_close(value.double(), reference(name, pred, gt), rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("where", ["pred", "gt"])
def test_a_non_finite_point_makes_its_item_nan(name, bad, where):
    metric, _, equal = SPECS[name]
    pred, gt = clouds(2, 5, 5 if equal else 4)
    clean = metric(pred, gt)
    (pred if where == "pred" else gt)[0, 1, 2] = bad
    value = metric(pred, gt)
    assert torch.isnan(value[0]) and value[1] == clean[1]


@pytest.mark.parametrize("name", sorted(SPECS))
def test_wrong_shapes_name_the_argument(name):
    metric = SPECS[name][0]
    first, second = ARGUMENTS.get(name, ("pred", "gt"))
    pred, gt = clouds(2, 4, 4)
    for bad, arg in [((pred[..., :2], gt), first), ((pred, gt[:1]), second),
                     ((pred[0], gt), first), ((pred, gt[..., None]), second)]:  # fmt: skip
        with pytest.raises(ValueError, match=arg):
            metric(*bad)


@pytest.mark.parametrize("name", ["chamfer_distance", "f_score"])
@pytest.mark.parametrize("which", [0, 1])
def test_an_empty_cloud_is_refused_by_name(name, which):
    cut = list(clouds(2, 4, 3))
    cut[which] = cut[which][:, :0]
    with pytest.raises(ValueError, match=f"{('pred', 'gt')[which]}: expected at least one"):
        SPECS[name][0](*cut)


def test_empty_clouds_where_they_have_a_value():
    pred, gt = clouds(2, 0, 0)
    assert (M.earth_movers_distance(pred, gt) == 0).all()
    assert (M.approximate_match_cost(pred, clouds(2, 3, 3)[1]) == 0).all()
    distance, index = M.nearest_neighbors(pred, clouds(2, 3, 3)[1])  # no query points
    assert distance.shape == index.shape == (2, 0)
    with pytest.raises(ValueError, match="reference: expected at least one point"):
        M.nearest_neighbors(clouds(2, 3, 3)[0], gt)


def test_complex_clouds_are_refused_by_name():
    pred, gt = clouds(1, 3, 3)
    with pytest.raises(ValueError, match="pred: expected real values"):
        M.chamfer_distance(pred.to(torch.complex128), gt)
    assert np.isfinite(M.approximate_match_cost(pred.int(), gt.int()).numpy()).all()
