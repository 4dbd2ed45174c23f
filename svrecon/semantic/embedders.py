"""Image embedders for semantic neighbours (ShapeClipper Sec. 3.3): any callable
``images [B, 3, H, W] in [0, 1] -> embeddings [B, D]``.

:class:`OpenCLIPEmbedder` runs an ``open_clip`` image tower whose weights come from a
local file (nothing is downloaded); :class:`ThumbnailEmbedder` needs no weights at all
(the procedural runs use it, since no CLIP weights can be fetched there).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from ..checks import check_shape

__all__ = ["ImageEmbedder", "OpenCLIPEmbedder", "ThumbnailEmbedder"]

#: What an embedder is: images ``[B, 3, H, W]`` in ``[0, 1]`` -> ``[B, D]``.
ImageEmbedder = Callable[[torch.Tensor], torch.Tensor]

# open_clip's defaults for OpenAI-trained towers (open_clip.constants)
_OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
_OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


class OpenCLIPEmbedder:
    """CLIP image embeddings (ShapeClipper: ViT-L/14), unit length, float32.

    Args:
        model_name: an ``open_clip`` architecture (``open_clip.list_models()``, e.g.
            ``"ViT-L-14"``), or the name of the config in ``model_config``.
        weights_path: a local file with the model's ``state_dict`` (``torch.save`` of
            ``model.state_dict()``, or an ``open_clip`` checkpoint whose
            ``"state_dict"`` entry holds it), read with ``weights_only=True``.
        model_config: optional path to an ``open_clip`` model config JSON (for an
            architecture ``open_clip`` does not list); its file stem is the name.
        device: where the tower runs (default: CUDA if available, else CPU).

    Images are resized (bicubic) to the tower's input size and normalised with its
    mean and std (OpenAI's unless the model says otherwise). ``name`` identifies the
    embedder for on-disk caches (architecture and a hash of the weights file).
    """

    def __init__(
        self,
        model_name: str,
        weights_path: str | Path,
        model_config: str | Path | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        if model_name.startswith(("hf-hub:", "local-dir:")):
            raise ValueError(
                f"model_name: expected an architecture name, got {model_name!r} (svrecon never "
                "downloads weights; pass weights_path)"
            )
        weights_path = Path(weights_path)
        if not weights_path.is_file():
            raise FileNotFoundError(
                f"weights_path: no file {weights_path}; download the open_clip weights of "
                f"{model_name!r} once (e.g. open_clip.create_model({model_name!r}, "
                "pretrained=...) on a machine with internet, then torch.save(model."
                "state_dict(), path)) and pass that path"
            )
        import open_clip

        if model_config is not None:
            model_config = Path(model_config)
            if not model_config.is_file():
                raise FileNotFoundError(f"model_config: no file {model_config}")
            open_clip.add_model_config(model_config)
        if open_clip.get_model_config(model_name) is None:
            raise ValueError(
                f"model_name: open_clip knows no architecture {model_name!r}; see "
                "open_clip.list_models() or pass model_config"
            )
        model = open_clip.create_model(model_name, pretrained=None)
        try:
            state = torch.load(weights_path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's
            raise ValueError(f"weights_path: cannot read {weights_path}: {exc}") from exc
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise ValueError(f"weights_path: {weights_path} holds no state_dict")
        state = {k.removeprefix("module."): v for k, v in state.items()}
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise ValueError(
                f"weights_path: {weights_path} does not match {model_name!r}: {exc}"
            ) from exc
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(device).eval()
        self.device = device
        size = model.visual.image_size
        self.image_size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        cfg = getattr(model.visual, "preprocess_cfg", {}) or {}
        self.mean = torch.tensor(cfg.get("mean", _OPENAI_MEAN)).view(1, 3, 1, 1)
        self.std = torch.tensor(cfg.get("std", _OPENAI_STD)).view(1, 3, 1, 1)
        digest = hashlib.sha256(weights_path.read_bytes()).hexdigest()[:16]
        self.name = f"open_clip:{model_name}:{digest}"

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        check_shape("images", images, ("B", 3, "H", "W"))
        x = images.to(self.device, torch.float32)
        x = F.interpolate(x, size=self.image_size, mode="bicubic", align_corners=False)
        x = (x.clamp(0, 1) - self.mean.to(x)) / self.std.to(x)
        return F.normalize(self.model.encode_image(x).float(), dim=-1)


class ThumbnailEmbedder:
    """A weight-free stand-in for CLIP: each image (on a white background) area-resized
    to ``size x size``, flattened, centred and scaled to unit length.

    It has no semantics: neighbours are images that look alike pixel for pixel (on the
    procedural set: mostly the same category seen from a similar direction). The
    procedural ShapeClipper runs use it because no CLIP weights can be fetched there.
    """

    def __init__(self, size: int = 16) -> None:
        if size < 1:
            raise ValueError(f"size: expected >= 1, got {size}")
        self.size = size
        self.name = f"thumbnail:{size}"

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        check_shape("images", images, ("B", 3, "H", "W"))
        x = F.interpolate(images.float(), size=(self.size, self.size), mode="area").flatten(1)
        return F.normalize(x - x.mean(dim=1, keepdim=True), dim=-1)
