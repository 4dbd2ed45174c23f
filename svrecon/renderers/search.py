"""Surface search along rays: sphere tracing, linear and linear-binary search.

Each search finds, without gradients, the distance ``t`` of the first surface crossing
per ray; :func:`surface_output` then evaluates the field there and attaches gradients of
the hit point by implicit differentiation (DVR, Niemeyer et al. 2020, Eq. 9):
for ``g(o + t d) = 0``, ``dt = -dg / (grad g . d)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from ..cameras.rays import RayBundle
from ..numerics import safe_normalize
from ._common import Field, call_field, check_finite_bounds, spatial_gradient, without_autocast
from .output import RenderOutput

__all__ = ["LinearBinarySearch", "LinearSearch", "SphereTracer", "SurfaceSearch", "surface_output"]


class SurfaceSearch(ABC):
    """Base class: ``search(field, rays)`` finds ``(t, hit)``; calling renders.

    ``level`` is the iso-value of the surface: ``None`` picks 0 for SDF fields and 0.5
    for occupancy fields. Inside means ``sdf < level`` or ``occupancy > level``.
    """

    def __init__(self, level: float | None = None) -> None:
        self.level = level

    def _outside(self, field: Field, points: torch.Tensor) -> torch.Tensor:
        return call_field(field, points).outside(self.level)

    @abstractmethod
    def search(self, field: Field, rays: RayBundle) -> tuple[torch.Tensor, torch.Tensor]:
        """Distances ``[B, R]`` and hit mask ``[B, R]`` (no gradients)."""

    def __call__(
        self,
        field: Field,
        rays: RayBundle,
        *,
        normals: bool = True,
        create_graph: bool = False,
    ) -> RenderOutput:
        """Render ``rays`` (finite ``near``/``far``) of ``field`` (points -> FieldOutput).

        Args:
            normals: compute unit outward normals from the field's spatial gradient.
            create_graph: keep the normals in the graph (for a normal or shading loss).

        Returns:
            A :class:`RenderOutput`; ``opacity`` is the hard mask as a float. Missed rays
            return the sample closest to the surface (smallest SDF, largest occupancy),
            with ``mask`` False.

        Under ``torch.autocast`` the search itself runs in the rays' precision (autocast
        off), so hits and distances are those of the full-precision field; the outputs
        at the surface (normals, colour, features) are evaluated under the autocast.
        """
        check_finite_bounds(rays, type(self).__name__)
        with torch.no_grad(), without_autocast(rays.origins):
            t, hit = self.search(field, rays)
        return surface_output(field, rays, t, hit, self.level, normals, create_graph)


def surface_output(
    field: Field,
    rays: RayBundle,
    t: torch.Tensor,
    hit: torch.Tensor,
    level: float | None = None,
    normals: bool = True,
    create_graph: bool = False,
) -> RenderOutput:
    """Evaluate ``field`` at ``rays.points_at(t)`` and differentiate the hits implicitly.

    ``t`` and ``hit`` are ``[B, R]``. For rays with ``hit``, the returned distance has the
    value ``t`` and the gradient ``-dg / (grad g . d)`` with respect to the field's
    parameters (and the rays, if they require grad); misses and grazing rays
    (``|grad g . d|`` below 1e-6 of ``|grad g|``) get no gradient through ``t``.

    With ``create_graph`` the distance is also exact to second order (for losses on
    normals that are differentiated twice): it applies twice the Newton map
    ``F(t) = t - (g(t) - g(t_0)) / (grad g . d)``, whose fixed point is ``t_0`` and whose
    derivative in ``t`` vanishes there, so that ``F(F(t_0))`` carries the first and second
    derivatives of the root. Without it one first-order step is used (cheaper).
    """
    t = t.detach()
    if not torch.is_grad_enabled():
        distance = t
        points = rays.points_at(t)
        out, _, grad = spatial_gradient(field, points, level, create_graph=False)
    else:
        offset = None

        def newton(t_in: torch.Tensor, second_order: bool) -> torch.Tensor:
            nonlocal offset
            _, g, grad = spatial_gradient(field, rays.points_at(t_in), level, second_order)
            slope = (grad * rays.directions).sum(-1)
            if offset is None:
                offset = g.detach()
            ok = hit & (slope.detach().abs() > 1e-6 * grad.detach().norm(dim=-1)) & (slope != 0)
            step = (g - offset) / torch.where(ok, slope, torch.ones_like(slope))
            return t_in - torch.where(ok, step, torch.zeros_like(step))

        distance = newton(newton(t, True), True) if create_graph else newton(t, False)
        points = rays.points_at(distance)
        out, _, grad = spatial_gradient(field, points, level, create_graph=normals and create_graph)
    return RenderOutput(
        distance=distance,
        depth=rays.distance_to_depth(distance),
        points=points,
        mask=hit,
        opacity=hit.to(points.dtype),
        rgb=out.rgb,
        normals=safe_normalize(grad) if normals else None,
        features=out.features,
        albedo=out.albedo,
        surface_value=out.value,
    )


class SphereTracer(SurfaceSearch):
    """Sphere tracing (Hart 1996) of an SDF: ``t <- t + step_scale * sdf(o + t d)``.

    A ray hits when ``|sdf| < tolerance`` (or it starts inside) before passing ``far`` or
    running ``max_steps`` steps. Steps are signed, so overshooting a non-exact SDF steps
    back; ``t`` stays within ``[near, far]``. Hits are then polished by ``newton_steps``
    Newton steps along the ray (each at most 0.01), which matter for grazing rays.
    Misses return the traced point with the smallest SDF. Needs an SDF (a 1-Lipschitz
    field); for occupancies use :class:`LinearBinarySearch`.
    """

    def __init__(
        self,
        max_steps: int = 256,
        tolerance: float = 1e-5,
        step_scale: float = 1.0,
        newton_steps: int = 2,
        level: float | None = None,
    ) -> None:
        super().__init__(level)
        if max_steps < 1 or tolerance <= 0 or not 0 < step_scale <= 1 or newton_steps < 0:
            raise ValueError(
                "SphereTracer: need max_steps >= 1, tolerance > 0, 0 < step_scale <= 1, "
                "newton_steps >= 0"
            )
        self.max_steps, self.tolerance, self.step_scale = max_steps, tolerance, step_scale
        self.newton_steps = newton_steps

    @property
    def _sdf_level(self) -> float:
        return 0.0 if self.level is None else self.level

    def search(self, field: Field, rays: RayBundle) -> tuple[torch.Tensor, torch.Tensor]:
        t = rays.near.clone()
        best_t, best_g = t.clone(), torch.full_like(t, float("inf"))
        t_prev, g_prev = t.clone(), torch.full_like(t, float("inf"))
        for _ in range(self.max_steps + 1):
            out = call_field(field, rays.points_at(t))
            if out.sdf is None:
                raise ValueError("SphereTracer: the field must return an sdf")
            g = out.sdf - self._sdf_level
            closer = g < best_g
            best_t, best_g = torch.where(closer, t, best_t), torch.where(closer, g, best_g)
            converged = (g.abs() < self.tolerance) | ((g < 0) & (t <= rays.near))
            done = converged | ((t >= rays.far) & (g > 0))
            if done.all() or _ == self.max_steps:
                break
            step = torch.where(done, torch.zeros_like(g), self.step_scale * g)
            t_prev, g_prev = torch.where(done, t_prev, t), torch.where(done, g_prev, g)
            t = torch.minimum(torch.maximum(t + step, rays.near), rays.far)
        hit = converged & (rays.far > rays.near)
        # Near grazing incidence the traced point is off by about |sdf| / cos(angle);
        # a few Newton steps along the ray (t -= sdf / (grad sdf . d)) remove that.
        for _ in range(self.newton_steps):
            _, g, grad = spatial_gradient(field, rays.points_at(t), self._sdf_level, False)
            slope = (grad * rays.directions).sum(-1)
            ok = hit & (slope < -1e-3 * grad.norm(dim=-1))
            step = -g.detach() / torch.where(ok, slope, torch.ones_like(slope))
            t = torch.where(ok, t + step.clamp(-0.01, 0.01), t).clamp(rays.near, rays.far)
        return torch.where(hit, t, best_t), hit


class LinearSearch(SurfaceSearch):
    """Linear search (MSU, Sec. 3.3): the first of ``num_samples`` evenly spaced samples
    in ``[near, far]`` that lies inside; misses return the sample closest to the surface.

    The defaults are DVR's (128 samples), as the MSU paper gives no constants.
    """

    def __init__(self, num_samples: int = 128, level: float | None = None) -> None:
        super().__init__(level)
        if num_samples < 2:
            raise ValueError(f"num_samples: expected at least 2, got {num_samples}")
        self.num_samples = num_samples

    def _samples(self, field: Field, rays: RayBundle):
        steps = torch.linspace(
            0, 1, self.num_samples, dtype=rays.near.dtype, device=rays.near.device
        )
        ts = rays.near[..., None] + (rays.far - rays.near)[..., None] * steps  # [B, R, S]
        g = self._outside(field, rays.points_at(ts))
        inside = g < 0
        hit = inside.any(-1) & (rays.far > rays.near)
        first = inside.to(torch.uint8).argmax(-1)  # first True (0 if none)
        closest = g.argmin(-1)
        return ts, hit, first, closest

    def search(self, field: Field, rays: RayBundle) -> tuple[torch.Tensor, torch.Tensor]:
        ts, hit, first, closest = self._samples(field, rays)
        index = torch.where(hit, first, closest)
        return ts.gather(-1, index[..., None])[..., 0], hit


class LinearBinarySearch(LinearSearch):
    """Linear search, then ``num_refine`` bisection steps between the last exterior and
    the first interior sample (MSU, Sec. 3.3); returns the final bracket's midpoint.

    Rays whose first sample is already inside return ``near``. Defaults follow DVR
    (128 samples, 8 refinements).
    """

    def __init__(
        self, num_samples: int = 128, num_refine: int = 8, level: float | None = None
    ) -> None:
        super().__init__(num_samples, level)
        if num_refine < 1:
            raise ValueError(f"num_refine: expected at least 1, got {num_refine}")
        self.num_refine = num_refine

    def search(self, field: Field, rays: RayBundle) -> tuple[torch.Tensor, torch.Tensor]:
        ts, hit, first, closest = self._samples(field, rays)
        hi = ts.gather(-1, first[..., None])[..., 0]
        lo = ts.gather(-1, (first - 1).clamp_min(0)[..., None])[..., 0]
        for _ in range(self.num_refine):
            mid = 0.5 * (lo + hi)
            inside = self._outside(field, rays.points_at(mid)) < 0
            hi, lo = torch.where(inside, mid, hi), torch.where(inside, lo, mid)
        refined = torch.where(first > 0, 0.5 * (lo + hi), hi)
        return torch.where(hit, refined, ts.gather(-1, closest[..., None])[..., 0]), hit
