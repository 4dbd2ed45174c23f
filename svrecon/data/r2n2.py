"""The 3D-R2N2 ShapeNet renders (Choy et al. 2016; the images DISN trains on), read
into svrecon's item schema, with ground truth from a ShapeNet point-cloud folder.

Layout::

    {render_root}/{synset}/{model}/rendering/{view:02d}.png   137 x 137 RGBA, alpha = mask
    {render_root}/{synset}/{model}/rendering/rendering_metadata.txt
        one line per view: azimuth, elevation, in-plane rotation (degrees), distance
        ratio, field of view
    {shape_root}/{synset}/{split}.lst                          model ids (OccNet's splits)
    {shape_root}/{synset}/{model}/pointcloud.npz               points [N, 3] (+ normals)

Camera convention, converted here once (the Blender set-up of the renders, as 3D-R2N2
and the DISN and OccNet preprocessing compute it): focal ``35 mm`` on a ``32 mm``
sensor (``f = 35 / 32 * W`` pixels), principal point at the image centre; the camera
at ``distance_ratio * 1.75`` from the origin, placed by azimuth and elevation about
Blender's z-up frame, whose axes are ShapeNet's ``(x, -z, y)``; Blender's camera axes
(y up, looking along -z) flipped to OpenCV's. The in-plane rotation and field of
view columns are not used (the renders have none and a fixed lens).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .files import ModelViewDataset, read_png, read_points

__all__ = ["R2N2Dataset", "r2n2_camera"]

_F_MM, _SENSOR_MM, _MAX_DIST = 35.0, 32.0, 1.75
# Blender's camera rotation of the renders' set-up (object -> camera), as recorded
# by 3D-R2N2's rendering script.
_CAM_ROT = np.array([[1.910685676922942e-15, 4.371138828673793e-08, 1.0],
                     [1.0, -4.371138828673793e-08, -0.0],
                     [4.371138828673793e-08, 1.0, -4.371138828673793e-08]])  # fmt: skip
# ShapeNet (y up) to Blender (z up): p_blender = _SHAPENET_TO_BLENDER @ p_shapenet
_SHAPENET_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def r2n2_camera(
    azimuth: float, elevation: float, distance_ratio: float, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(K [3, 3], pose [3, 4])`` of one 3D-R2N2 view (angles in degrees, image
    ``size = (H, W)``); the pose maps ShapeNet coordinates to OpenCV camera ones."""
    h, w = size
    sa, ca = math.sin(math.radians(-azimuth)), math.cos(math.radians(-azimuth))
    se, ce = math.sin(math.radians(-elevation)), math.cos(math.radians(-elevation))
    world_to_object = np.array([[ca * ce, -sa, ca * se], [sa * ce, ca, sa * se], [-se, 0, ce]]).T
    object_to_camera = _CAM_ROT.T
    R = object_to_camera @ world_to_object
    t = -object_to_camera @ np.array([distance_ratio * _MAX_DIST, 0.0, 0.0])
    fix = np.diag([1.0, -1.0, -1.0])  # Blender camera (y up, -z forward) -> OpenCV
    R, t = fix @ R, fix @ t
    pose = np.concatenate([R @ _SHAPENET_TO_BLENDER, t[:, None]], axis=1)
    fu, fv = _F_MM * w / _SENSOR_MM, _F_MM * h / _SENSOR_MM
    K = np.array([[fu, 0, w / 2], [0, fv, h / 2], [0, 0, 1]])
    return torch.from_numpy(K).float(), torch.from_numpy(pose).float()


class R2N2Dataset(ModelViewDataset):
    """One item per (model, view) of the models listed in ``{shape_root}/{synset}/
    {split}.lst`` that have renders.

    Args:
        render_root: the ``ShapeNetRendering`` folder.
        shape_root: the point-cloud folder (OccNet's preprocessed ShapeNet layout).
        split: the list file's name (``train``, ``val``, ``test``).
        categories: synset ids (default: those present in both roots).
        views: which of the 24 renders (default all).
        num_points: ground-truth points per item (see :class:`~svrecon.data.NMRDataset`).
    """

    def __init__(
        self,
        render_root: str | Path,
        shape_root: str | Path,
        split: str = "train",
        categories: Sequence[str] | None = None,
        views: Sequence[int] | None = None,
        num_points: int | None = 100_000,
    ) -> None:
        self.render_root, self.shape_root = Path(render_root), Path(shape_root)
        for name, root in (("render_root", self.render_root), ("shape_root", self.shape_root)):
            if not root.is_dir():
                raise FileNotFoundError(f"{name}: no folder {root}")
        if categories is None:
            categories = sorted(p.name for p in self.render_root.iterdir()
                                if p.is_dir() and (self.shape_root / p.name).is_dir())  # fmt: skip
            if not categories:
                raise FileNotFoundError(
                    f"categories: no synset folder is in both {self.render_root} and "
                    f"{self.shape_root}"
                )
        self.synsets = list(categories)
        self.views = list(range(24)) if views is None else [int(v) for v in views]
        self.num_points = num_points
        self._list_models(lambda s: self.shape_root / s / f"{split}.lst")

    def _metadata(self, folder: Path) -> np.ndarray:
        path = folder / "rendering_metadata.txt"
        if not path.is_file():
            raise FileNotFoundError(f"R2N2: missing camera metadata {path}")
        try:
            rows = [[float(x) for x in line.split()]
                    for line in path.read_text().splitlines() if line.strip()]  # fmt: skip
            table = np.asarray(rows, dtype=np.float64)
        except ValueError as exc:
            raise ValueError(f"R2N2: {path} is not a table of numbers ({exc})") from None
        if table.ndim != 2 or table.shape[1] < 4 or not np.isfinite(table).all():
            raise ValueError(
                f"R2N2: {path}: expected rows of 5 numbers (azimuth, elevation, in-plane, "
                f"distance ratio, fov), got shape {list(table.shape)}"
            )
        return table

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        model_i, label, name, view = self._locate(i)
        synset = self.synsets[label]
        folder = self.render_root / synset / name / "rendering"
        rgba = read_png(folder / f"{view:02d}.png", "R2N2")
        if rgba.ndim != 3:
            raise ValueError(f"R2N2: {folder / f'{view:02d}.png'} has no alpha channel (mask)")
        table = self._metadata(folder)
        if view >= len(table):
            raise ValueError(f"R2N2: {folder} metadata has {len(table)} rows, no view {view}")
        h, w = rgba.shape[:2]
        K, pose = r2n2_camera(table[view, 0], table[view, 1], table[view, 3], (h, w))
        mask = torch.from_numpy(rgba[..., 3] > 127)
        rgb = torch.from_numpy(rgba[..., :3].astype(np.float32) / 255).permute(2, 0, 1)
        points, extra = read_points(self.shape_root / synset / name / "pointcloud.npz",
                                    "R2N2", self.num_points, model_i)  # fmt: skip
        if "loc" in extra and "scale" in extra:  # OccNet's normalisation, undone
            points = points * float(extra["scale"]) + torch.as_tensor(extra["loc"]).float()
        return {
            "image": torch.where(mask[None], rgb, 1.0),
            "mask": mask,
            "intrinsics": K,
            "pose": pose,
            "label": torch.tensor(label),
            "surface_points": points,
            "azimuth": torch.tensor(math.radians(table[view, 0]), dtype=torch.float32),
            "elevation": torch.tensor(math.radians(table[view, 1]), dtype=torch.float32),
            "shape_index": torch.tensor(model_i),
            "view": torch.tensor(view),
        }
