"""Metrics against scipy references, brute force and hand-made cases."""

import itertools
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist
from scipy.spatial.transform import Rotation

from svrecon.fields import field_from_function
from svrecon.metrics import (
    PROTOCOLS,
    average_results,
    chamfer_distance,
    earth_movers_distance,
    evaluate,
    f_score,
    icp,
    kabsch,
    nearest_neighbors,
    normal_consistency,
    normalize_cloud,
    rotation_grid,
    rotation_search,
    volumetric_iou,
)

from .reference.analytic import sphere_sdf


def clouds(kind, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.normal(size=(2, 700, 3)), rng.normal(size=(2, 500, 3))
    # Structured: a grid and the same grid jittered, with ties at equal distances.
    g = np.stack(np.meshgrid(*[np.arange(8.0)] * 3, indexing="ij"), -1).reshape(-1, 3) / 8
    return np.stack([g, g + 0.01]), np.stack([g[::2] + 0.03, g[1::2]])


def reference_nn(a, b):
    return cKDTree(b).query(a, k=1)


@pytest.mark.parametrize("kind", ["random", "structured"])
def test_chamfer_and_fscore_match_kdtree_reference(kind):
    a, b = clouds(kind)
    pred, gt = torch.from_numpy(a), torch.from_numpy(b)
    cd = chamfer_distance(pred, gt)
    cd_sq = chamfer_distance(pred, gt, squared=True)
    thresholds = [0.02, 0.1, 0.5]
    fs = f_score(pred, gt, thresholds)
    for i in range(2):
        d_ab, _ = reference_nn(a[i], b[i])
        d_ba, _ = reference_nn(b[i], a[i])
        assert cd.accuracy[i].item() == pytest.approx(d_ab.mean(), abs=1e-6)
        assert cd.completeness[i].item() == pytest.approx(d_ba.mean(), abs=1e-6)
        assert cd.chamfer[i].item() == pytest.approx((d_ab.mean() + d_ba.mean()) / 2, abs=1e-6)
        assert cd_sq.total[i].item() == pytest.approx((d_ab**2).mean() + (d_ba**2).mean(), abs=1e-6)
        for j, t in enumerate(thresholds):
            p, r = (d_ab < t).mean(), (d_ba < t).mean()
            f = 2 * p * r / (p + r) if p + r > 0 else 0.0
            assert fs.precision[i, j].item() == pytest.approx(p, abs=1e-12)
            assert fs.recall[i, j].item() == pytest.approx(r, abs=1e-12)
            assert fs.fscore[i, j].item() == pytest.approx(f, abs=1e-6)
    assert fs.fscore.shape == (2, 3)


def test_chamfer_is_differentiable_without_nan_and_chunk_independent():
    a, b = clouds("random", 1)
    pred = torch.from_numpy(a).requires_grad_()
    gt = torch.from_numpy(b)
    gt = torch.cat([gt, pred.detach()[:, :5]], 1)  # some coincident points
    chamfer_distance(pred, gt).chamfer.sum().backward()
    assert torch.isfinite(pred.grad).all()
    # A tiny cloud pair against the gradient of the naive formula.
    p = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]], dtype=torch.float64, requires_grad=True)
    q = torch.tensor([[[0.0, 2.0, 0.0]]], dtype=torch.float64)
    chamfer_distance(p, q).accuracy.sum().backward()
    expected = (
        torch.tensor([[[0.0, -1.0, 0.0], [1 / 5**0.5, -2 / 5**0.5, 0.0]]], dtype=torch.float64) / 2
    )
    assert torch.allclose(p.grad, expected)


def test_brute_force_path_equals_kdtree():
    from svrecon.metrics.distances import _brute_force_index

    a, b = clouds("random", 2)
    q, r = torch.from_numpy(a), torch.from_numpy(b)
    _, idx = nearest_neighbors(q, r)
    assert torch.equal(_brute_force_index(q, r, chunk_size=64), idx)


@pytest.mark.parametrize("kind", ["random", "structured"])
def test_normal_consistency_matches_reference(kind):
    a, b = clouds(kind, 3)
    rng = np.random.default_rng(5)
    na, nb = rng.normal(size=a.shape), rng.normal(size=b.shape)
    out = normal_consistency(*(torch.from_numpy(x) for x in (a, na, b, nb)))
    for i in range(2):
        _, ia = reference_nn(a[i], b[i])
        _, ib = reference_nn(b[i], a[i])

        def unit(n):
            return n / np.linalg.norm(n, axis=-1, keepdims=True)

        acc = np.abs((unit(na[i]) * unit(nb[i][ia])).sum(-1)).mean()
        comp = np.abs((unit(nb[i]) * unit(na[i][ib])).sum(-1)).mean()
        assert out[i].item() == pytest.approx((acc + comp) / 2, abs=1e-6)


def test_emd_exact_against_brute_force_and_assignment():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(1, 6, 3)), rng.normal(size=(1, 6, 3))
    cost = cdist(a[0], b[0])
    best = min(cost[range(6), list(perm)].mean() for perm in itertools.permutations(range(6)))
    assert earth_movers_distance(torch.from_numpy(a), torch.from_numpy(b)).item() == pytest.approx(
        best, abs=1e-12
    )
    a, b = rng.normal(size=(2, 1000, 3)), rng.uniform(size=(2, 1000, 3))
    emd = earth_movers_distance(torch.from_numpy(a), torch.from_numpy(b))
    for i in range(2):
        cost = cdist(a[i], b[i])
        rows, cols = linear_sum_assignment(cost)
        assert emd[i].item() == pytest.approx(cost[rows, cols].mean(), abs=1e-12)


def test_emd_approximation_is_an_upper_bound_close_to_exact():
    rng = np.random.default_rng(1)
    a = torch.from_numpy(rng.normal(size=(1, 1500, 3)))
    b = torch.from_numpy(rng.normal(size=(1, 1500, 3)) + 0.5)
    exact = earth_movers_distance(a, b, exact_limit=1500).item()
    approx = earth_movers_distance(a, b, exact_limit=500).item()
    assert exact <= approx <= 1.25 * exact
    with pytest.raises(ValueError):
        earth_movers_distance(a, b[:, :10])


def test_volumetric_iou_matches_voxel_count():
    rng = np.random.default_rng(2)
    pred, gt = rng.random((3, 8, 8, 8)) > 0.5, rng.random((3, 8, 8, 8)) > 0.3
    pred[2], gt[2] = False, False
    out = volumetric_iou(torch.from_numpy(pred), torch.from_numpy(gt))
    for i in range(2):
        inter = union = 0
        for x, y, z in itertools.product(range(8), repeat=3):
            inter += pred[i, x, y, z] and gt[i, x, y, z]
            union += pred[i, x, y, z] or gt[i, x, y, z]
        assert out[i].item() == pytest.approx(inter / union)
    assert out[2].item() == 1.0
    with pytest.raises(ValueError, match="boolean"):
        volumetric_iou(torch.zeros(1, 4), torch.zeros(1, 4))


def test_chamfer_and_fscore_100k_points_in_bounded_memory():
    script = textwrap.dedent(
        """
        import resource, torch
        from svrecon.metrics import chamfer_distance, f_score
        g = torch.Generator().manual_seed(0)
        a = torch.rand(1, 100_000, 3, generator=g)
        b = torch.rand(1, 100_000, 3, generator=g)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cd = chamfer_distance(a, b)
        fs = f_score(a, b, [0.01, 0.02])
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # ru_maxrss survives execve (it can report the forking pytest process's peak);
        # VmHWM belongs to this process's own address space.
        try:
            with open("/proc/self/status") as f:
                after = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
        except OSError:
            pass
        print(after - before, after, float(cd.chamfer), float(fs.fscore[0, 1]))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    growth_kb, peak_kb, chamfer, fscore = out.stdout.split()
    assert int(peak_kb) < 2 * 1024 * 1024  # whole process under 2 GB
    assert 0 < float(chamfer) < 0.05 and 0 < float(fscore) <= 1


def test_kabsch_recovers_similarity_and_icp_recovers_rigid_transform():
    rng = np.random.default_rng(3)
    source = torch.from_numpy(rng.uniform(-1, 1, size=(2, 400, 3)) * np.array([1.0, 0.6, 0.3]))
    rot = torch.from_numpy(Rotation.from_rotvec([[0.1, -0.2, 0.15], [-0.05, 0.1, 0.2]]).as_matrix())
    t = torch.tensor([[0.1, -0.05, 0.2], [0.0, 0.1, -0.1]], dtype=torch.float64)
    s = torch.tensor([1.5, 0.7], dtype=torch.float64)
    target = s[:, None, None] * source @ rot.transpose(1, 2) + t[:, None]
    r_est, t_est, s_est = kabsch(source, target, scale=True)
    assert (
        torch.allclose(r_est, rot, atol=1e-10)
        and torch.allclose(s_est, s)
        and torch.allclose(t_est, t)
    )
    rigid = source @ rot.transpose(1, 2) + t[:, None]
    shuffled = rigid[:, torch.randperm(400)]  # ICP must find the correspondences itself
    result = icp(source, shuffled, iterations=100)
    assert (result.rotation - rot).abs().max() < 1e-4
    assert (result.translation - t).abs().max() < 1e-4
    assert result.error.max() < 1e-4
    assert torch.allclose(torch.det(result.rotation), torch.ones(2, dtype=torch.float64))


def test_rotation_search_finds_grid_rotation():
    grid = rotation_grid(azimuths=8, elevations=3, rolls=2)
    assert grid.shape == (48, 3, 3)
    assert torch.allclose(
        grid @ grid.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(48, 3, 3), atol=1e-12
    )
    rng = np.random.default_rng(4)
    source = torch.from_numpy(rng.uniform(-1, 1, size=(2, 300, 3)) * np.array([1.0, 0.5, 0.2]))
    truth = grid[[5, 30]]
    target = source @ truth.transpose(1, 2)
    found, score = rotation_search(source, target, grid)
    assert torch.allclose(found, truth) and (score < 1e-12).all()


def test_normalize_cloud_hand_case():
    points = torch.tensor([[[0.0, 0.0, 0.0], [2.0, 1.0, 5.0], [1.0, 4.0, 1.0]]])
    out = normalize_cloud(points, "xy_extent")  # centre (1, 2, 2.5), scale max(2, 4) = 4
    assert torch.allclose(out[0, 1], torch.tensor([0.25, -0.25, 0.625]))
    out = normalize_cloud(torch.zeros(1, 4, 3), "unit_sphere")
    assert torch.equal(out, torch.zeros(1, 4, 3))


# --- protocols ------------------------------------------------------------------------------


def sphere_points(radius, n, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, 3))
    return torch.from_numpy(radius * v / np.linalg.norm(v, axis=1, keepdims=True))


def sphere_field(radius):
    return field_from_function(lambda p: sphere_sdf(p, radius=radius))


def test_every_protocol_names_its_source():
    assert set(PROTOCOLS) >= {"disn", "sdf_srn", "sdf_srn_pascal3d", "cat3d", "shapeclipper", "msu"}
    for p in PROTOCOLS.values():
        assert len(p.source) > 20


def test_sdf_srn_protocol_reports_separate_x10_distances():
    p = PROTOCOLS["sdf_srn"].with_(num_points=20000)
    out = evaluate(sphere_field(0.43), sphere_points(0.5, 20000), p)
    assert "chamfer" not in out
    assert out["accuracy"] == pytest.approx(0.7, abs=0.01)  # 0.07 x 10
    assert out["completeness"] == pytest.approx(0.7, abs=0.01)


def test_cat3d_protocol_view_centric_mean_chamfer_and_fscores():
    p = PROTOCOLS["cat3d"].with_(num_points=20000)
    rotation = torch.from_numpy(Rotation.from_rotvec([0.3, -1.0, 0.2]).as_matrix())
    out = evaluate(
        sphere_field(0.43),
        sphere_points(0.5, 20000),
        p,
        pred_rotation=rotation,
        gt_rotation=rotation,
    )
    assert out["chamfer"] == pytest.approx(0.07, abs=1e-3)
    assert out["fscore@0.01"] == 0 and out["fscore@0.05"] == 0 and out["fscore@0.1"] == 1
    with pytest.raises(ValueError, match="pred_rotation"):
        evaluate(sphere_field(0.43), sphere_points(0.5, 100), p)


def test_disn_protocol_squared_sum_x1000_side_fraction_and_emd():
    out = evaluate(sphere_field(0.43), sphere_points(0.5, 2048), "disn")
    # Squared distances, both sides summed, x1000: 2 * 0.07^2 * 1000 = 9.8, plus the
    # spacing of 2048 points (unsquared it would be ~140, averaged ~4.9).
    assert 9.8 <= out["chamfer"] <= 11.5
    # Thresholds are fractions of a fixed side 2.0 (Xharlie/DISN): 0.02 -> 0.04 and
    # 0.05 -> 0.1 in distance, on either side of the 0.07 gap.
    assert out["fscore@0.02"] == 0 and out["fscore@0.05"] == 1 and out["fscore@0.2"] == 1
    # EMD >= 0.07 (plus point spacing; vertices drawn with replacement repeat some), x100
    assert 7.0 <= out["emd"] <= 9.0


def test_shapeclipper_protocol_is_scale_invariant():
    p = PROTOCOLS["shapeclipper"].with_(num_points=20000)
    eye = torch.eye(3, dtype=torch.float64)
    out = evaluate(
        sphere_field(0.43), sphere_points(0.5, 20000), p, pred_rotation=eye, gt_rotation=eye
    )
    assert out["chamfer"] < 0.01  # both become radius-0.5 spheres
    unscaled = evaluate(
        sphere_field(0.43),
        sphere_points(0.5, 20000),
        PROTOCOLS["cat3d"].with_(num_points=20000),
        pred_rotation=eye,
        gt_rotation=eye,
    )
    assert unscaled["chamfer"] > 5 * out["chamfer"]


def test_msu_protocol_squared_threshold():
    p = PROTOCOLS["msu"].with_(num_points=20000)
    # tau = 1e-4 on squared distances is 0.01 in distance.
    close = evaluate(sphere_field(0.498), sphere_points(0.5, 100_000), p.with_(num_points=100_000))
    far = evaluate(sphere_field(0.48), sphere_points(0.5, 20000), p)
    assert close["fscore@0.0001"] > 0.99 and far["fscore@0.0001"] == 0.0
    assert far["chamfer"] == pytest.approx(0.2, abs=2e-2)  # 0.02, in OccNet's x10 unit


def test_sdf_srn_pascal3d_protocol_aligns_by_icp():
    shifted = field_from_function(lambda p: sphere_sdf(p, radius=0.5, center=(0.05, -0.03, 0.0)))
    gt = sphere_points(0.5, 20000)
    plain = evaluate(shifted, gt, PROTOCOLS["sdf_srn"].with_(num_points=20000))
    aligned = evaluate(shifted, gt, PROTOCOLS["sdf_srn_pascal3d"].with_(num_points=20000))
    assert aligned["accuracy"] < 0.1 < plain["accuracy"]  # x10 units


def test_empty_prediction_scores_finite():
    out = evaluate(
        field_from_function(lambda p: torch.ones(p.shape[0])),
        sphere_points(0.5, 1000),
        PROTOCOLS["cat3d"].with_(num_points=1000),
        pred_rotation=torch.eye(3),
        gt_rotation=torch.eye(3),
    )
    assert out["chamfer"] == pytest.approx(0.5, abs=1e-6)  # all points at the origin
    assert out["fscore@0.1"] == 0


def test_average_results_per_category_and_from_mean_precision_recall():
    rows = [{"chamfer": 1.0}, {"chamfer": 3.0}, {"chamfer": 8.0}]
    assert average_results(rows, "cat3d", ["a", "a", "b"])["chamfer"] == pytest.approx(
        5.0
    )  # (2 + 8) / 2
    assert average_results(rows, PROTOCOLS["cat3d"].with_(category_average=False), ["a", "a", "b"])[
        "chamfer"
    ] == pytest.approx(4.0)
    p = PROTOCOLS["disn"].with_(thresholds=(0.1,))
    rows = [
        {"precision@0.1": 1.0, "recall@0.1": 0.0, "fscore@0.1": 0.0},
        {"precision@0.1": 0.0, "recall@0.1": 1.0, "fscore@0.1": 0.0},
    ]
    assert average_results(rows, p)["fscore@0.1"] == pytest.approx(0.5)  # F(0.5, 0.5)
    assert average_results(rows, "cat3d")["fscore@0.1"] == 0.0


@pytest.mark.parametrize("fast", [True, False])
def test_both_kdtree_backends_match_brute_force(fast):
    from svrecon.metrics.distances import _tree_index

    rng = np.random.default_rng(3)
    q, r = rng.normal(size=(500, 3)), rng.normal(size=(300, 3))
    distance, index = _tree_index(q, r, fast=fast)
    full = cdist(q, r)
    np.testing.assert_array_equal(index, full.argmin(1))
    np.testing.assert_allclose(distance, full.min(1), rtol=1e-12)


def test_chunked_search_is_exact_near_ties_in_float32():
    """Far from the origin, cdist's |q|^2 + |r|^2 - 2 q.r form cannot separate two
    references 1e-4 apart in distance; the chunked search must."""
    from svrecon.metrics.distances import _brute_force_index

    rng = np.random.default_rng(4)
    q = 100 + rng.uniform(-1, 1, size=(200, 3))
    direction = rng.normal(size=(200, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    near = q + 0.0100 * direction  # the nearest
    other = q - 0.0101 * direction  # a near tie on the other side
    reference = np.concatenate([other, near])
    qt = torch.from_numpy(q).float()[None]
    rt = torch.from_numpy(reference).float()[None]
    index = _brute_force_index(qt, rt, chunk_size=64)[0].numpy()
    np.testing.assert_array_equal(index, np.arange(200) + 200)
