"""The image-folder reader on both of its layouts (photographs with greyscale masks,
and RGBA PNGs), its crop against the mask box worked by hand, and a model trained on it
through the engine, which refuses to score it (no ground truth)."""

import numpy as np
import pytest
import torch
from PIL import Image

from svrecon.data import ImageFolderDataset, validate_item

from .helpers import train_and_evaluate

SIZE = 32


def blob(h, w, box):
    x0, y0, x1, y1 = box
    mask = np.zeros((h, w), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def write_folder(root, rng):
    (root / "mug" / "images").mkdir(parents=True)
    (root / "mug" / "masks").mkdir()
    for n, box in enumerate([(10, 20, 50, 40), (30, 5, 60, 70)]):
        photo = rng.integers(0, 255, (80, 90, 3), dtype=np.uint8)
        mask = blob(80, 90, box)
        Image.fromarray(photo).save(root / "mug" / "images" / f"p{n}.jpg")
        Image.fromarray(mask.astype(np.uint8) * 255, "L").save(root / "mug" / "masks" / f"p{n}.png")
    (root / "lamp").mkdir()
    rgba = np.dstack([rng.integers(0, 255, (60, 40, 3), dtype=np.uint8),
                      blob(60, 40, (5, 10, 25, 50)).astype(np.uint8) * 255])  # fmt: skip
    Image.fromarray(rgba, "RGBA").save(root / "lamp" / "a.png")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp("folder"), np.random.default_rng(0))


def test_items_crop_the_mask_box(folder):
    ds = ImageFolderDataset(folder, size=SIZE, margin=1.25)
    assert ds.categories == ["lamp", "mug"] and len(ds) == 3
    for i in range(len(ds)):
        item = ds[i]
        validate_item(item)
        assert "surface_points" not in item
        assert item["image"].shape == (3, SIZE, SIZE)
        assert torch.all(item["image"][:, ~item["mask"]] == 1)
    # mug p0: a 40 x 20 box centred at (30, 30) in an 80 x 90 photo; the crop is the
    # 50-pixel square centred there, so the box covers 40/50 x 20/50 of the crop
    mask = ds[1]["mask"]
    rows, cols = torch.nonzero(mask, as_tuple=True)
    assert abs((cols.max() - cols.min() + 1) - 0.8 * SIZE) <= 1
    assert abs((rows.max() - rows.min() + 1) - 0.4 * SIZE) <= 1
    assert abs(float(cols.float().mean()) + 0.5 - SIZE / 2) <= 0.6
    assert int(ds[0]["label"]) == 0 and int(ds[1]["label"]) == 1


def test_split_and_errors(folder, tmp_path):
    listing = tmp_path / "l.txt"
    listing.write_text("mug/p1\n")
    assert len(ImageFolderDataset(folder, split=listing)) == 1
    listing.write_text("mug/p7\n")
    with pytest.raises(ValueError, match="no photograph"):
        ImageFolderDataset(folder, split=listing)
    with pytest.raises(FileNotFoundError, match="root"):
        ImageFolderDataset(tmp_path / "none")
    import shutil

    broken = tmp_path / "b"
    shutil.copytree(folder, broken)
    Image.fromarray(np.zeros((60, 40, 3), np.uint8)).save(broken / "lamp" / "a.png")
    with pytest.raises(ValueError, match="no alpha channel"):
        ImageFolderDataset(broken)[0]
    Image.fromarray(np.zeros((80, 90), np.uint8), "L").save(broken / "mug" / "masks" / "p0.png")
    with pytest.raises(ValueError, match="mask of .* is empty"):
        ImageFolderDataset(broken)[1]
    Image.fromarray(np.zeros((8, 9), np.uint8), "L").save(broken / "mug" / "masks" / "p0.png")
    with pytest.raises(ValueError, match="p0.png is"):
        ImageFolderDataset(broken)[1]


def test_a_model_trains_on_it_and_evaluation_refuses(folder, tmp_path):
    from svrecon.engine import evaluate_dataset, load_model

    data = ImageFolderDataset(folder, size=SIZE)
    train_and_evaluate(data, tmp_path, protocol=None)
    with pytest.raises(ValueError, match="no 'surface_points'"):
        evaluate_dataset(data, "procedural", model=load_model(tmp_path / "checkpoint.pt"))


def test_sixteen_bit_and_unreadable_files(tmp_path):
    # PIL's RGBA conversion clips 16-bit greyscale at 255: a mid-grey 16-bit photograph
    # read as white, and a 16-bit mask of 1000 everywhere (0.015 of its range) read as
    # all object. The readers scale from the full range instead.
    from svrecon.data.files import read_png

    grey = np.full((20, 30), 32768, np.uint16)
    Image.fromarray(grey).save(tmp_path / "grey16.png")
    pixels = read_png(tmp_path / "grey16.png", "test")
    assert pixels.dtype == np.uint8 and pixels.shape == (20, 30)
    assert (pixels == round(32768 / 65535 * 255)).all()
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match="broken.png is not an image PIL can read"):
        read_png(tmp_path / "broken.png", "test")
    with pytest.raises(FileNotFoundError, match="test: missing file"):
        read_png(tmp_path / "absent.png", "test")
    root = tmp_path / "folder" / "vase"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    Image.fromarray(grey).save(root / "images" / "v.png")
    mask = np.zeros((20, 30), np.uint16)
    mask[5:15, 10:20] = 65535
    mask[0, 0] = 1000  # faint: not the object
    Image.fromarray(mask).save(root / "masks" / "v.png")
    item = ImageFolderDataset(tmp_path / "folder", size=16)[0]
    inside = item["image"][:, item["mask"]]
    torch.testing.assert_close(inside, torch.full_like(inside, 0.5), atol=0.01, rtol=0)
    assert 0.3 < item["mask"].float().mean() < 0.8
