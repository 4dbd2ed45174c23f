"""Pix3D (Sun et al. 2018): real photographs of IKEA furniture aligned with their CAD
models, as ShapeClipper, MSU and Cat3D evaluate on it, read into svrecon's item schema.

Layout (``root`` = the unpacked ``pix3d`` folder)::

    pix3d.json                 a list with one annotation per image: "img", "mask",
                               "model" (paths under root), "category", "img_size"
                               [W, H], "bbox" [x0, y0, x1, y1] (pixels), "rot_mat"
                               [3, 3], "trans_mat" [3], "focal_length" (mm),
                               "truncated", "occluded", "slightly_occluded", ...
    img/{category}/NNNN.{png,jpg}   the photographs
    mask/{category}/NNNN.png        the object's silhouette (greyscale, > 127 = object)
    model/{category}/{name}/model.obj

Camera convention, converted here once: ``rot_mat`` and ``trans_mat`` map the CAD
model's frame to Pix3D's camera frame, ``x_cam = R x + t``, a camera looking along
+z with x to the **left** and y **up** (the frame Mesh R-CNN's Pix3D code projects
in: ``u = cx - f x / z``, ``v = cy - f y / z``), i.e. OpenCV's frame turned half a turn
about z: the pose is ``diag(-1, -1, 1) [R | t]``. The focal length is in millimetres
on a 32 mm sensor spanning the image's longer side (Blender's automatic sensor fit,
which the dataset's renders used): ``f = focal_length / 32 * max(W, H)`` pixels, the
principal point at the image centre. Each item is the photograph cropped to a square
around ``bbox`` (``margin`` times its longer side, as ShapeClipper crops) and resized to
``size``; the intrinsics move with the crop. The world frame is the CAD model's.

Splits: Pix3D has no official split; ``split`` names a text file listing the images
to use, one per line, as the ``img`` path of ``pix3d.json`` (``img/chair/0001.png``),
as ``category/stem`` (``chair/0001``), or as a bare stem (``0001``, matched within
``categories``; it must be unambiguous).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .files import crop_view, read_channel, read_mesh, read_png, rgb_of, square_box

__all__ = ["PIX3D_CATEGORIES", "Pix3DDataset", "pix3d_camera"]

PIX3D_CATEGORIES = ("bed", "bookcase", "chair", "desk", "misc", "sofa", "table", "tool",
                    "wardrobe")  # fmt: skip
_SENSOR_MM = 32.0
_KEYS = ("img", "mask", "model", "category", "bbox", "rot_mat", "trans_mat", "focal_length")


def pix3d_camera(
    rot_mat, trans_mat, focal_length: float, image_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """``(K [3, 3], pose [3, 4])`` (OpenCV, pixels of the full photograph) of one Pix3D
    annotation; ``image_size = (W, H)`` as Pix3D's ``img_size``."""
    R = np.asarray(rot_mat, dtype=np.float64)
    t = np.asarray(trans_mat, dtype=np.float64).reshape(3)
    if R.shape != (3, 3) or not np.isfinite(R).all() or not np.isfinite(t).all():
        raise ValueError("rot_mat, trans_mat: expected a finite [3, 3] and [3]")
    if abs(np.linalg.det(R) - 1) > 1e-3 or not np.allclose(R @ R.T, np.eye(3), atol=1e-3):
        raise ValueError("rot_mat: not a rotation matrix")
    w, h = (float(v) for v in image_size)
    f = float(focal_length)
    if not (np.isfinite(f) and f > 0 and w > 0 and h > 0):
        raise ValueError(f"focal_length, img_size: expected positive, got {f}, {image_size}")
    flip = np.diag([-1.0, -1.0, 1.0])  # Pix3D camera (x left, y up, z forward) -> OpenCV
    pose = np.concatenate([flip @ R, (flip @ t)[:, None]], axis=1)
    fp = f / _SENSOR_MM * max(w, h)
    K = np.array([[fp, 0, w / 2], [0, fp, h / 2], [0, 0, 1]])
    return K, pose


class Pix3DDataset(Dataset):
    """One item per annotated image of ``pix3d.json``.

    Args:
        root: the ``pix3d`` folder (with ``pix3d.json``).
        split: a list file of images (see the module docstring); ``None``: all.
        categories: which categories (default: those present, in
            :data:`PIX3D_CATEGORIES` order); ``label`` indexes this list.
        size: the side of the square crops, in pixels.
        margin: the crop's side over the bounding box's longer side.
        num_points: ground-truth surface points per item, sampled from the model's mesh
            (area-weighted, the same points for every image of a model).
        skip_occluded: leave out images annotated as truncated or occluded.
    """

    def __init__(
        self,
        root: str | Path,
        split: str | Path | None = None,
        categories: Sequence[str] | None = None,
        size: int = 64,
        margin: float = 1.2,
        num_points: int = 10_000,
        skip_occluded: bool = False,
    ) -> None:
        self.root = Path(root)
        path = self.root / "pix3d.json"
        if not path.is_file():
            raise FileNotFoundError(f"root: no pix3d.json in {self.root}")
        try:
            entries = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"Pix3D: {path} is not JSON ({exc})") from None
        if not isinstance(entries, list):
            raise ValueError(f"Pix3D: {path}: expected a list of annotations")
        for n, entry in enumerate(entries):
            missing = [k for k in _KEYS if not isinstance(entry, dict) or k not in entry]
            if missing:
                raise ValueError(f"Pix3D: {path} annotation {n} has no {missing}")
        present = {e["category"] for e in entries}
        if categories is None:
            categories = [c for c in PIX3D_CATEGORIES if c in present]
            categories += sorted(present - set(PIX3D_CATEGORIES))
        self.categories = list(categories)
        if size < 1 or margin < 1 or num_points < 1:
            raise ValueError(f"size, margin, num_points: expected >= 1, got "
                             f"{size}, {margin}, {num_points}")  # fmt: skip
        self.size, self.margin, self.num_points = int(size), float(margin), int(num_points)
        keep = [e for e in entries if e["category"] in self.categories]
        if skip_occluded:
            keep = [e for e in keep if not (e.get("truncated") or e.get("occluded"))]
        if split is not None:
            keep = self._select(keep, Path(split))
        if not keep:
            raise ValueError(f"Pix3D: no annotations of {self.categories} in {path}")
        self.entries = keep
        self.models = sorted({e["model"] for e in keep})

    @staticmethod
    def _select(entries: list[dict], listing: Path) -> list[dict]:
        if not listing.is_file():
            raise FileNotFoundError(f"split: no list file {listing}")
        by_key: dict[str, list[int]] = {}
        for n, e in enumerate(entries):
            stem = Path(e["img"]).stem
            for key in (e["img"], f"{e['category']}/{stem}", stem):
                by_key.setdefault(key, []).append(n)
        chosen = []
        for line in listing.read_text().splitlines():
            name = line.strip()
            if not name:
                continue
            hits = by_key.get(name, [])
            if len(hits) != 1:
                why = "matches no annotation" if not hits else "is ambiguous (name the category)"
                raise ValueError(f"split: {listing}: {name!r} {why}")
            chosen.append(entries[hits[0]])
        return chosen

    def __len__(self) -> int:
        return len(self.entries)

    def evaluation_indices(self) -> list[int]:
        """Every image (each is its own view)."""
        return list(range(len(self)))

    @lru_cache(maxsize=64)  # noqa: B019 - the dataset lives as long as its cache
    def _model_points(self, model: str) -> torch.Tensor:
        from ..mesh import sample_surface

        mesh = read_mesh(self.root / model, "Pix3D")
        return sample_surface(mesh, self.num_points, seed=self.models.index(model))[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} items")
        e = self.entries[i]
        rgb = rgb_of(read_png(self.root / e["img"], "Pix3D"))
        mask = read_channel(self.root / e["mask"], "Pix3D") > 127
        h, w = rgb.shape[:2]
        if mask.shape != (h, w):
            raise ValueError(f"Pix3D: {e['mask']} is {mask.shape[::-1]}, {e['img']} {(w, h)}")
        if "img_size" in e and tuple(e["img_size"]) != (w, h):
            raise ValueError(f"Pix3D: {e['img']} is {(w, h)} but img_size says {e['img_size']}")
        try:
            K, pose = pix3d_camera(e["rot_mat"], e["trans_mat"], e["focal_length"], (w, h))
        except ValueError as exc:
            raise ValueError(f"Pix3D: {e['img']}: {exc}") from None
        try:
            crop = square_box(e["bbox"], self.margin)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Pix3D: {e['img']}: bbox: {exc}") from None
        image, m, K2 = crop_view(rgb, mask, K, crop, self.size)
        return {
            "image": image,
            "mask": m,
            "intrinsics": K2,
            "pose": torch.from_numpy(pose).float(),
            "label": torch.tensor(self.categories.index(e["category"])),
            "surface_points": self._model_points(e["model"]),
            "shape_index": torch.tensor(self.models.index(e["model"])),
        }
