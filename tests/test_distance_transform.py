import numpy as np
import pytest
import torch
from scipy import ndimage

from svrecon.losses import distance_transform


@pytest.mark.parametrize("shape", [(3, 17, 23), (2, 64, 64), (1, 1, 9), (1, 9, 1)])
def test_matches_scipy_exactly_on_random_masks(shape):
    rng = np.random.default_rng(0)
    masks = rng.random(shape) < 0.05
    masks[:, 0, 0] = True  # at least one mask pixel per image
    ours = distance_transform(torch.from_numpy(masks), chunk_rows=7).numpy()
    for b in range(shape[0]):
        ref = ndimage.distance_transform_edt(~masks[b])
        np.testing.assert_array_equal(ours[b], ref.astype(np.float32))


def test_blob_masks_and_batching():
    masks = torch.zeros(2, 40, 50, dtype=torch.bool)
    masks[0, 10:20, 5:15] = True
    masks[1, 30:, 40:] = True
    batched = distance_transform(masks)
    for b in range(2):
        torch.testing.assert_close(batched[b : b + 1], distance_transform(masks[b : b + 1]))
        ref = ndimage.distance_transform_edt(~masks[b].numpy())
        np.testing.assert_array_equal(batched[b].numpy(), ref.astype(np.float32))
    assert (batched[masks] == 0).all()


def test_empty_and_full_masks():
    empty = distance_transform(torch.zeros(1, 5, 6, dtype=torch.bool))
    assert torch.isinf(empty).all()
    full = distance_transform(torch.ones(1, 5, 6))
    assert (full == 0).all()


def test_validates_shape():
    with pytest.raises(ValueError, match=r"masks: expected shape \[B, H, W\], got \[5, 6\]"):
        distance_transform(torch.zeros(5, 6))


@pytest.mark.cuda
def test_cuda_matches_cpu():
    masks = torch.rand(2, 33, 47) < 0.05
    torch.testing.assert_close(distance_transform(masks.cuda()).cpu(), distance_transform(masks))
