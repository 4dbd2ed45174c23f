"""The NMR ShapeNet renders (Kato et al.'s Neural Mesh Renderer views, as distributed
with DVR and used by SDF-SRN and Cat3D), read into svrecon's item schema.

Layout (``root = NMR_Dataset``)::

    {category}/softras_{split}.lst           model ids, one per line (also {split}.lst)
    {category}/{model}/image/{view:04d}.png  RGB(A) renders, 64 x 64, 24 views
    {category}/{model}/mask/{view:04d}.png   silhouettes (first channel, > 127 = object)
    {category}/{model}/cameras.npz           world_mat_{view} ([3, 4] or [4, 4])
    {category}/{model}/pointcloud3.npz       points [N, 3] (and normals), SDF-SRN's
                                             ground truth (AtlasNet surface points)

Camera convention, converted here once: ``world_mat_{view}`` is the world-to-camera
extrinsic in the OpenCV frame (x right, y down, z forward), which SDF-SRN reads as its
pose unchanged; the intrinsics are SDF-SRN's fixed ones, focal ``1.8660254 * W``
(NMR's 30 degree field of view) and principal point ``(W/2, H/2)`` (``camera_mat`` is
not read, as in SDF-SRN). Images are composited on white with their masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .files import SHAPENET_SYNSETS, ModelViewDataset, read_channel, read_png, read_points

__all__ = ["NMR_CATEGORIES", "NMRDataset"]

#: The 13 ShapeNet categories of the NMR renders, by synset id.
NMR_CATEGORIES = SHAPENET_SYNSETS

FOCAL_FRACTION = 1.8660254037844388


class NMRDataset(ModelViewDataset):
    """One item per (model, view) of the listed models.

    Args:
        root: the ``NMR_Dataset`` folder.
        split: ``"train"``, ``"val"`` or ``"test"``; the models are read from
            ``{category}/{split_prefix}{split}.lst``.
        categories: synset ids (default: every category folder in ``root`` that is in
            :data:`NMR_CATEGORIES`); ``label`` indexes this list.
        views: which of the 24 views (default all; SDF-SRN trains on one per model).
        split_prefix: ``"softras_"`` (the SoftRas split SDF-SRN and Cat3D use) or ``""``.
        num_points: the ground-truth surface points per item: the file's points
            subsampled (or, when it has fewer, resampled with replacement) to this
            many, deterministically per model, so that items collate; ``None``: all.
        focal_fraction: the focal length as a fraction of the image width.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        categories: Sequence[str] | None = None,
        views: Sequence[int] | None = None,
        split_prefix: str = "softras_",
        num_points: int | None = 100_000,
        focal_fraction: float = FOCAL_FRACTION,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"root: no NMR_Dataset folder at {self.root}")
        if categories is None:
            categories = sorted(p.name for p in self.root.iterdir()
                                if p.is_dir() and p.name in NMR_CATEGORIES)  # fmt: skip
            if not categories:
                raise FileNotFoundError(f"root: no ShapeNet category folders in {self.root}")
        self.synsets = list(categories)
        self.views = list(range(24)) if views is None else [int(v) for v in views]
        self.num_points, self.focal_fraction = num_points, focal_fraction
        self._list_models(lambda s: self.root / s / f"{split_prefix}{split}.lst")

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        model_i, label, name, view = self._locate(i)
        folder = self.root / self.synsets[label] / name
        rgba = read_png(folder / "image" / f"{view:04d}.png", "NMR")
        mask = read_channel(folder / "mask" / f"{view:04d}.png", "NMR") > 127
        if mask.shape != rgba.shape[:2]:
            raise ValueError(
                f"NMR: {folder} view {view}: mask {mask.shape} and image {rgba.shape[:2]} differ"
            )
        h, w = mask.shape
        rgb = torch.from_numpy(rgba[..., :3].astype(np.float32) / 255).permute(2, 0, 1)
        m = torch.from_numpy(mask)
        image = torch.where(m[None], rgb, 1.0)
        pose = self._pose(folder, view)
        f = self.focal_fraction
        intrinsics = torch.tensor([[f * w, 0, w / 2], [0, f * h, h / 2], [0, 0, 1]])
        return {
            "image": image,
            "mask": m,
            "intrinsics": intrinsics,
            "pose": pose,
            "label": torch.tensor(label),
            "surface_points": self._points(folder, model_i),
            "shape_index": torch.tensor(model_i),
            "view": torch.tensor(view),
        }

    @staticmethod
    def _pose(folder: Path, view: int) -> torch.Tensor:
        path = folder / "cameras.npz"
        if not path.is_file():
            raise FileNotFoundError(f"NMR: missing cameras {path}")
        key = f"world_mat_{view}"
        with np.load(path) as cams:
            if key not in cams.files:
                raise ValueError(f"NMR: {path} has no {key!r} (keys: {sorted(cams.files)[:6]}...)")
            mat = np.asarray(cams[key], dtype=np.float64)
        if mat.shape not in ((3, 4), (4, 4)) or not np.isfinite(mat).all():
            raise ValueError(f"NMR: {path} {key} is not a finite [3, 4] or [4, 4] matrix")
        R = mat[:3, :3]
        if abs(np.linalg.det(R) - 1) > 1e-3 or not np.allclose(R @ R.T, np.eye(3), atol=1e-3):
            raise ValueError(f"NMR: {path} {key} has no rotation in its first 3 columns")
        return torch.from_numpy(mat[:3]).float()

    def _points(self, folder: Path, model_i: int) -> torch.Tensor:
        points, _ = read_points(folder / "pointcloud3.npz", "NMR", self.num_points, model_i)
        return points
