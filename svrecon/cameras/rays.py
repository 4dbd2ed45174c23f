"""Ray bundles and pixel grids (conventions in docs/conventions.md)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from ..checks import batch_index, check_shape

__all__ = ["RayBundle", "pixel_grid"]


def pixel_grid(
    height: int,
    width: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Pixel centres ``[height * width, 2]`` as ``(u, v) = (column + 0.5, row + 0.5)``.

    Row-major order: entry ``row * width + column``, so ``.view(height, width, 2)``
    gives the image layout.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"height, width: expected positive sizes, got ({height}, {width})")
    v, u = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype) + 0.5,
        torch.arange(width, device=device, dtype=dtype) + 0.5,
        indexing="ij",
    )
    return torch.stack([u, v], dim=-1).reshape(-1, 2)


@dataclass
class RayBundle:
    """A batch of rays ``x(t) = origins + t * directions``.

    Attributes (``B`` cameras, ``R`` rays each):
        origins: ``[B, R, 3]`` world-space ray origins.
        directions: ``[B, R, 3]`` unit world-space directions; ``t`` is a distance.
        pixels: ``[B, R, 2]`` the ``(u, v)`` pixel coordinates the rays pass through.
        near, far: ``[B, R]`` distance bounds along each ray (``far`` may be ``inf``
            until a renderer clips it, e.g. with :meth:`intersect_sphere`).
        depth_per_distance: ``[B, R]`` the factor ``z = t * depth_per_distance``
            from distance along the ray to camera z-depth (the cosine between the
            ray and the optical axis; 1 for orthographic cameras).

    Every tensor but ``pixels`` is float32 or float64: float16, bfloat16 and integer
    rays are refused by name (``docs/reliability.md``).
    """

    origins: torch.Tensor
    directions: torch.Tensor
    pixels: torch.Tensor
    near: torch.Tensor
    far: torch.Tensor
    depth_per_distance: torch.Tensor

    def __post_init__(self) -> None:
        dims = check_shape("origins", self.origins, ("B", "R", 3))
        check_shape("directions", self.directions, ("B", "R", 3), dims)
        check_shape("pixels", self.pixels, ("B", "R", 2), dims)
        check_shape("near", self.near, ("B", "R"), dims)
        check_shape("far", self.far, ("B", "R"), dims)
        check_shape("depth_per_distance", self.depth_per_distance, ("B", "R"), dims)
        for name in ("origins", "directions", "near", "far", "depth_per_distance"):
            dtype = getattr(self, name).dtype
            if dtype not in (torch.float32, torch.float64):
                raise ValueError(
                    f"{name}: expected float32 or float64 rays, got {dtype} (positions along "
                    "a ray need float32: at t = 2.7 float16 resolves only 2e-3; keep the rays "
                    "in float32 and run the field under torch.autocast instead)"
                )

    @property
    def batch_size(self) -> int:
        return self.origins.shape[0]

    @property
    def num_rays(self) -> int:
        return self.origins.shape[1]

    def _map(self, fn) -> RayBundle:
        return RayBundle(**{f.name: fn(getattr(self, f.name)) for f in fields(self)})

    def to(self, *args, **kwargs) -> RayBundle:
        """Move or cast every tensor, as ``torch.Tensor.to``."""
        return self._map(lambda t: t.to(*args, **kwargs))

    def __getitem__(self, index) -> RayBundle:
        """Index the batch dimension; an integer keeps it (batch of one)."""
        index = batch_index(index, self.batch_size)
        return self._map(lambda t: t[index])

    def select(self, ray_index: torch.Tensor) -> RayBundle:
        """Rays chosen per camera by ``ray_index`` ``[B, K]`` (long) -> ``K`` rays each."""
        check_shape("ray_index", ray_index, (self.batch_size, "K"))

        def take(t: torch.Tensor) -> torch.Tensor:
            idx = ray_index.reshape(*ray_index.shape, *([1] * (t.dim() - 2)))
            return torch.gather(t, 1, idx.expand(*ray_index.shape, *t.shape[2:]))

        return self._map(take)

    def points_at(self, t: torch.Tensor) -> torch.Tensor:
        """Points at distances ``t``.

        Shapes: ``t`` ``[B, R]`` -> ``[B, R, 3]``; ``t`` ``[B, R, S]`` -> ``[B, R, S, 3]``.
        """
        if t.dim() == 2:
            check_shape("t", t, (self.batch_size, self.num_rays))
            return self.origins + t[..., None] * self.directions
        check_shape("t", t, (self.batch_size, self.num_rays, "S"))
        return self.origins[:, :, None] + t[..., None] * self.directions[:, :, None]

    def distance_to_depth(self, t: torch.Tensor) -> torch.Tensor:
        """Convert distances along the rays ``[B, R, ...]`` to camera z-depths."""
        return t * self._factor(t, "t")

    def depth_to_distance(self, z: torch.Tensor) -> torch.Tensor:
        """Convert camera z-depths ``[B, R, ...]`` to distances along the rays."""
        return z / self._factor(z, "z")

    def _factor(self, x: torch.Tensor, name: str) -> torch.Tensor:
        if x.shape[:2] != self.depth_per_distance.shape:
            raise ValueError(
                f"{name}: expected shape [B={self.batch_size}, R={self.num_rays}, ...], "
                f"got {list(x.shape)}"
            )
        return self.depth_per_distance.reshape(*self.depth_per_distance.shape, *[1] * (x.dim() - 2))

    def intersect_sphere(
        self, radius: float, center: torch.Tensor | None = None
    ) -> tuple[RayBundle, torch.Tensor]:
        """Clip ``near``/``far`` to a sphere; return the clipped bundle and a hit mask ``[B, R]``.

        ``center`` is ``[B, 3]`` (default: the origin). Rays that miss the sphere, or
        whose intersection lies entirely behind ``near`` or beyond ``far``, get
        ``near = far`` (an empty interval at the closest approach) and ``hit = False``.
        ``radius`` is a positive number; the bundle's directions are unit (as every
        camera makes them).
        """
        if isinstance(radius, torch.Tensor):
            radius = float(radius)
        if not (isinstance(radius, (int, float)) and radius > 0 and radius != float("inf")):
            raise ValueError(f"radius: expected a finite number > 0, got {radius!r}")
        if center is None:
            center = torch.zeros(
                self.batch_size, 3, dtype=self.origins.dtype, device=self.origins.device
            )
        check_shape("center", center, (self.batch_size, 3))
        oc = self.origins - center[:, None]
        b = (oc * self.directions).sum(-1)  # directions are unit
        c = (oc * oc).sum(-1) - radius**2
        disc = b * b - c
        root = torch.sqrt(disc.clamp_min(0))
        t0 = torch.maximum(-b - root, self.near)
        t1 = torch.minimum(-b + root, self.far)
        hit = (disc > 0) & (t1 > t0)
        closest = (-b).clamp(self.near, self.far)
        near = torch.where(hit, t0, closest)
        far = torch.where(hit, t1, closest)
        clipped = RayBundle(
            self.origins, self.directions, self.pixels, near, far, self.depth_per_distance
        )
        return clipped, hit
