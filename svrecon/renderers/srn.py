"""The SRN learned ray marcher as used by SDF-SRN and Cat3D (Sitzmann et al. 2019;
Lin et al. 2020, Sec. 3.3)."""

from __future__ import annotations

import torch
from torch import nn

from ..cameras.rays import RayBundle
from ..numerics import safe_normalize
from ._common import Field, call_field, spatial_gradient
from .output import RenderOutput

__all__ = ["SRNRayMarcher"]


class SRNRayMarcher(nn.Module):
    """An LSTM that marches each ray toward the SDF's zero level set, then bisection.

    At each of ``num_steps`` steps the field is evaluated at the current point, its
    feature vector feeds an ``LSTMCell(feature_dim, hidden_dim)``, and the **z-depth**
    advances by ``|Linear(hidden_dim, 1)(h)|``. The SDF at the final point is kept too
    (``num_steps + 1`` values). Then ``num_bisection`` bisection steps between the last
    two marched points keep the half whose ends change sign; the midpoint is the
    surface point, where colour is evaluated.

    SDF-SRN defaults: hidden 32, 10 steps, 10 bisections, initial depth 2.0 (ShapeNet,
    perspective; 1.2 on Pascal3D, orthographic), forget-gate bias 1 in both LSTM biases
    (effectively 2), soft silhouette ``sigmoid(-alpha * min marched SDF)`` with
    ``alpha = 30`` (Cat3D).
    """

    def __init__(
        self,
        feature_dim: int,
        hidden_dim: int = 32,
        num_steps: int = 10,
        num_bisection: int = 10,
        initial_depth: float = 2.0,
        alpha: float = 30.0,
    ) -> None:
        super().__init__()
        if num_steps < 1 or num_bisection < 0:
            raise ValueError("SRNRayMarcher: need num_steps >= 1 and num_bisection >= 0")
        self.lstm = nn.LSTMCell(feature_dim, hidden_dim)
        self.step = nn.Linear(hidden_dim, 1)
        with torch.no_grad():
            for bias in (self.lstm.bias_ih, self.lstm.bias_hh):
                bias[hidden_dim : 2 * hidden_dim].fill_(1.0)  # forget gate (order i, f, g, o)
        self.num_steps, self.num_bisection = num_steps, num_bisection
        self.initial_depth, self.alpha = initial_depth, alpha

    def forward(
        self,
        field: Field,
        rays: RayBundle,
        *,
        initial_depth: float | torch.Tensor | None = None,
        max_depth: float | torch.Tensor | None = None,
        normals: bool = False,
        create_graph: bool = False,
    ) -> RenderOutput:
        """March ``rays`` through an SDF ``field`` that returns ``features`` ``[B, N, F]``.

        Args:
            initial_depth: starting z-depth, a number or ``[B, R]`` (default: the module's).
            max_depth: optional z-depth cap, a number or ``[B, R]`` (e.g. where the rays
                leave a bounding sphere). Every marched depth is clamped to it, so the
                marcher cannot end a ray in space that no loss constrains. A capped
                step passes no gradient to the LSTM, so a marcher that learns to
                overshoot stays there; ``SDFSRN`` trains without the cap and pretrains
                the marcher instead (``benchmarks/RESULTS.md``). The paper's marcher
                has no cap (``None``).
            normals: also return unit SDF normals at the surface point.
            create_graph: keep the normals in the graph.

        Returns:
            :class:`RenderOutput` with ``points``/``depth``/``rgb`` at the bisection
            midpoint, ``mask`` = SDF <= 0 at the last marched point (as SDF-SRN),
            ``opacity`` the soft silhouette, ``samples`` the ``num_steps + 1`` marched
            distances and ``marched_values`` their SDF values ``[B, R, num_steps + 1]``.
        """
        b, r = rays.near.shape
        z0 = self.initial_depth if initial_depth is None else initial_depth
        z = _per_ray("initial_depth", z0, rays)
        cap = None if max_depth is None else _per_ray("max_depth", max_depth, rays)
        if cap is not None:
            z = torch.minimum(z, cap)

        def sdf_at(depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
            out = call_field(field, rays.points_at(rays.depth_to_distance(depth)))
            if out.sdf is None:
                raise ValueError("SRNRayMarcher: the field must return an sdf")
            return out.sdf, out.features

        depths, values, state = [], [], None
        for _ in range(self.num_steps):
            sdf, features = sdf_at(z)
            if features is None:
                raise ValueError("SRNRayMarcher: the field must return features")
            depths.append(z)
            values.append(sdf)
            flat = features.reshape(b * r, features.shape[-1]).to(self.step.weight.dtype)
            state = self.lstm(flat, state)
            z = z + self.step(state[0]).reshape(b, r).abs().to(z.dtype)
            if cap is not None:
                z = torch.minimum(z, cap)
        sdf_last, _ = sdf_at(z)
        depths.append(z)
        values.append(sdf_last)
        marched = torch.stack(values, dim=-1)

        # Bisection: the side masks carry no gradient; the midpoint stays differentiable
        # in the two marched depths, as in the SDF-SRN code.
        lo, hi, y_lo = depths[-2], depths[-1], values[-2].detach()
        for _ in range(self.num_bisection):
            mid = 0.5 * (lo + hi)
            with torch.no_grad():
                y_mid, _ = sdf_at(mid)
            same_as_lo = (y_lo < 0) ^ (y_mid > 0)
            lo = torch.where(same_as_lo, mid, lo)
            hi = torch.where(same_as_lo, hi, mid)
            y_lo = torch.where(same_as_lo, y_mid, y_lo)
        depth = 0.5 * (lo + hi)
        distance = rays.depth_to_distance(depth)
        points = rays.points_at(distance)
        if normals:
            out, _, grad = spatial_gradient(field, points, 0.0, create_graph=create_graph)
            surface_normals = safe_normalize(grad)
        else:
            out, surface_normals = call_field(field, points), None
        return RenderOutput(
            distance=distance,
            depth=depth,
            points=points,
            mask=sdf_last <= 0,
            opacity=torch.sigmoid(-self.alpha * marched.min(-1).values),
            rgb=out.rgb,
            normals=surface_normals,
            features=out.features,
            albedo=out.albedo,
            surface_value=out.sdf,
            samples=rays.depth_to_distance(torch.stack(depths, dim=-1)),
            marched_values=marched,
        )


def _per_ray(name: str, value: float | torch.Tensor, rays: RayBundle) -> torch.Tensor:
    """A number or a ``[B, R]`` tensor as a ``[B, R]`` depth tensor on the rays' device."""
    b, r = rays.near.shape
    z = torch.as_tensor(value, dtype=rays.origins.dtype, device=rays.origins.device)
    z = z.expand(b, r) if z.dim() == 0 else z
    if z.shape != (b, r):
        raise ValueError(f"{name}: expected a number or shape [{b}, {r}], got {list(z.shape)}")
    return z
