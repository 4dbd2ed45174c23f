"""Naive per-ray, per-sample alpha compositing (VolSDF Eq. 9-11), written as loops."""

import math


def composite_loop(t, sigma, colors, last_delta):
    """Weights, opacity and colour of one ray from Python lists of floats."""
    n = len(t)
    weights, transmittance = [], 1.0
    for i in range(n):
        delta = t[i + 1] - t[i] if i + 1 < n else last_delta
        alpha = 1 - math.exp(-delta * sigma[i])
        weights.append(alpha * transmittance)
        transmittance *= math.exp(-delta * sigma[i])
    color = [sum(w * c[k] for w, c in zip(weights, colors, strict=True)) for k in range(3)]
    return weights, sum(weights), color
