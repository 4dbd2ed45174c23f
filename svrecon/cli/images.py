"""Reading a user's image (and mask) for ``svrecon reconstruct``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data.files import image_as_float
from .errors import UsageError

__all__ = ["load_image"]


def _open(path: str, what: str):
    from PIL import Image, UnidentifiedImageError

    if not Path(path).is_file():
        raise UsageError(f"{what}: {path} does not exist")
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise UsageError(f"{what}: {path} is not an image PIL can read ({exc})") from None
    return image


def _square(array: np.ndarray, fill: float) -> np.ndarray:
    h, w = array.shape[:2]
    side = max(h, w)
    out = np.full((side, side, *array.shape[2:]), fill, dtype=array.dtype)
    out[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = array
    return out


def _resize(array: np.ndarray, size: int, nearest: bool) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(array)).float()
    t = t.permute(2, 0, 1)[None] if t.dim() == 3 else t[None, None]
    mode = "nearest" if nearest else "area" if t.shape[-1] > size else "bilinear"
    kwargs = {} if mode != "bilinear" else {"align_corners": False}
    out = torch.nn.functional.interpolate(t, size=(size, size), mode=mode, **kwargs)[0]
    return out.permute(1, 2, 0).numpy() if array.ndim == 3 else out[0].numpy()


def load_image(path: str, mask_path: str | None, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An image file (and optional mask file) -> ``(image [1, 3, size, size] in [0, 1]
    on a white background, mask [1, size, size] bool)``.

    The mask is ``mask_path`` (non-zero = object) if given, else the image's alpha
    channel, else every pixel that is not (near) white. Greyscale, 16-bit, palette
    and RGBA images are read at their full range. A non-square image is padded to a
    square (white, no object) before resizing. A mask of another size than the image
    is an error, and so are an image under 8 pixels a side and an object that no pixel
    of the resized mask keeps.
    """
    image = _open(path, "image")
    if min(image.size) < 8:
        raise UsageError(
            f"image: {path} is {image.size[0]}x{image.size[1]}; expected at least 8x8 pixels"
        )
    rgb, alpha = image_as_float(image)
    if mask_path is not None:
        mask_image = _open(mask_path, "mask")
        if mask_image.size != image.size:
            raise UsageError(
                f"mask: {mask_path} is {mask_image.size[0]}x{mask_image.size[1]}, the image "
                f"is {image.size[0]}x{image.size[1]}"
            )
        mask_rgb, mask_alpha = image_as_float(mask_image)
        mask = mask_rgb.max(-1) > 0.5 if mask_alpha is None else mask_alpha > 0.5
    elif alpha is not None:
        mask = alpha > 0.5
    else:
        mask = rgb.min(-1) < 0.98
    if not mask.any():
        raise UsageError(f"mask: no object pixel in {mask_path or path}")
    rgb = np.where(mask[..., None], rgb, 1.0)
    rgb = _resize(_square(rgb, 1.0), size, nearest=False)
    mask = _resize(_square(mask.astype(np.float64), 0.0), size, nearest=True) > 0.5
    if not mask.any():
        raise UsageError(
            f"mask: the object in {mask_path or path} covers no pixel at --size {size}"
        )
    rgb = np.where(mask[..., None], rgb, 1.0).clip(0, 1)
    image_t = torch.from_numpy(rgb).float().permute(2, 0, 1)[None]
    return image_t, torch.from_numpy(mask)[None]
