"""Class-conditional image discriminator with projection conditioning (Cat3D Sec. 3.3;
Miyato & Koyama 2018)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import spectral_norm as _spectral_norm

from ..checks import as_dtype_of, check_class_labels, check_shape, parameter_dtype

__all__ = ["ProjectionDiscriminator"]


class ProjectionDiscriminator(nn.Module):
    """``D(x, y) = w . phi(x) + <E[y], phi(x)>`` with ``phi`` a strided conv stack.

    ``phi``: 4x4 stride-2 convolutions (no bias), channel count doubling from
    ``base_channels`` until the feature map is 4x4 (four layers at 64x64), LeakyReLU
    0.2, instance norm after every layer but the first, then a global **sum** over
    space. Spectral norm wraps every convolution, the linear head
    and the class embedding (``spectral_norm=True``).

    Args:
        num_classes: number of categories; ``0`` gives an unconditional critic.
        in_channels: 4 for Cat3D's ``[mask, RGB]`` input.
        base_channels: the first layer's width. The default 256 makes the widths end
            at 2048 at 64x64, as the Cat3D paper states; its code's ``n_channels`` is
            also 256.
        image_size: square input size, a power of two >= 8.

    ``forward(images [B, in_channels, S, S], labels [B] | None) -> logits [B]``.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 4,
        base_channels: int = 256,
        image_size: int = 64,
        spectral_norm: bool = True,
    ):
        super().__init__()
        if image_size < 8 or image_size & (image_size - 1):
            raise ValueError(f"image_size: expected a power of two >= 8, got {image_size}")
        wrap = _spectral_norm if spectral_norm else (lambda m: m)
        layers: list[nn.Module] = []
        channels, size, first = in_channels, image_size, True
        out = base_channels
        while size > 4:
            layers.append(wrap(nn.Conv2d(channels, out, 4, 2, 1, bias=False)))
            if not first:
                layers.append(nn.InstanceNorm2d(out))
            layers.append(nn.LeakyReLU(0.2))
            channels, out, size, first = out, out * 2, size // 2, False
        self.features = nn.Sequential(*layers)
        self.in_channels, self.image_size, self.num_classes = in_channels, image_size, num_classes
        self.linear = nn.Linear(channels, 1)
        nn.init.xavier_uniform_(self.linear.weight)
        self.linear = wrap(self.linear)
        self.embedding = None
        if num_classes > 0:
            embedding = nn.Embedding(num_classes, channels)
            nn.init.xavier_uniform_(embedding.weight)
            self.embedding = wrap(embedding)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        s = self.image_size
        dims = check_shape("images", images, ("B", self.in_channels, s, s))
        images = as_dtype_of("images", images, parameter_dtype(self))
        phi = self.features(images).sum(dim=(2, 3))
        logits = self.linear(phi)[:, 0]
        if self.embedding is not None:
            if labels is None:
                raise ValueError("labels: a class-conditional discriminator needs labels [B]")
            check_shape("labels", labels, (dims["B"],))
            labels = check_class_labels("labels", labels, self.embedding.num_embeddings)
            logits = logits + (self.embedding(labels) * phi).sum(-1)
        return logits
