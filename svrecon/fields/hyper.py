"""Hypernetwork-conditioned MLPs (SDF-SRN, Cat3D): per-instance weights from a latent code.

A :class:`HyperNetwork` maps a latent code ``[B, L]`` to the weights of a small MLP
per instance; the result is a :class:`HyperMLP`, evaluated for the whole batch with
one batched matrix product per layer, or with one dense GEMM per instance and layer
where that is faster (on a CPU with one thread or many points: its ``strategy``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import as_dtype_of, check_shape
from ._mlp import mlp
from .base import BoundField
from .encoding import PositionalEncoding
from .output import FieldOutput

__all__ = ["HyperMLP", "HyperNetwork", "HyperSDFField"]


class HyperMLP:
    """An MLP with per-instance weights, applied to points ``[B, N, k_in]``.

    Args:
        weights: per layer ``[B, k_in, k_out]``.
        biases: per layer ``[B, k_out]``.
        concat_layers: layers whose input is ``[h, extra]`` (``extra`` is passed to
            ``__call__``), e.g. the re-concatenated point encoding.
        layer_norm: LayerNorm without affine parameters before each hidden activation
            (SDF-SRN); Cat3D uses plain ReLU.
        final_activation: also apply the norm and ReLU after the last layer (trunk
            MLPs whose output is a feature, not a prediction).
        chunk_size: points per instance evaluated at once. Small chunks keep the
            working set in cache, which is what makes batching pay off on a CPU
            (see ``benchmarks/bench_hyper_mlp.py``); results do not depend on it.
        strategy: ``"batched"`` (one batched matrix product per layer, in chunks),
            ``"per_instance"`` (one dense GEMM per instance and layer) or ``"auto"``:
            per instance on the CPU when an instance has more than ``per_instance_from``
            points (there one GEMM already runs near the CPU's peak and batching only
            adds memory traffic) or torch uses one thread (batching pays on a CPU by
            giving several threads work that one small GEMM cannot), batched otherwise
            and on every other device.
    """

    def __init__(
        self,
        weights: Sequence[torch.Tensor],
        biases: Sequence[torch.Tensor],
        concat_layers: Sequence[int] = (),
        layer_norm: bool = True,
        final_activation: bool = False,
        chunk_size: int = 512,
        strategy: str = "auto",
        per_instance_from: int = 512,
    ) -> None:
        if strategy not in ("auto", "batched", "per_instance"):
            raise ValueError(
                f"strategy: expected 'auto', 'batched' or 'per_instance', got {strategy!r}"
            )
        if len(weights) != len(biases) or not weights:
            raise ValueError("weights, biases: expected equal, non-zero numbers of layers")
        dims: dict[str, int] = {}
        for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
            check_shape(f"weights[{i}]", w, ("B", f"k_in{i}", f"k_out{i}"), dims)
            check_shape(f"biases[{i}]", b, ("B", f"k_out{i}"), dims)
        self.weights, self.biases = list(weights), list(biases)
        self.concat_layers = frozenset(concat_layers)
        self.layer_norm = layer_norm
        self.final_activation = final_activation
        self.chunk_size = chunk_size
        self.strategy, self.per_instance_from = strategy, per_instance_from

    @property
    def batch_size(self) -> int:
        return self.weights[0].shape[0]

    def __call__(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``[B, N, k_in]`` (and ``extra`` ``[B, N, E]``) -> ``[B, N, k_out]``."""
        dims = check_shape("x", x, (self.batch_size, "N", "C"))
        if self.concat_layers:
            if extra is None:
                raise ValueError(f"extra: layers {sorted(self.concat_layers)} need it, got None")
            check_shape("extra", extra, (self.batch_size, dims["N"], "E"))
        per_instance = self.strategy == "per_instance" or (
            self.strategy == "auto"
            and x.device.type == "cpu"
            and (dims["N"] > self.per_instance_from or torch.get_num_threads() == 1)
        )
        if per_instance:
            return torch.stack(
                [self._forward_instance(b, x[b], None if extra is None else extra[b])
                 for b in range(self.batch_size)]
            )  # fmt: skip
        if dims["N"] <= self.chunk_size:
            return self._forward(x, extra)
        starts = range(0, dims["N"], self.chunk_size)
        return torch.cat(
            [
                self._forward(
                    x[:, i : i + self.chunk_size],
                    None if extra is None else extra[:, i : i + self.chunk_size],
                )
                for i in starts
            ],
            dim=1,
        )

    def _forward_instance(self, b: int, x: torch.Tensor, extra: torch.Tensor | None):
        """Instance ``b``'s MLP on its points ``[N, k_in]``, one 2-D GEMM per layer."""
        return self._layers(x, extra, [w[b] for w in self.weights], [c[b] for c in self.biases])

    def _forward(self, x: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
        """The batch's MLPs on points ``[B, n, k_in]``, one batched product per layer."""
        return self._layers(x, extra, self.weights, [c[:, None] for c in self.biases])

    def _layers(self, h, extra, weights, biases) -> torch.Tensor:
        """The layers on ``h`` ``[(B,) n, k]`` with weights ``[(B,) k_in, k_out]`` and
        biases broadcastable to the output; ``addmm`` for one instance, ``baddbmm`` for a
        batch."""
        affine = torch.addmm if h.dim() == 2 else torch.baddbmm
        last = len(weights) - 1
        for i, (w, bias) in enumerate(zip(weights, biases, strict=True)):
            width = h.shape[-1] + (extra.shape[-1] if i in self.concat_layers else 0)
            if width != w.shape[-2]:
                raise ValueError(f"x: layer {i} expects {w.shape[-2]} inputs, got {width}")
            if i in self.concat_layers:
                # [h, extra] @ W without materialising the concatenation; the second
                # product accumulates in place (neither product's backward reads it).
                k = h.shape[-1]
                h = affine(bias, h, w[..., :k, :])
                tail = extra, w[..., k:, :]
                if h.dtype != extra.dtype:  # autocast casts no in-place product's inputs
                    tail = tuple(t.to(h.dtype) for t in tail)
                h = (h.addmm_ if h.dim() == 2 else h.baddbmm_)(*tail)
            else:
                h = affine(bias, h, w)
            if i < last or self.final_activation:
                if self.layer_norm:
                    h = _layer_norm(h)
                h = F.relu(h)
        return h


def _layer_norm(h: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``F.layer_norm`` over the last dimension without affine parameters, in plain ops
    on the CPU: there (one thread, ``[4096, 128]`` float32 after a GEMM) ATen's fused
    kernel took longer than these (``benchmarks/bench_hyper_mlp.py``). Elsewhere, and
    under autocast (which runs it in float32), the fused ``F.layer_norm``."""
    if h.device.type != "cpu" or torch.is_autocast_enabled(h.device.type):
        return F.layer_norm(h, h.shape[-1:], eps=eps)
    centred = h - h.mean(-1, keepdim=True)
    return centred * torch.rsqrt((centred * centred).mean(-1, keepdim=True) + eps)


class HyperNetwork(nn.Module):
    """Latent ``[B, L]`` -> the weights of a per-instance MLP (one hyper-MLP per layer).

    Each target layer ``k_in -> k_out`` has its own MLP ``L -> hidden... ->
    (k_in + 1) * k_out`` (ReLU between), reshaped to ``[B, k_in + 1, k_out]`` whose
    row 0 is the bias and rows ``1..`` the weight (SDF-SRN's layout).

    Args:
        latent_dim: ``L``.
        layer_dims: the target MLP's widths, e.g. ``[33, 128, 128, 128, 128]``; the
            input width of each layer after the first is increased by ``concat_dim``
            when it is in ``concat_layers``.
        hidden_dims: the hidden widths of every hyper-MLP (SDF-SRN: ``(512,) * 4``).
        concat_layers, concat_dim: layers that take ``[h, extra]``, and ``extra``'s width.
        layer_norm, final_activation: passed to :class:`HyperMLP`.
    """

    def __init__(
        self,
        latent_dim: int,
        layer_dims: Sequence[int],
        hidden_dims: Sequence[int] = (512, 512, 512, 512),
        concat_layers: Sequence[int] = (),
        concat_dim: int = 0,
        layer_norm: bool = True,
        final_activation: bool = False,
    ) -> None:
        super().__init__()
        if len(layer_dims) < 2:
            raise ValueError(f"layer_dims: expected at least 2 widths, got {list(layer_dims)}")
        self.latent_dim = latent_dim
        self.shapes: list[tuple[int, int]] = []
        for i, (k_in, k_out) in enumerate(zip(layer_dims[:-1], layer_dims[1:], strict=True)):
            self.shapes.append((k_in + (concat_dim if i in concat_layers else 0), k_out))
        self.concat_layers = tuple(concat_layers)
        self.layer_norm = layer_norm
        self.final_activation = final_activation
        self.hyper = nn.ModuleList()
        for k_in, k_out in self.shapes:
            self.hyper.append(mlp([latent_dim, *hidden_dims, (k_in + 1) * k_out]))

    def forward(self, latent: torch.Tensor) -> HyperMLP:
        """``latent`` ``[B, latent_dim]`` -> a :class:`HyperMLP` for the batch."""
        check_shape("latent", latent, ("B", self.latent_dim))
        weights, biases = [], []
        for (k_in, k_out), net in zip(self.shapes, self.hyper, strict=True):
            out = net(latent).view(-1, k_in + 1, k_out)
            biases.append(out[:, 0])
            weights.append(out[:, 1:])
        return HyperMLP(weights, biases, self.concat_layers, self.layer_norm, self.final_activation)


class HyperSDFField(nn.Module):
    """SDF-SRN / Cat3D implicit field: generated trunk, SDF head and RGB head.

    ``field = module.bind(latent)`` (or ``module(latent)``) returns the field
    ``points [B, N, 3] -> FieldOutput`` (a :class:`~svrecon.fields.BoundField`)
    with ``sdf`` ``[B, N]``, ``features`` (the trunk output, the LSTM marcher's input)
    and ``rgb`` in ``[0, 1]`` (the seed's tanh output mapped from ``[-1, 1]``).

    Defaults are SDF-SRN's ShapeNet setting: encoding ``PositionalEncoding(5,
    "sdf_srn")`` (33 values), trunk 4 x 128 with LayerNorm + ReLU re-concatenating the
    encoding at every layer after the first, heads ``128 -> 1`` and ``128 -> 3``,
    hyper-MLPs ``latent -> 512 x 4 -> weights``. Cat3D: ``trunk_dims=(64,) * 4``,
    ``trunk_concat=(1, 2)``, ``layer_norm=False``, ``head_concat=True`` (the heads see
    ``[feature, encoding]``), ``sdf_head_dims=(32,)``, ``rgb_head_dims=(128,)``.
    """

    def __init__(
        self,
        latent_dim: int = 512,
        encoding: PositionalEncoding | None = None,
        trunk_dims: Sequence[int] = (128, 128, 128, 128),
        trunk_concat: Sequence[int] | None = None,
        sdf_head_dims: Sequence[int] = (),
        rgb_head_dims: Sequence[int] = (),
        hidden_dims: Sequence[int] = (512, 512, 512, 512),
        layer_norm: bool = True,
        head_concat: bool = False,
        rgb_latent_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.encoding = encoding if encoding is not None else PositionalEncoding(5, "sdf_srn")
        enc = self.encoding.out_dim
        if trunk_concat is None:
            trunk_concat = tuple(range(1, len(trunk_dims)))
        self.latent_dim = latent_dim
        self.rgb_latent_dim = rgb_latent_dim
        self.trunk = HyperNetwork(
            latent_dim, [enc, *trunk_dims], hidden_dims, trunk_concat, enc, layer_norm, True
        )
        feat = trunk_dims[-1]
        head_extra = (0,) if head_concat else ()
        self.sdf_head = HyperNetwork(
            latent_dim, [feat, *sdf_head_dims, 1], hidden_dims, head_extra, enc, layer_norm
        )
        self.rgb_head = HyperNetwork(
            rgb_latent_dim or latent_dim,
            [feat, *rgb_head_dims, 3],
            hidden_dims,
            head_extra,
            enc,
            layer_norm,
        )

    def bind(self, latent: torch.Tensor, rgb_latent: torch.Tensor | None = None) -> BoundField:
        """The per-instance field for ``latent`` ``[B, latent_dim]`` (see :meth:`forward`)."""
        return self(latent, rgb_latent)

    def forward(self, latent: torch.Tensor, rgb_latent: torch.Tensor | None = None) -> BoundField:
        """Generate the per-instance field from ``latent`` ``[B, latent_dim]``.

        ``rgb_latent`` (``[B, rgb_latent_dim]``) conditions the RGB head separately
        when ``rgb_latent_dim`` is set (Cat3D's texture code).
        """
        if self.rgb_latent_dim is not None and rgb_latent is None:
            raise ValueError(f"rgb_latent: expected shape [B, {self.rgb_latent_dim}], got None")
        trunk = self.trunk(latent)
        sdf_head = self.sdf_head(latent)
        rgb_head = self.rgb_head(rgb_latent if rgb_latent is not None else latent)
        encoding = self.encoding

        def field(points: torch.Tensor) -> FieldOutput:
            enc = encoding(as_dtype_of("points", points, trunk.weights[0].dtype))
            features = trunk(enc, enc)
            sdf = sdf_head(features, enc)[..., 0]
            rgb = (torch.tanh(rgb_head(features, enc)) + 1) / 2
            return FieldOutput(sdf=sdf, features=features, rgb=rgb)

        return BoundField(field, trunk.batch_size, "sdf")
