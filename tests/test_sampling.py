import pytest
import torch
from scipy import stats

from svrecon.cameras import (
    gather_pixels,
    inverse_distance_weights,
    sample_pixels_uniform,
    sample_pixels_weighted,
)


def test_uniform_sampling_is_without_replacement_and_consistent():
    s = sample_pixels_uniform(4, 10, 12, 100, generator=torch.Generator().manual_seed(0))
    assert s.indices.shape == (4, 100) and s.pixels.shape == (4, 100, 2)
    for row in s.indices:
        assert len(set(row.tolist())) == 100
    assert s.indices.min() >= 0 and s.indices.max() < 120
    torch.testing.assert_close(s.pixels[..., 0], (s.indices % 12).float() + 0.5)
    torch.testing.assert_close(s.pixels[..., 1], (s.indices // 12).float() + 0.5)
    all_pixels = sample_pixels_uniform(1, 3, 4, 12).indices
    assert sorted(all_pixels[0].tolist()) == list(range(12))


def test_uniform_sampling_is_uniform():
    g = torch.Generator().manual_seed(1)
    counts = torch.zeros(20)
    for _ in range(400):
        counts += torch.bincount(
            sample_pixels_uniform(1, 4, 5, 5, generator=g).indices[0], minlength=20
        )
    # 2000 draws over 20 pixels: chi-square goodness of fit against uniform.
    assert stats.chisquare(counts.numpy()).pvalue > 1e-3


def test_weighted_sampling_follows_weights_and_skips_zeros():
    weights = torch.tensor([[[0.0, 1.0, 2.0], [3.0, 0.0, 4.0]]])
    g = torch.Generator().manual_seed(2)
    first = torch.stack(
        [sample_pixels_weighted(weights, 1, generator=g).indices[0, 0] for _ in range(4000)]
    )
    counts = torch.bincount(first, minlength=6).double()
    assert counts[0] == 0 and counts[4] == 0
    expected = weights.flatten().double() / weights.sum() * 4000
    nz = expected > 0
    assert stats.chisquare(counts[nz].numpy(), expected[nz].numpy()).pvalue > 1e-3
    s = sample_pixels_weighted(weights, 4, generator=g)
    assert sorted(s.indices[0].tolist()) == [1, 2, 3, 5]


def test_weighted_sampling_rejects_bad_weights():
    with pytest.raises(ValueError, match="at least num=3 positive weights; the fewest is 2"):
        sample_pixels_weighted(torch.tensor([[[1.0, 1.0], [0.0, 0.0]]]), 3)
    with pytest.raises(ValueError, match="weights: expected non-negative"):
        sample_pixels_weighted(torch.tensor([[[1.0, -1.0]]]), 1)
    with pytest.raises(ValueError, match="weights: contains NaN"):
        sample_pixels_weighted(torch.tensor([[[1.0, float("nan")]]]), 1)
    with pytest.raises(ValueError, match=r"weights: expected shape \[B, H, W\], got \[4, 4\]"):
        sample_pixels_weighted(torch.ones(4, 4), 1)


def test_shapeclipper_weights():
    D = torch.tensor([[[0.0, 1.0], [5.0, 15.0]]])
    torch.testing.assert_close(
        inverse_distance_weights(D), torch.tensor([[[1 / 5, 1 / 6], [1 / 10, 1 / 20]]])
    )


def test_gather_pixels_matches_indexing():
    image = torch.randn(2, 3, 4, 5)
    idx = torch.tensor([[0, 7, 19], [3, 3, 12]])
    out = gather_pixels(image, idx)
    for b in range(2):
        for k in range(3):
            r, c = divmod(idx[b, k].item(), 5)
            torch.testing.assert_close(out[b, k], image[b, :, r, c])
