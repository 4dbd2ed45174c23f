"""Part segmentation scores against naive loops: the confusion counted element by
element, the best assignment by trying every injective branch-to-part map."""

import itertools

import pytest
import torch

from svrecon.metrics import height_band_labels, part_iou, segmentation_confusion


def naive_best_iou(pred, gt, num_pred, num_gt):
    """Mean IoU over the present parts, maximised over every injective part -> branch
    map (parts without a branch score 0 when num_pred < num_gt)."""
    pred, gt = pred.tolist(), gt.tolist()
    parts = sorted(set(gt))

    def iou(k, p):
        inter = sum(1 for a, b in zip(pred, gt, strict=True) if a == k and b == p)
        union = sum(1 for a, b in zip(pred, gt, strict=True) if a == k or b == p)
        return inter / union if union else 0.0

    best = 0.0
    slots = list(range(num_pred)) + [None] * max(0, len(parts) - num_pred)
    for branches in itertools.permutations(slots, len(parts)):
        score = sum(iou(k, p) for k, p in zip(branches, parts, strict=True) if k is not None)
        best = max(best, score / len(parts))
    return best


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("num_pred", "num_gt"), [(3, 3), (4, 3), (2, 4)])
def test_part_iou_matches_a_search_over_every_assignment(seed, num_pred, num_gt):
    gen = torch.Generator().manual_seed(seed)
    gt = torch.randint(0, num_gt, (3, 20), generator=gen)
    pred = torch.where(torch.rand(3, 20, generator=gen) < 0.6, gt % num_pred,
                       torch.randint(0, num_pred, (3, 20), generator=gen))  # fmt: skip
    result = part_iou(segmentation_confusion(pred, gt, num_pred, num_gt))
    for i in range(3):
        assert result.iou[i].item() == pytest.approx(
            naive_best_iou(pred[i], gt[i], num_pred, num_gt)
        )


def test_confusion_counts_and_a_relabelled_segmentation_scores_one():
    gt = torch.tensor([[0, 0, 1, 1, 2, 2], [1, 1, 1, 1, 0, 0]])
    valid = torch.tensor([[True] * 6, [True, True, True, False, False, True]])
    c = segmentation_confusion((gt + 1) % 3, gt, 3, 3, valid)
    naive = torch.zeros(2, 3, 3, dtype=torch.long)
    for b in range(2):
        for j in range(6):
            if valid[b, j]:
                naive[b, (gt[b, j] + 1) % 3, gt[b, j]] += 1
    assert torch.equal(c, naive)
    result = part_iou(c)
    assert torch.equal(result.iou, torch.ones(2, dtype=torch.float64))
    assert result.assignment[0].tolist() == [1, 2, 0]
    assert torch.isnan(result.part_iou[1, 2])  # part 2 absent from item 1's valid pixels
    # One assignment for a group: the summed confusion.
    assert part_iou(c.sum(0, keepdim=True)).iou.item() == 1.0


def test_bad_labels_and_empty_items():
    gt = torch.tensor([[0, 1]])
    with pytest.raises(ValueError, match="pred: labels must lie in"):
        segmentation_confusion(torch.tensor([[0, 5]]), gt, 2, 2)
    with pytest.raises(ValueError, match="gt: expected integer labels"):
        segmentation_confusion(gt, gt.float(), 2, 2)
    with pytest.raises(ValueError, match="pred, gt: expected equal shapes"):
        segmentation_confusion(gt, gt[:, :1], 2, 2)
    with pytest.raises(ValueError, match="valid: expected shape"):
        segmentation_confusion(gt, gt, 2, 2, torch.ones(1, 3, dtype=torch.bool))
    # A label out of range where not valid is ignored; an item with nothing valid is
    # refused by name (its IoU is undefined), never NaN.
    c = segmentation_confusion(torch.tensor([[0, 7]]), gt, 2, 2, torch.tensor([[True, False]]))
    assert c.sum() == 1
    nothing = torch.tensor([[True, True], [False, False]])
    with pytest.raises(ValueError, match=r"confusion: item\(s\) \[1\] count no point"):
        part_iou(segmentation_confusion(gt.expand(2, 2), gt.expand(2, 2), 2, 2, nothing))


def test_height_bands():
    heights = torch.tensor([[0.0, 0.1, 0.5, 0.99, 1.0, 7.0], [2.0, 2.0, 2.0, 2.0, 2.0, 2.0]])
    valid = torch.tensor([[True] * 5 + [False], [True] * 6])
    labels = height_band_labels(heights, 2, valid)
    assert labels.tolist() == [[0, 0, 1, 1, 1, 0], [0] * 6]
    with pytest.raises(ValueError, match="num_bands"):
        height_band_labels(heights, 0)
