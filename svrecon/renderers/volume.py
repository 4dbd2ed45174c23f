"""VolSDF-style volume rendering of an SDF (Yariv et al. 2021; ShapeClipper, Sec. 3.1)."""

from __future__ import annotations

import torch
from torch import nn

from ..cameras.rays import RayBundle
from ..numerics import safe_normalize
from ._common import Field, call_field, check_finite_bounds, spatial_gradient
from .output import RenderOutput

__all__ = ["LaplaceDensity", "VolumeRenderer"]


class LaplaceDensity(nn.Module):
    """VolSDF density ``sigma(s) = Psi_beta(-s) / beta`` (VolSDF, Eq. 2-3).

    ``Psi_beta`` is the CDF of a zero-mean Laplace distribution with scale ``beta``:
    ``sigma = 0.5 exp(-s / beta) / beta`` outside (``s >= 0``) and
    ``(1 - 0.5 exp(s / beta)) / beta`` inside. ``beta = |beta_param| + beta_min``;
    the VolSDF defaults are ``beta_init = 0.1`` and ``beta_min = 1e-4``.
    """

    def __init__(self, beta_init: float = 0.1, beta_min: float = 1e-4, learnable: bool = True):
        super().__init__()
        if beta_init <= 0 or beta_min < 0:
            raise ValueError("LaplaceDensity: need beta_init > 0 and beta_min >= 0")
        self.beta_min = beta_min
        self.beta_param = nn.Parameter(torch.tensor(float(beta_init)), requires_grad=learnable)

    @property
    def beta(self) -> torch.Tensor:
        return self.beta_param.abs() + self.beta_min

    def forward(self, sdf: torch.Tensor) -> torch.Tensor:
        """Density of SDF values ``[...]`` -> ``[...]`` (integer values are promoted to the
        default float dtype, never computed in integer arithmetic)."""
        if not sdf.is_floating_point():
            sdf = sdf.to(torch.get_default_dtype())
        beta = self.beta.to(sdf.dtype)
        # Both branches are computed; clamping keeps the unused one from overflowing.
        outside = 0.5 * torch.exp(-sdf.clamp_min(0) / beta)
        inside = 1 - 0.5 * torch.exp(sdf.clamp_max(0) / beta)
        return torch.where(sdf >= 0, outside, inside) / beta


class VolumeRenderer(nn.Module):
    """Volume rendering of an SDF field through a :class:`LaplaceDensity`.

    ``num_samples`` distances per ray: evenly spaced from ``near`` to ``far`` (both
    included), or with ``stratified=True`` one uniform sample in each of ``num_samples``
    equal bins. ``delta_i = t_{i+1} - t_i``; the last interval is ``last_delta``
    (0 as ShapeClipper, 1e10 as VolSDF, which makes every ray opaque).
    ``alpha_i = 1 - exp(-delta_i sigma_i)``, ``T_i = exp(-sum_{j<i} delta_j sigma_j)``,
    ``w_i = alpha_i T_i`` (VolSDF, Eq. 9-11). Rays with ``far <= near`` render empty.

    Defaults are ShapeClipper's: 64 samples, last interval 0.
    """

    def __init__(
        self,
        density: LaplaceDensity | None = None,
        num_samples: int = 64,
        stratified: bool = False,
        last_delta: float = 0.0,
        background: torch.Tensor | float | None = None,
        renormalize_normals: bool = False,
    ) -> None:
        super().__init__()
        self.renormalize_normals = renormalize_normals
        if num_samples < 2:
            raise ValueError(f"num_samples: expected at least 2, got {num_samples}")
        self.density = LaplaceDensity() if density is None else density
        self.num_samples, self.stratified, self.last_delta = num_samples, stratified, last_delta
        self.background = background

    def sample_distances(self, rays: RayBundle, stratified: bool, generator=None) -> torch.Tensor:
        """Sample distances ``[B, R, S]`` between ``near`` and ``far``."""
        s, near, far = self.num_samples, rays.near[..., None], rays.far[..., None]
        if stratified:
            u = torch.rand(*rays.near.shape, s, generator=generator, dtype=near.dtype)
            u = (torch.arange(s, dtype=near.dtype) + u).to(near.device) / s
        else:
            u = torch.linspace(0, 1, s, dtype=near.dtype, device=near.device)
        return near + (far - near) * u

    def forward(
        self,
        field: Field,
        rays: RayBundle,
        *,
        normals: bool = True,
        create_graph: bool = False,
        stratified: bool | None = None,
        generator: torch.Generator | None = None,
    ) -> RenderOutput:
        """Render ``rays`` (finite ``near``/``far`` ``[B, R]``) of an SDF ``field``.

        Args:
            normals: composite unit SDF normals ``sum_i w_i n_i`` (ShapeClipper's rendered
                normal as its paper writes it; ``n_i`` is the normalised SDF gradient,
                i.e. along ``-grad sigma``). With the module's ``renormalize_normals``
                the composite is normalised to unit length afterwards, as ShapeClipper's
                code does (zero where it is zero).
            create_graph: keep the normals in the graph (for ShapeClipper's normal loss).
            stratified: override the module's ``stratified`` (e.g. ``self.training``).
            generator: random generator for stratified samples (drawn on the CPU).

        Returns:
            :class:`RenderOutput` with ``rgb`` (``sum w c``, over ``background`` if set),
            ``opacity = sum w``, ``mask = opacity > 0.5``, ``distance`` the expected
            distance ``sum w t / sum w`` (``far`` where ``sum w`` is 0), ``weights``,
            ``samples`` and ``marched_values`` (the SDF at the samples).
        """
        check_finite_bounds(rays, "VolumeRenderer")
        stratified = self.stratified if stratified is None else stratified
        t = self.sample_distances(rays, stratified, generator)
        points = rays.points_at(t)  # [B, R, S, 3]
        b, r, s = t.shape
        if normals:
            out, _, grad = spatial_gradient(
                field, points.reshape(b, r * s, 3), 0.0, create_graph=create_graph
            )
            sample_normals = safe_normalize(grad).reshape(b, r, s, 3)
        else:
            out = call_field(field, points.reshape(b, r * s, 3))
        if out.sdf is None:
            raise ValueError("VolumeRenderer: the field must return an sdf")
        sdf = out.sdf.reshape(b, r, s)
        sigma = self.density(sdf)
        last = torch.where(rays.far > rays.near, self.last_delta, 0.0).to(t.dtype)
        delta = torch.cat([t[..., 1:] - t[..., :-1], last[..., None]], dim=-1)
        tau = delta * sigma
        alpha = -torch.expm1(-tau)
        transmittance = torch.exp(-(torch.cumsum(tau, dim=-1) - tau))
        weights = alpha * transmittance
        opacity = weights.sum(-1)

        def composite(values):
            if values is None:
                return None
            return (weights[..., None] * values.reshape(b, r, s, values.shape[-1])).sum(-2)

        rgb = composite(out.rgb)
        if rgb is not None and self.background is not None:
            bg = torch.as_tensor(self.background, dtype=rgb.dtype, device=rgb.device)
            rgb = rgb + (1 - opacity[..., None]) * bg
        seen = opacity > 1e-8
        distance = torch.where(
            seen, (weights * t).sum(-1) / torch.where(seen, opacity, 1.0), rays.far
        )
        return RenderOutput(
            distance=distance,
            depth=rays.distance_to_depth(distance),
            points=rays.points_at(distance),
            mask=opacity > 0.5,
            opacity=opacity,
            rgb=rgb,
            normals=self._composite_normals(weights, sample_normals) if normals else None,
            features=composite(out.features),
            albedo=composite(out.albedo),
            samples=t,
            weights=weights,
            marched_values=sdf,
        )

    def _composite_normals(self, weights: torch.Tensor, sample_normals: torch.Tensor):
        composite = (weights[..., None] * sample_normals).sum(-2)
        return safe_normalize(composite) if self.renormalize_normals else composite
