"""Image encoders: ResNet-18/34 with global latent heads, VGG-16 feature pyramid.

Pretrained weights are optional and never fetched: pass ``weights_path`` to a
torchvision ``state_dict`` file saved beforehand (loaded with ``weights_only=True``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from ..checks import as_dtype_of, check_shape, parameter_dtype

__all__ = ["ResNetEncoder", "VGG16FeaturePyramid", "load_state_dict_file"]


def load_state_dict_file(module: nn.Module, path: str | Path) -> None:
    """Load a ``state_dict`` file into ``module`` safely, with a clear error if it does not fit."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unreadable, truncated or not a tensor archive
        raise ValueError(f"weights_path: cannot read a state_dict from {path}: {exc}") from exc
    if not isinstance(state, Mapping):
        raise ValueError(f"weights_path: {path} holds a {type(state).__name__}, not a state_dict")
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"weights_path: {path} does not match the network: {exc}") from exc


class ResNetEncoder(nn.Module):
    """ResNet-18/34 backbone -> global latent codes split by name.

    Args:
        arch: ``"resnet18"`` or ``"resnet34"``.
        latent_dims: names and sizes of the codes read from one linear head on the
            512-d pooled feature, e.g. ``{"shape": 512, "texture": 512}`` (Cat3D) or
            MSU's ``{"category": 3, "albedo": 256, "shape": 256, "camera": 12,
            "light": 27}``.
        in_channels: 3 (RGB) or 4 (RGB + mask, Cat3D's viewpoint estimator); extra
            channels start from the mean of the RGB filters.
        norm: ``"batch"`` (torchvision's) or ``"group"`` (MSU; 32 groups).
        weights_path: optional torchvision ``state_dict`` of the backbone (3-channel,
            with its ``fc``), loaded before the input and head are adapted.

    ``forward(images [B, C, H, W]) -> dict`` of ``[B, size]`` codes.
    """

    def __init__(
        self,
        arch: Literal["resnet18", "resnet34"] = "resnet18",
        latent_dims: Mapping[str, int] | None = None,
        in_channels: int = 3,
        norm: Literal["batch", "group"] = "batch",
        weights_path: str | Path | None = None,
    ) -> None:
        super().__init__()
        if arch not in ("resnet18", "resnet34"):
            raise ValueError(f"arch: expected 'resnet18' or 'resnet34', got {arch!r}")
        if norm not in ("batch", "group"):
            raise ValueError(f"norm: expected 'batch' or 'group', got {norm!r}")
        self.latent_dims = dict(latent_dims or {"shape": 512})
        self.in_channels = in_channels
        norm_layer = (lambda c: nn.GroupNorm(32, c)) if norm == "group" else None
        import torchvision  # deferred: importing it costs more than svrecon itself

        net = getattr(torchvision.models, arch)(weights=None, norm_layer=norm_layer)
        if weights_path is not None:
            load_state_dict_file(net, weights_path)
        if in_channels != 3:
            old = net.conv1
            conv = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
            with torch.no_grad():
                conv.weight[:, :3] = old.weight[:, : min(3, in_channels)]
                if in_channels > 3:
                    conv.weight[:, 3:] = old.weight.mean(dim=1, keepdim=True)
            net.conv1 = conv
        net.fc = nn.Identity()
        self.backbone = net
        self.head = nn.Linear(512, sum(self.latent_dims.values()))

    def feature_maps(self, images: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """``images`` ``[B, C, H, W]`` -> (the four residual stages' maps ``[B, 64 / 128 /
        256 / 512, H / 4 ... H / 32, ...]``, pooled feature ``[B, 512]``), as
        :meth:`ConvEncoder.feature_maps <svrecon.encoders.ConvEncoder.feature_maps>`."""
        check_shape("images", images, ("B", self.in_channels, "H", "W"))
        net = self.backbone
        h = net.maxpool(net.relu(net.bn1(net.conv1(images))))
        maps = []
        for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
            h = layer(h)
            maps.append(h)
        return maps, torch.flatten(net.avgpool(h), 1)

    def codes(self, pooled: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split the head's output on a pooled feature ``[B, 512]`` into the named codes."""
        out = self.head(pooled)
        return dict(
            zip(self.latent_dims, out.split(list(self.latent_dims.values()), -1), strict=True)
        )

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        check_shape("images", images, ("B", self.in_channels, "H", "W"))
        return self.codes(self.backbone(as_dtype_of("images", images, parameter_dtype(self))))


# (layer index after which the activation is taken, name, channels) in torchvision's vgg16.
_VGG16_TAPS = ((3, "conv1_2", 64), (8, "conv2_2", 128), (15, "conv3_3", 256),
               (22, "conv4_3", 512), (29, "conv5_3", 512))  # fmt: skip


class VGG16FeaturePyramid(nn.Module):
    """DISN's image encoder: VGG-16 multi-scale features and a global feature.

    Returns ``(global [B, global_dim], [conv1_2, conv2_2, conv3_3, conv4_3, conv5_3])``
    with 64 + 128 + 256 + 512 + 512 = 1472 channels, for
    :func:`svrecon.encoders.sample_features`. The global feature is pool5, averaged
    and mapped by a linear layer + ReLU (DISN maps VGG's fully connected output).

    ``weights_path``: optional torchvision ``vgg16`` ``state_dict``.
    """

    channels = tuple(c for _, _, c in _VGG16_TAPS)

    def __init__(self, global_dim: int = 1024, weights_path: str | Path | None = None) -> None:
        super().__init__()
        import torchvision

        vgg = torchvision.models.vgg16(weights=None)
        if weights_path is not None:
            load_state_dict_file(vgg, weights_path)
        self.features = vgg.features
        self.global_head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, global_dim), nn.ReLU()
        )

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        check_shape("images", images, ("B", 3, "H", "W"))
        taps = {i for i, _, _ in _VGG16_TAPS}
        maps, h = [], as_dtype_of("images", images, parameter_dtype(self))
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in taps:
                maps.append(h)
        return self.global_head(h), maps
