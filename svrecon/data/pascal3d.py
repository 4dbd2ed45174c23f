"""PASCAL3D+ (Xiang et al. 2014): PASCAL VOC and ImageNet photographs of 12 rigid
categories, each object annotated with a viewpoint and its nearest CAD model, as
SDF-SRN, Cat3D, ShapeClipper and MSU evaluate on it, read into svrecon's item schema.

Layout (``root`` = the unpacked ``PASCAL3D+_release1.1`` folder)::

    Annotations/{class}_{source}/{name}.mat   ``record``: ``filename``, ``size``
                                              (``width``, ``height``), ``objects``: per
                                              object ``class``, ``bbox`` [x1 y1 x2 y2]
                                              (MATLAB pixels, 1-based, inclusive),
                                              ``viewpoint`` (``azimuth``, ``elevation``,
                                              ``theta`` in degrees, ``distance``,
                                              ``focal``, ``px``, ``py``, ``viewport``),
                                              ``cad_index`` (1-based), ``truncated``,
                                              ``occluded``, ``difficult``
    Images/{class}_{source}/{name}.{JPEG,jpg}
    CAD/{class}/{NN}.off                      the category's CAD models
    Image_sets/{class}_imagenet_{split}.txt   (ImageNet part) image names

``source`` is ``pascal`` or ``imagenet``.

Camera convention, converted here once (the dataset's ``project_3d.m``): the camera
centre is ``C = d (cos e sin a, -cos e cos a, sin e)`` in the CAD frame (z up), its
rotation ``R = Rx(e - pi/2) Rz(-a)``, a camera looking along its -z; a point
projects to ``M f (x, y) / -z``, is turned by the in-plane ``theta``, and lands at
``(px + u, py - v)`` in MATLAB's pixels (centres at whole numbers from 1). In
OpenCV's frame that is ``pose = [A R | -A R C]`` with ``A = [[cos th, -sin th, 0],
[-sin th, -cos th, 0], [0, 0, -1]]`` and ``K = [[M f, 0, px - 1/2], [0, M f, py -
1/2], [0, 0, 1]]`` (svrecon's pixel centres sit at ``+1/2`` from 0). Each item is the
photograph cropped to a square around the object's box (``margin`` times its longer
side) and resized to ``size``. The world frame is the CAD model's.

Masks: PASCAL3D+ has none. With ``mask_root``, ``{mask_root}/{class}_{source}/
{name}.png`` is read as an instance map (pixel value ``k + 1`` for the ``k``-th object
of the record, 0 background; e.g. converted from PASCAL SBD or a segmenter's output);
without it the mask is the annotated CAD model's silhouette through the annotated
camera (:func:`svrecon.mesh.mesh_silhouette`), flagged by the item's
``mask_from_cad``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .files import (
    crop_intrinsics,
    crop_view,
    read_channel,
    read_mesh,
    read_png,
    rgb_of,
    square_box,
)

__all__ = ["PASCAL3D_CATEGORIES", "Pascal3DDataset", "pascal3d_camera"]

PASCAL3D_CATEGORIES = ("aeroplane", "bicycle", "boat", "bottle", "bus", "car", "chair",
                       "diningtable", "motorbike", "sofa", "train", "tvmonitor")  # fmt: skip
_VIEW_KEYS = ("azimuth", "elevation", "theta", "distance", "focal", "px", "py", "viewport")


def pascal3d_camera(
    azimuth: float, elevation: float, theta: float, distance: float, focal: float,
    px: float, py: float, viewport: float,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``(K [3, 3], pose [3, 4])`` (OpenCV, svrecon's pixels of the full photograph) of
    one PASCAL3D+ viewpoint annotation (angles in degrees, as stored)."""
    values = (azimuth, elevation, theta, distance, focal, px, py, viewport)
    if not all(math.isfinite(float(v)) for v in values):
        raise ValueError(f"viewpoint: expected finite values, got {values}")
    if distance <= 0 or focal * viewport <= 0:
        raise ValueError(f"viewpoint: distance and focal * viewport must be positive, "
                         f"got {distance}, {focal * viewport}")  # fmt: skip
    a, e, th = (math.radians(float(v)) for v in (azimuth, elevation, theta))
    C = distance * np.array([math.cos(e) * math.sin(a), -math.cos(e) * math.cos(a), math.sin(e)])
    ca, sa = math.cos(-a), math.sin(-a)
    ce, se = math.cos(e - math.pi / 2), math.sin(e - math.pi / 2)
    Rz = np.array([[ca, -sa, 0], [sa, ca, 0], [0, 0, 1]])
    Rx = np.array([[1, 0, 0], [0, ce, -se], [0, se, ce]])
    ct, st = math.cos(th), math.sin(th)
    A = np.array([[ct, -st, 0], [-st, -ct, 0], [0, 0, -1]])
    R = A @ Rx @ Rz
    pose = np.concatenate([R, (-R @ C)[:, None]], axis=1)
    f = float(focal) * float(viewport)
    K = np.array([[f, 0, float(px) - 0.5], [0, f, float(py) - 0.5], [0, 0, 1]])
    return K, pose


def _field(struct, name: str, where: str):
    if not hasattr(struct, name):
        raise ValueError(f"PASCAL3D+: {where} has no field {name!r}")
    return getattr(struct, name)


class Pascal3DDataset(Dataset):
    """One item per annotated object (with a viewpoint) of the listed images.

    Args:
        root: the ``PASCAL3D+`` folder.
        categories: which classes (default: every class with an ``Annotations``
            folder, in :data:`PASCAL3D_CATEGORIES` order); ``label`` indexes them.
        sources: ``"pascal"``, ``"imagenet"`` or both.
        split: a list file of image names (``Image_sets/{class}_imagenet_val.txt``,
            VOC's ``ImageSets/Main/{class}_val.txt`` whose second column is ignored);
            ``None``: every annotation file.
        size, margin: the square crop's side in pixels, and over the box's longer side.
        num_points: ground-truth surface points per item, from its CAD model.
        mask_root: instance maps (module docstring); ``None``: CAD silhouettes.
        skip_difficult, skip_occluded: leave out objects marked difficult, or marked
            truncated or occluded.
    """

    def __init__(
        self,
        root: str | Path,
        categories: Sequence[str] | None = None,
        sources: Sequence[str] = ("pascal", "imagenet"),
        split: str | Path | None = None,
        size: int = 64,
        margin: float = 1.2,
        num_points: int = 10_000,
        mask_root: str | Path | None = None,
        skip_difficult: bool = True,
        skip_occluded: bool = False,
    ) -> None:
        self.root = Path(root)
        annotations = self.root / "Annotations"
        if not annotations.is_dir():
            raise FileNotFoundError(f"root: no Annotations folder in {self.root}")
        sources = [sources] if isinstance(sources, str) else list(sources)
        if not sources or any(s not in ("pascal", "imagenet") for s in sources):
            raise ValueError(f"sources: expected 'pascal' and/or 'imagenet', got {sources}")
        if categories is None:
            categories = [c for c in PASCAL3D_CATEGORIES
                          if any((annotations / f"{c}_{s}").is_dir() for s in sources)]  # fmt: skip
            if not categories:
                raise FileNotFoundError(f"root: no {{class}}_{{source}} folders in {annotations}")
        self.categories = list(categories)
        if size < 1 or margin < 1 or num_points < 1:
            raise ValueError(f"size, margin, num_points: expected >= 1, got "
                             f"{size}, {margin}, {num_points}")  # fmt: skip
        self.size, self.margin, self.num_points = int(size), float(margin), int(num_points)
        self.mask_root = None if mask_root is None else Path(mask_root)
        names = None
        if split is not None:
            listing = Path(split)
            if not listing.is_file():
                raise FileNotFoundError(f"split: no list file {listing}")
            names = {line.split()[0] for line in listing.read_text().splitlines() if line.strip()}
        self.objects: list[tuple[int, str, str, int, int]] = []  # label, folder, name, k, cad
        for label, category in enumerate(self.categories):
            for source in sources:
                folder = annotations / f"{category}_{source}"
                if not folder.is_dir():
                    continue
                for path in sorted(folder.glob("*.mat")):
                    if names is not None and path.stem not in names:
                        continue
                    for k, obj in enumerate(self._record(path)[1]):
                        if self._usable(obj, category, skip_difficult, skip_occluded):
                            cad = int(getattr(obj, "cad_index", 0))
                            self.objects.append((label, folder.name, path.stem, k, cad))
        if not self.objects:
            raise ValueError(
                f"PASCAL3D+: no annotated objects of {self.categories} in {annotations}"
            )
        self.shapes = sorted({(label, cad) for label, _, _, _, cad in self.objects})

    @staticmethod
    def _record(path: Path):
        from scipy.io import loadmat

        try:
            record = loadmat(path, squeeze_me=True, struct_as_record=False)["record"]
        except KeyError:
            raise ValueError(f"PASCAL3D+: {path} has no 'record'") from None
        except Exception as exc:  # scipy raises several types for a broken file
            raise ValueError(f"PASCAL3D+: cannot read {path} ({exc})") from None
        objects = np.atleast_1d(_field(record, "objects", str(path)))
        return record, list(objects)

    @staticmethod
    def _usable(obj, category: str, skip_difficult: bool, skip_occluded: bool) -> bool:
        if getattr(obj, "class", None) != category:
            return False
        view = getattr(obj, "viewpoint", None)
        if view is None or isinstance(view, np.ndarray) or not hasattr(view, "distance"):
            return False  # no viewpoint annotated
        if float(view.distance) <= 0:
            return False  # the dataset's marker of a failed annotation
        if skip_difficult and bool(getattr(obj, "difficult", 0)):
            return False
        if skip_occluded and (bool(getattr(obj, "truncated", 0)) or
                              bool(getattr(obj, "occluded", 0))):  # fmt: skip
            return False
        return True

    def __len__(self) -> int:
        return len(self.objects)

    def evaluation_indices(self) -> list[int]:
        """Every object (each is its own view)."""
        return list(range(len(self)))

    @lru_cache(maxsize=32)  # noqa: B019 - the dataset lives as long as its cache
    def _cad(self, category: str, index: int):
        """The CAD model and its ``num_points`` surface samples (the same for every
        object that uses it)."""
        from ..mesh import sample_surface

        mesh = read_mesh(self.root / "CAD" / category / f"{index:02d}.off", "PASCAL3D+")
        return mesh, sample_surface(mesh, self.num_points, seed=index)[0]

    def _image(self, folder: str, name: str) -> np.ndarray:
        for ext in (".JPEG", ".jpg", ".jpeg", ".png"):
            path = self.root / "Images" / folder / f"{name}{ext}"
            if path.is_file():
                return read_png(path, "PASCAL3D+")
        raise FileNotFoundError(f"PASCAL3D+: no image Images/{folder}/{name}.(JPEG|jpg)")

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        from ..cameras import PerspectiveCamera
        from ..mesh import mesh_silhouette

        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} items")
        label, folder, name, k, cad_index = self.objects[i]
        category = self.categories[label]
        path = self.root / "Annotations" / folder / f"{name}.mat"
        obj = self._record(path)[1][k]
        view = _field(obj, "viewpoint", f"{path} object {k + 1}")
        try:
            K, pose = pascal3d_camera(*(float(_field(view, key, f"{path} viewpoint"))
                                        for key in _VIEW_KEYS))  # fmt: skip
        except (TypeError, ValueError) as exc:
            raise ValueError(f"PASCAL3D+: {path} object {k + 1}: {exc}") from None
        box = np.asarray(_field(obj, "bbox", f"{path} object {k + 1}"), dtype=np.float64)
        if box.shape != (4,):
            raise ValueError(f"PASCAL3D+: {path} object {k + 1}: bbox is not [x1 y1 x2 y2]")
        box = box - np.array([1.0, 1.0, 0.0, 0.0])  # MATLAB's inclusive 1-based -> edges
        pixels = self._image(folder, name)
        rgb = rgb_of(pixels)
        h, w = rgb.shape[:2]
        if cad_index < 1:
            raise ValueError(f"PASCAL3D+: {path} object {k + 1}: no cad_index")
        mesh, points = self._cad(category, cad_index)
        try:
            crop = square_box(box, self.margin)
        except ValueError as exc:
            raise ValueError(f"PASCAL3D+: {path} object {k + 1}: {exc}") from None
        if self.mask_root is not None:
            instances = read_channel(self.mask_root / folder / f"{name}.png", "PASCAL3D+")
            if instances.shape != (h, w):
                raise ValueError(f"PASCAL3D+: mask {folder}/{name}.png is not {w} x {h}")
            mask = instances == k + 1
        else:  # rendered straight into the crop: cheaper than the whole photograph
            K_crop = torch.from_numpy(crop_intrinsics(K, crop, self.size))
            camera = PerspectiveCamera.from_intrinsics(K_crop[None], torch.from_numpy(pose)[None])
            mask = mesh_silhouette(torch.from_numpy(mesh.vertices), torch.from_numpy(mesh.faces),
                                   camera, (self.size, self.size))[0].numpy()  # fmt: skip
        image, m, K2 = crop_view(rgb, mask, K, crop, self.size, self.mask_root is None)
        return {
            "image": image,
            "mask": m,
            "intrinsics": K2,
            "pose": torch.from_numpy(pose).float(),
            "label": torch.tensor(label),
            "surface_points": points,
            "shape_index": torch.tensor(self.shapes.index((label, cad_index))),
            "mask_from_cad": torch.tensor(self.mask_root is None),
        }
