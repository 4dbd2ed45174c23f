"""A latent-conditioned SDF MLP with geometric initialisation (IDR / VolSDF / ShapeClipper)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..checks import as_dtype_of, check_shape, parameter_dtype
from .base import BoundField
from .encoding import PositionalEncoding
from .output import FieldOutput

__all__ = ["SDFNetwork"]


class SDFNetwork(nn.Module):
    """``f(x, z) -> (sdf, features)``: an MLP on ``[encode(x), z]``.

    Args:
        latent_dim: size of the conditioning code ``z`` (0 for an unconditioned field).
        hidden_dim: width of every hidden layer.
        num_layers: number of hidden layers.
        skip_layers: hidden layers whose input is ``[h, encode(x), z] / sqrt(2)``
            (the network input re-concatenated, IDR/VolSDF style).
        feature_dim: size of the feature vector output beside the SDF.
        encoding: positional encoding of the points (``None``: raw xyz).
        beta: softplus sharpness (100 in IDR, VolSDF, ShapeClipper).
        geometric_init: initialise to the SDF of a sphere of ``sphere_radius``
            (Atzmon & Lipman, SAL); encoding and latent inputs start with zero weight,
            so the untrained field is that sphere for every code.
        symmetric: evaluate at ``(|x|, y, z)``, making the field exactly mirror
            symmetric about the plane ``x = 0`` (ShapeClipper).
        weight_norm: weight-normalise every linear layer (VolSDF).

    ShapeClipper: ``SDFNetwork(64, 64, 5, (1, 2), 64, PositionalEncoding(6, "nerf"),
    sphere_radius=0.5, symmetric=True)``. VolSDF: ``hidden_dim=256, num_layers=8,
    skip_layers=(4,), feature_dim=256, encoding=PositionalEncoding(6, "nerf"),
    weight_norm=True``.
    """

    def __init__(
        self,
        latent_dim: int = 0,
        hidden_dim: int = 256,
        num_layers: int = 8,
        skip_layers: tuple[int, ...] = (4,),
        feature_dim: int = 256,
        encoding: PositionalEncoding | None = None,
        beta: float = 100.0,
        geometric_init: bool = True,
        sphere_radius: float = 0.5,
        symmetric: bool = False,
        weight_norm: bool = False,
    ) -> None:
        super().__init__()
        if any(not 0 < s < num_layers for s in skip_layers):
            raise ValueError(
                f"skip_layers: expected indices in 1..{num_layers - 1}, got {skip_layers}"
            )
        self.latent_dim = latent_dim
        self.feature_dim = feature_dim
        self.encoding = encoding
        self.symmetric = symmetric
        self.skip_layers = tuple(skip_layers)
        point_dim = encoding.out_dim if encoding is not None else 3
        in_dim = point_dim + latent_dim
        self.in_dim = in_dim
        # Columns of the network input that hold the raw xyz (the rest start at zero).
        xyz_cols = self._xyz_columns(encoding)
        if geometric_init and not xyz_cols:
            raise ValueError(
                "encoding: geometric_init needs the raw xyz in the input (include_input=True)"
            )

        layers = []
        for i in range(num_layers + 1):
            k_in = in_dim if i == 0 else hidden_dim
            if i in self.skip_layers:
                k_in = hidden_dim + in_dim
            k_out = 1 + feature_dim if i == num_layers else hidden_dim
            if i + 1 in self.skip_layers:
                k_out = hidden_dim  # the skip concatenation adds in_dim afterwards
            lin = nn.Linear(k_in, k_out)
            if geometric_init:
                role = "last" if i == num_layers else "first" if i == 0 else "hidden"
                if i in self.skip_layers:
                    role = "skip"
                self._geometric_init(lin, role, xyz_cols, in_dim, sphere_radius)
            layers.append(lin)
        self.layers = nn.ModuleList(layers)
        self.activation = nn.Softplus(beta=beta)
        if geometric_init:
            self._fit_sphere_readout(sphere_radius)
        if weight_norm:
            for i, lin in enumerate(self.layers):
                self.layers[i] = nn.utils.parametrizations.weight_norm(lin)

    @staticmethod
    def _xyz_columns(encoding: PositionalEncoding | None) -> list[int]:
        if encoding is None or not encoding.include_input:
            return [0, 1, 2] if encoding is None else []
        if encoding.layout == "nerf":
            return [0, 1, 2]
        return list(range(encoding.out_dim - 3, encoding.out_dim))

    @staticmethod
    def _geometric_init(lin: nn.Linear, role: str, xyz_cols, in_dim: int, radius: float) -> None:
        k_out, k_in = lin.weight.shape
        with torch.no_grad():
            if role == "last":
                # Mean sqrt(pi / k_in) makes the output ~ |x| for ReLU-like features.
                nn.init.normal_(lin.weight, 0.0, 1e-4)
                lin.weight[0].add_(math.sqrt(math.pi) / math.sqrt(k_in))
                nn.init.zeros_(lin.bias)
                lin.bias[0] = -radius
                return
            nn.init.normal_(lin.weight, 0.0, math.sqrt(2) / math.sqrt(k_out))
            nn.init.zeros_(lin.bias)
            if role == "first":
                # Twice the He (fan-in 3) scale on xyz instead of IDR's sqrt(2 / k_out):
                # the network is nearly positively homogeneous (zero biases, ReLU-like
                # softplus), so this only sharpens softplus(beta)'s rounding of the cone
                # tip of |x| at the origin (error there ~0.045 at 1x, ~0.03 at 2x).
                cols = [k_in - in_dim + c for c in xyz_cols]
                lin.weight[:, cols] *= 2 * math.sqrt(k_out / len(cols)) if cols else 1.0
            if role in ("first", "skip"):
                # Only the raw xyz of the network input starts with non-zero weight.
                offset = k_in - in_dim
                zero = torch.zeros(k_in, dtype=torch.bool)
                zero[offset:] = True
                zero[[offset + c for c in xyz_cols]] = False
                lin.weight[:, zero] = 0.0

    @torch.no_grad()
    def _fit_sphere_readout(
        self, radius: float, bound: float = 1.0, n: int = 16384, lawson_steps: int = 8
    ) -> None:
        """Solve the SDF row of the last layer so the untrained field is ``|x| - radius``.

        Random features leave the IDR readout off by up to ~0.5 on ``[-1, 1]^3``. A ridge
        least-squares fit on fixed uniform points, pulled toward the IDR row, brings the
        mean error to ~0.007 but leaves up to ~0.08 at the origin and the faces of the
        cube, which uniform points barely sample. So the fit also samples near the
        origin and on the faces, and a few Lawson reweighting steps (weights times the
        absolute residual, toward the minimax fit) bring the worst case below 0.05 for
        the default width (see tests). Features do not depend on the latent code here
        (its weights start at zero).
        """
        g = torch.Generator().manual_seed(0)
        points = (torch.rand(1, n, 3, generator=g) * 2 - 1) * bound
        # An eighth of the points within 0.1 of the origin, an eighth on the faces.
        tip = n // 8
        points[0, :tip] *= 0.1 / bound
        points[0, 0] = 0.0
        face = points[0, tip : 2 * tip]
        axis = torch.randint(0, 3, (tip,), generator=g)
        face[torch.arange(tip), axis] = face[torch.arange(tip), axis].sign() * bound
        last = self.layers[-1]
        captured = {}
        hook = last.register_forward_pre_hook(lambda m, a: captured.setdefault("h", a[0]))
        latent = torch.zeros(1, self.latent_dim) if self.latent_dim else None
        self(points, latent)
        hook.remove()
        H = captured["h"][0].double()
        H = torch.cat([H, torch.ones(n, 1, dtype=torch.float64)], dim=1)
        target = points[0].norm(dim=-1).double() - radius
        first = self.layers[0].weight
        rescale = 2 * math.sqrt(first.shape[0] / 3)  # first layer's scale over IDR's
        prior = torch.cat([last.weight[0].double() / rescale, last.bias[:1].double()])
        ridge = 1e-5 * n * torch.eye(H.shape[1], dtype=torch.float64)
        weights = torch.ones(n, dtype=torch.float64)
        for step in range(lawson_steps + 1):
            weighted = H * weights[:, None]
            w = torch.linalg.solve(H.T @ weighted + ridge, weighted.T @ target + ridge @ prior)
            if step < lawson_steps:
                residual = (H @ w - target).abs()
                weights = weights * (residual / residual.mean()).clamp_min(1e-3)
                weights = weights / weights.mean()
        last.weight[0] = w[:-1].to(last.weight.dtype)
        last.bias[0] = w[-1].to(last.bias.dtype)

    def forward(self, points: torch.Tensor, latent: torch.Tensor | None = None) -> FieldOutput:
        """``points`` ``[B, N, 3]``, ``latent`` ``[B, latent_dim]`` -> ``FieldOutput``.

        ``sdf`` is ``[B, N]`` and ``features`` ``[B, N, feature_dim]``.
        """
        dims = check_shape("points", points, ("B", "N", 3))
        points = as_dtype_of("points", points, parameter_dtype(self))
        if self.symmetric:
            points = torch.cat([points[..., :1].abs(), points[..., 1:]], dim=-1)
        x = self.encoding(points) if self.encoding is not None else points
        if self.latent_dim:
            if latent is None:
                raise ValueError(f"latent: expected shape [B, {self.latent_dim}], got None")
            check_shape("latent", latent, (dims["B"], self.latent_dim))
            x = torch.cat([x, latent[:, None].expand(-1, dims["N"], -1)], dim=-1)
        elif latent is not None:
            raise ValueError("latent: this field has latent_dim=0 and takes no code")
        inputs, h = x, x
        for i, lin in enumerate(self.layers):
            if i in self.skip_layers:
                h = torch.cat([h, inputs], dim=-1) / math.sqrt(2)
            h = lin(h)
            if i < len(self.layers) - 1:
                h = self.activation(h)
        return FieldOutput(sdf=h[..., 0], features=h[..., 1:])

    def bind(self, latent: torch.Tensor | None = None) -> BoundField:
        """The field ``points [B, N, 3] -> FieldOutput`` with the code ``latent``
        ``[B, latent_dim]`` bound (``None`` for an unconditioned network: any batch)."""
        if latent is not None:
            check_shape("latent", latent, ("B", self.latent_dim))
        return BoundField(
            lambda points: self(points, latent), None if latent is None else len(latent), "sdf"
        )
