"""File helpers shared by the dataset readers: PNG images and point-cloud archives,
with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = [
    "SHAPENET_SYNSETS",
    "ModelViewDataset",
    "crop_intrinsics",
    "crop_view",
    "image_as_float",
    "read_channel",
    "read_mesh",
    "read_png",
    "read_points",
    "rgb_of",
    "square_box",
]

#: Names of the 13 ShapeNet categories of the NMR, 3D-R2N2 and DISN data, by synset id.
SHAPENET_SYNSETS = {
    "02691156": "airplane", "02828884": "bench", "02933112": "cabinet", "02958343": "car",
    "03001627": "chair", "03211117": "display", "03636649": "lamp", "03691459": "speaker",
    "04090263": "rifle", "04256520": "sofa", "04379243": "table", "04401088": "phone",
    "04530566": "watercraft",
}  # fmt: skip


#: PIL modes of greyscale images with more than 8 bits: integer (16-bit PNGs) and float.
INTEGER_HIGH_RANGE_MODES = ("I;16", "I;16B", "I;16L", "I")
HIGH_RANGE_MODES = (*INTEGER_HIGH_RANGE_MODES, "F")


def image_as_float(image) -> tuple[np.ndarray, np.ndarray | None]:
    """``(rgb [H, W, 3], alpha [H, W] or None)`` in ``[0, 1]`` of a PIL image of any
    mode, at its full range: 16-bit greyscale over 65535 (mode ``I`` holding only
    values up to 255 is read as 8-bit), float greyscale clipped to ``[0, 1]``, palette
    transparency as alpha."""
    if image.mode in INTEGER_HIGH_RANGE_MODES:
        grey = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or grey.max() > 255 else 255.0
        grey = np.clip(grey / peak, 0, 1)
        return np.repeat(grey[..., None], 3, -1), None
    if image.mode == "F":
        grey = np.clip(np.asarray(image, dtype=np.float64), 0, 1)
        return np.repeat(grey[..., None], 3, -1), None
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    rgba = np.asarray(image.convert("RGBA"), dtype=np.float64) / 255
    return rgba[..., :3], (rgba[..., 3] if has_alpha else None)


def read_png(path: Path, what: str) -> np.ndarray:
    """An image file as ``[H, W]`` (greyscale) or ``[H, W, 4]`` (RGBA) uint8. A 16-bit
    or float greyscale file is scaled from its full range (PIL's RGBA conversion would
    clip it at 255); a file PIL cannot read is a ``ValueError`` naming it."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise FileNotFoundError(f"{what}: missing file {path}")
    try:
        with Image.open(path) as image:
            if image.mode == "L":
                return np.asarray(image)
            if image.mode in HIGH_RANGE_MODES:
                grey = image_as_float(image)[0][..., 0]
                return np.round(grey * 255).astype(np.uint8)
            return np.asarray(image.convert("RGBA"))
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"{what}: {path} is not an image PIL can read ({exc})") from None


def read_channel(path: Path, what: str) -> np.ndarray:
    """An image file's first (or only) channel ``[H, W]`` uint8: a mask (``> 127`` is
    the object) or an instance map."""
    pixels = read_png(path, what)
    return pixels if pixels.ndim == 2 else pixels[..., 0]


def rgb_of(pixels: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` uint8 of :func:`read_png`'s greyscale ``[H, W]`` or RGBA ``[H, W, 4]``."""
    return pixels[..., :3] if pixels.ndim == 3 else np.repeat(pixels[..., None], 3, axis=2)


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


def square_box(box, margin: float) -> tuple[int, int, int]:
    """The square crop ``(x0, y0, side)`` in whole pixels centred on ``box``
    ``(x_min, y_min, x_max, y_max)`` (pixel-edge coordinates), its side ``margin``
    times the box's longer side."""
    x_min, y_min, x_max, y_max = (float(v) for v in box)
    if not all(np.isfinite([x_min, y_min, x_max, y_max])) or x_max <= x_min or y_max <= y_min:
        raise ValueError(f"box: expected a finite (x_min, y_min, x_max, y_max), got {box}")
    side = max(1, round(max(x_max - x_min, y_max - y_min) * margin))
    x0 = round((x_min + x_max) / 2 - side / 2)
    y0 = round((y_min + y_max) / 2 - side / 2)
    return x0, y0, side


def crop_intrinsics(K: np.ndarray, crop: tuple[int, int, int], size: int) -> np.ndarray:
    """``K`` moved with a square crop ``(x0, y0, side)`` resized to ``size``:
    ``c' = (c - x0) * size / side``, ``f' = f * size / side`` (pixel edges map to
    pixel edges)."""
    x0, y0, side = crop
    s = size / side
    K2 = np.asarray(K, dtype=np.float64).copy()
    K2[:2] *= s
    K2[0, 2] -= x0 * s
    K2[1, 2] -= y0 * s
    return K2


def crop_view(
    rgb: np.ndarray,
    mask: np.ndarray,
    K: np.ndarray,
    crop: tuple[int, int, int],
    size: int,
    mask_is_cropped: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Crop ``rgb`` ``[H, W, 3]`` uint8 to the square ``crop = (x0, y0, side)`` (parts
    outside the image are background) and resize it to ``size x size``; returns the
    item's ``image`` (on white off the mask), ``mask`` and intrinsics
    (:func:`crop_intrinsics`). ``mask`` is the photograph's ``[H, W]`` bool, cropped
    the same way, or (``mask_is_cropped``) already the crop's ``[size, size]``."""
    from PIL import Image

    x0, y0, side = crop
    box = (x0, y0, x0 + side, y0 + side)  # PIL pads outside the image with zeros
    rgb_img = Image.fromarray(rgb).crop(box).resize((size, size), Image.BILINEAR)
    if not mask_is_cropped:
        mask_img = Image.fromarray(mask.astype(np.uint8) * 255).crop(box)
        mask = np.asarray(mask_img.resize((size, size), Image.BILINEAR)) > 127
    m = torch.from_numpy(np.ascontiguousarray(mask))
    image = torch.from_numpy(np.asarray(rgb_img, dtype=np.float32) / 255).permute(2, 0, 1)
    K2 = crop_intrinsics(K, crop, size)
    return torch.where(m[None], image, 1.0), m, torch.from_numpy(K2).float()


def read_mesh(path: Path, what: str):
    """A mesh file (OBJ, OFF, PLY, GLB: what trimesh reads) as one ``trimesh.Trimesh``."""
    import trimesh

    if not path.is_file():
        raise FileNotFoundError(f"{what}: missing model {path}")
    try:
        mesh = trimesh.load(path, force="mesh", process=False)
    except Exception as exc:  # trimesh raises many types for a broken file
        raise ValueError(f"{what}: cannot read the mesh {path} ({exc})") from None
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0 or mesh.area <= 0:
        raise ValueError(f"{what}: {path} has no triangles")
    if not np.isfinite(mesh.vertices).all():
        raise ValueError(f"{what}: {path} has NaN or infinite vertices")
    return mesh
