"""The fitted-sphere baseline against a brute-force loop and an analytic case."""

import numpy as np
import torch
from scipy.spatial.distance import cdist

from svrecon.engine import fit_sphere_baseline, sphere_mesh


class _Clouds:
    """The two things fit_sphere_baseline reads from a dataset: items' surface points
    (one view per shape)."""

    multiview, views = False, 1

    def __init__(self, clouds):
        self.clouds = clouds

    def __len__(self):
        return len(self.clouds)

    def __getitem__(self, i):
        return {"surface_points": torch.from_numpy(self.clouds[i])}


def _brute_force_radius(clouds, radii):
    directions = sphere_mesh(1.0).vertices
    totals = []
    for r in radii:
        total = 0.0
        for cloud in clouds:
            accuracy = cdist(directions * r, cloud).min(axis=1).mean()
            completeness = np.abs(np.linalg.norm(cloud, axis=1) - r).mean()
            total += (accuracy + completeness) / 2
        totals.append(total)
    return radii[int(np.argmin(totals))], totals


def test_fit_sphere_baseline_matches_a_brute_force_search():
    rng = np.random.default_rng(0)
    # Boxes of different proportions: no radius fits exactly, the optimum is interior.
    clouds = []
    for half in ([0.4, 0.2, 0.3], [0.1, 0.5, 0.2], [0.3, 0.3, 0.05]):
        p = rng.uniform(-1, 1, (300, 3)) * half
        face = rng.integers(0, 3, 300)
        p[np.arange(300), face] = np.sign(rng.uniform(-1, 1, 300)) * np.asarray(half)[face]
        clouds.append(p)
    radii = np.linspace(0.05, 0.6, 12)
    expected, totals = _brute_force_radius(clouds, radii)
    assert 0 < int(np.argmin(totals)) < len(radii) - 1
    assert fit_sphere_baseline(_Clouds(clouds), radii) == expected


def test_fit_sphere_baseline_recovers_a_sphere():
    rng = np.random.default_rng(1)
    clouds = []
    for _ in range(2):
        d = rng.normal(size=(2000, 3))
        clouds.append(0.3 * d / np.linalg.norm(d, axis=1, keepdims=True))
    radii = np.linspace(0.05, 0.6, 56)  # the default grid, in steps of 0.01
    assert abs(fit_sphere_baseline(_Clouds(clouds)) - 0.3) < 1e-9
    assert abs(fit_sphere_baseline(_Clouds(clouds), radii, max_items=1) - 0.3) < 1e-9
