"""File helpers shared by the dataset readers: PNG images and point-cloud archives,
with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["SHAPENET_SYNSETS", "ModelViewDataset", "read_png", "read_points"]

#: Names of the 13 ShapeNet categories of the NMR, 3D-R2N2 and DISN data, by synset id.
SHAPENET_SYNSETS = {
    "02691156": "airplane", "02828884": "bench", "02933112": "cabinet", "02958343": "car",
    "03001627": "chair", "03211117": "display", "03636649": "lamp", "03691459": "speaker",
    "04090263": "rifle", "04256520": "sofa", "04379243": "table", "04401088": "phone",
    "04530566": "watercraft",
}  # fmt: skip


def read_png(path: Path, what: str) -> np.ndarray:
    """An image file as ``[H, W]`` (greyscale) or ``[H, W, 4]`` (RGBA) uint8."""
    from PIL import Image

    if not path.is_file():
        raise FileNotFoundError(f"{what}: missing image {path}")
    with Image.open(path) as image:
        return np.asarray(image.convert("RGBA") if image.mode != "L" else image)


def read_points(
    path: Path, what: str, num_points: int | None, seed: int, key: str = "points"
) -> tuple[torch.Tensor, np.lib.npyio.NpzFile | dict]:
    """``[N, 3]`` float32 points from the ``.npz`` ``path`` (array ``key``), subsampled
    (or, when there are fewer, resampled with replacement) to ``num_points``,
    deterministically for ``seed``; ``None`` keeps them all. Also returns the
    archive's other arrays."""
    if not path.is_file():
        raise FileNotFoundError(f"{what}: missing ground-truth points {path}")
    with np.load(path) as npz:
        if key not in npz.files:
            raise ValueError(f"{what}: {path} has no {key!r} array")
        points = np.asarray(npz[key], dtype=np.float32)
        extra = {k: np.asarray(npz[k]) for k in npz.files if k != key}
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        raise ValueError(f"{what}: {path} {key}: expected [N, 3], got {list(points.shape)}")
    if not np.isfinite(points).all():
        raise ValueError(f"{what}: {path} {key} contain NaN or infinite values")
    if num_points is not None and len(points) != num_points:
        rng = np.random.default_rng(seed)
        points = points[rng.choice(len(points), num_points, replace=len(points) < num_points)]
    return torch.from_numpy(points), extra


class ModelViewDataset(Dataset):
    """The bookkeeping of the ShapeNet readers: one item per (listed model, view);
    ``label`` indexes the synsets, named through :data:`~svrecon.data.NMR_CATEGORIES`."""

    synsets: list[str]
    views: list[int]
    models: list[tuple[int, str]]

    def _list_models(self, listing_of) -> None:
        """Read every synset's model list, at ``listing_of(synset)``, into ``models``."""
        self.models = []
        for label, synset in enumerate(self.synsets):
            listing = listing_of(synset)
            if not listing.is_file():
                raise FileNotFoundError(f"split: no model list {listing}")
            names = [x.strip() for x in listing.read_text().splitlines() if x.strip()]
            self.models += [(label, n) for n in names]

    @property
    def categories(self) -> list[str]:
        """Category names (``label`` indexes this list)."""
        return [SHAPENET_SYNSETS.get(s, s) for s in self.synsets]

    def __len__(self) -> int:
        return len(self.models) * len(self.views)

    def evaluation_indices(self) -> list[int]:
        """The first listed view of every model."""
        return list(range(0, len(self), len(self.views)))

    def _locate(self, i: int) -> tuple[int, int, str, int]:
        """Item ``i`` -> ``(model index, label, model name, view)``."""
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} items")
        model_i, view_i = divmod(i, len(self.views))
        label, name = self.models[model_i]
        return model_i, label, name, self.views[view_i]
