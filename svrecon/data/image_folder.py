"""A plain folder of photographs with masks (OpenImages-style in-the-wild collections,
as ShapeClipper and MSU train on), read into svrecon's item schema for training the
models that need no camera and no 3D ground truth.

Layout, one folder per category (its name is the category)::

    {category}/images/{name}.{png,jpg,jpeg}   the photographs
    {category}/masks/{name}.png               greyscale, > 127 = object
or
    {category}/{name}.png                     RGBA, alpha > 127 = object

Each item is the photograph cropped to a square around its mask's bounding box
(``margin`` times its longer side) and resized to ``size``. The camera is **nominal**,
not measured: the procedural set's (focal ``1.8660254 * size``, principal point at the
centre, identity rotation, the object ``2.732`` in front), which the models that
estimate their viewpoint (Cat3D, ShapeClipper, MSU) replace by their own; a model
trained on the given camera learns this one frame. Items have no ``surface_points``:
the folder trains, it cannot be scored (:func:`svrecon.engine.evaluate_dataset`
refuses it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .files import crop_view, read_channel, read_png, rgb_of, square_box
from .procedural import CAMERA_DISTANCE, FOCAL_FRACTION

__all__ = ["ImageFolderDataset"]

_SUFFIXES = (".png", ".jpg", ".jpeg")


class ImageFolderDataset(Dataset):
    """One item per photograph of every category folder under ``root``.

    Args:
        root: the folder of category folders.
        categories: which (default: every sub-folder, sorted); ``label`` indexes them.
        split: a list file of ``category/name`` lines (``name`` without its suffix);
            ``None``: every photograph.
        size, margin: the square crop's side in pixels, and over the mask box's side.
        focal_fraction, distance: the nominal camera (module docstring).
    """

    def __init__(
        self,
        root: str | Path,
        categories: Sequence[str] | None = None,
        split: str | Path | None = None,
        size: int = 64,
        margin: float = 1.2,
        focal_fraction: float = FOCAL_FRACTION,
        distance: float = CAMERA_DISTANCE,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"root: no folder {self.root}")
        if categories is None:
            categories = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        self.categories = list(categories)
        if size < 1 or margin < 1 or focal_fraction <= 0 or distance <= 0:
            raise ValueError(f"size, margin, focal_fraction, distance: expected positive "
                             f"(margin >= 1), got {size}, {margin}, {focal_fraction}, "
                             f"{distance}")  # fmt: skip
        self.size, self.margin = int(size), float(margin)
        self.focal_fraction, self.distance = float(focal_fraction), float(distance)
        self.items: list[tuple[int, Path, Path | None]] = []  # label, image, mask (or alpha)
        for label, category in enumerate(self.categories):
            folder = self.root / category
            if not folder.is_dir():
                raise FileNotFoundError(f"categories: no folder {folder}")
            if (folder / "images").is_dir():
                for image in sorted(p for p in (folder / "images").iterdir()
                                    if p.suffix.lower() in _SUFFIXES):  # fmt: skip
                    self.items.append((label, image, folder / "masks" / f"{image.stem}.png"))
            else:
                for image in sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png"):
                    self.items.append((label, image, None))
        if split is not None:
            listing = Path(split)
            if not listing.is_file():
                raise FileNotFoundError(f"split: no list file {listing}")
            wanted = [x.strip() for x in listing.read_text().splitlines() if x.strip()]
            by_name = {f"{self.categories[lab]}/{img.stem}": (lab, img, m)
                       for lab, img, m in self.items}  # fmt: skip
            missing = [w for w in wanted if w not in by_name]
            if missing:
                raise ValueError(f"split: {listing}: no photograph for {missing[:3]}")
            self.items = [by_name[w] for w in wanted]
        if not self.items:
            raise ValueError(f"root: no photographs of {self.categories} in {self.root}")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} items")
        label, image_path, mask_path = self.items[i]
        pixels = read_png(image_path, "image folder")
        rgb = rgb_of(pixels)
        if mask_path is None:
            if pixels.ndim != 3 or (pixels[..., 3] == 255).all():
                raise ValueError(f"image folder: {image_path} has no alpha channel (mask); "
                                 f"put masks in {image_path.parent}/masks")  # fmt: skip
            mask = pixels[..., 3] > 127
        else:
            mask = read_channel(mask_path, "image folder") > 127
            if mask.shape != rgb.shape[:2]:
                raise ValueError(f"image folder: {mask_path} is {mask.shape[::-1]}, its image "
                                 f"{rgb.shape[1::-1]}")  # fmt: skip
        if not mask.any():
            raise ValueError(f"image folder: the mask of {image_path} is empty")
        rows, cols = np.nonzero(mask)
        box = (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
        f, c = self.focal_fraction * self.size, self.size / 2
        K_crop = np.array([[f, 0, c], [0, f, c], [0, 0, 1.0]])
        image, m, _ = crop_view(rgb, mask, np.eye(3), square_box(box, self.margin), self.size)
        pose = torch.tensor([[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, self.distance]])
        return {
            "image": image,
            "mask": m,
            "intrinsics": torch.from_numpy(K_crop).float(),
            "pose": pose,
            "label": torch.tensor(label),
        }
