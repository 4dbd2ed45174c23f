"""Coloured voxel grids of the procedural shapes: the targets of MSU's decoder
pretraining (Eq. 8: occupancy, part albedo; coarse to fine, 16 -> 32 -> 64)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .shapes import PartShape

__all__ = ["VOXEL_KEYS", "ColouredVoxels", "WithColouredVoxels", "coloured_voxels", "voxel_centres"]

#: The keys :class:`WithColouredVoxels` adds to an item.
VOXEL_KEYS = ("voxels", "voxel_points", "voxel_occupancy", "voxel_albedo")


def voxel_centres(
    resolution: int, bound: float = 0.6, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Centres ``[R, R, R, 3]`` of a ``resolution^3`` grid over ``[-bound, bound]^3``.

    Voxel ``[i, j, k]`` is centred at ``(x_i, y_j, z_k)`` with ``x_i = -bound + (i +
    0.5) * 2 bound / R``: the first index is x, the second y (up), the third z (the
    grid convention of ``docs/conventions.md``).
    """
    if resolution < 1:
        raise ValueError(f"resolution: expected >= 1, got {resolution}")
    if not bound > 0:
        raise ValueError(f"bound: expected > 0, got {bound}")
    step = 2 * bound / resolution
    axis = -bound + (torch.arange(resolution, dtype=dtype) + 0.5) * step
    return torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1)


@dataclass
class ColouredVoxels:
    """A coloured voxel grid.

    Attributes:
        occupancy: ``[R, R, R]`` float, 1 inside the shape (SDF < 0 at the centre).
        albedo: ``[R, R, R, 3]`` in ``[0, 1]``, the colour of the part at each centre
            (defined everywhere; MSU supervises it inside the shape only).
        part: ``[R, R, R]`` int64, the index of the nearest (or containing) part.
        bound: the half side of the cube the grid covers.
    """

    occupancy: torch.Tensor
    albedo: torch.Tensor
    part: torch.Tensor
    bound: float

    @property
    def resolution(self) -> int:
        return self.occupancy.shape[0]

    def encoder_input(self) -> torch.Tensor:
        """``[4, R, R, R]``: occupancy and the albedo of the occupied voxels (0 in empty
        ones), the coloured voxel that MSU's 3D encoder ``E'`` reads."""
        occupied = self.occupancy[None]
        return torch.cat([occupied, self.albedo.permute(3, 0, 1, 2) * occupied])

    def point_samples(
        self,
        num_points: int | None = None,
        inside_fraction: float = 0.5,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Point-value pairs ``(points [K, 3], occupancy [K], albedo [K, 3])`` at voxel
        centres (Eq. 8's ``x_j, o_j, c_j``).

        ``num_points=None``: every voxel, in ``[i, j, k]`` order. Otherwise ``K``
        distinct voxels drawn without replacement, ``round(inside_fraction * K)`` of
        them occupied where the grid has that many (the rest empty), so thin shapes
        are not drowned in empty space.
        """
        r = self.resolution
        centres = voxel_centres(r, self.bound).reshape(-1, 3)
        occ, alb = self.occupancy.reshape(-1), self.albedo.reshape(-1, 3)
        if num_points is None:
            return centres, occ, alb
        if not 0 < num_points <= r**3:
            raise ValueError(f"num_points: expected 1 to {r**3}, got {num_points}")
        if not 0 <= inside_fraction <= 1:
            raise ValueError(f"inside_fraction: expected in [0, 1], got {inside_fraction}")
        inside = torch.nonzero(occ > 0).flatten()
        outside = torch.nonzero(occ <= 0).flatten()
        n_in = min(round(inside_fraction * num_points), len(inside))
        n_in = max(n_in, num_points - len(outside))
        pick_in = inside[torch.randperm(len(inside), generator=generator)[:n_in]]
        pick_out = outside[torch.randperm(len(outside), generator=generator)[: num_points - n_in]]
        index = torch.cat([pick_in, pick_out])
        return centres[index], occ[index], alb[index]


def coloured_voxels(
    shape: PartShape, resolution: int, bound: float = 0.6, chunk: int = 65536
) -> ColouredVoxels:
    """Sample ``shape`` at the centres of a ``resolution^3`` grid over
    ``[-bound, bound]^3`` (:func:`voxel_centres`): occupancy by the sign of its exact
    SDF, albedo and part index of the part there. Float32, evaluated in chunks of
    ``chunk`` points. For the coarse-to-fine schedule call it once per resolution:
    each grid samples the shape itself, not a pooled finer grid.
    """
    centres = voxel_centres(resolution, bound).reshape(-1, 3)
    sdf, part = [], []
    for start in range(0, len(centres), chunk):
        parts = shape.part_sdfs(centres[start : start + chunk])
        value, index = parts.min(-1)
        sdf.append(value)
        part.append(index)
    sdf, part = torch.cat(sdf), torch.cat(part)
    table = torch.stack(
        [torch.as_tensor(p.albedo, dtype=torch.float32) for p in shape.parts]
    ).clamp(0, 1)
    r = resolution
    return ColouredVoxels(
        occupancy=(sdf < 0).float().view(r, r, r),
        albedo=table[part].view(r, r, r, 3),
        part=part.view(r, r, r),
        bound=bound,
    )


class WithColouredVoxels(torch.utils.data.Dataset):
    """A dataset whose items also carry their shape's coloured voxels: MSU's stage 1
    (decoder pretraining, Eq. 8) and the targets of stage 2 (the pretrained codes of
    the voxels).

    Added keys (:data:`VOXEL_KEYS`): ``voxels`` ``[4, Ri, Ri, Ri]`` (the encoder's
    input, :meth:`ColouredVoxels.encoder_input`, at ``input_resolution``) and
    ``voxel_points`` ``[K, 3]``, ``voxel_occupancy`` ``[K]``, ``voxel_albedo`` ``[K, 3]``
    (point-value pairs at ``resolution``, :meth:`ColouredVoxels.point_samples`; fixed
    per item for a ``seed``). For the coarse-to-fine schedule, wrap the dataset once
    per resolution.

    Args:
        dataset: items with a ``part_shape(i)`` method giving the analytic shape (as
            :class:`~svrecon.data.ProceduralDataset`).
        resolution: the grid the point-value pairs are drawn from (16, 32, 64).
        num_points: ``K`` (``None``: every voxel).
        input_resolution: the encoder's grid (default ``resolution``).
        inside_fraction: the share of occupied voxels among the ``K``.
        bound: the cube's half side.
    """

    def __init__(
        self,
        dataset,
        resolution: int,
        num_points: int | None = 4096,
        input_resolution: int | None = None,
        inside_fraction: float = 0.5,
        bound: float = 0.6,
        seed: int = 0,
    ) -> None:
        if not callable(getattr(dataset, "part_shape", None)):
            raise TypeError(
                f"dataset: expected items with a part_shape(i) method, got {type(dataset).__name__}"
            )
        self.dataset, self.resolution, self.num_points = dataset, resolution, num_points
        self.input_resolution = input_resolution or resolution
        self.inside_fraction, self.bound, self.seed = inside_fraction, bound, seed
        self._cache: dict[int, tuple] = {}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name):  # categories, evaluation_indices, ... of the dataset
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def voxels(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The added values of item ``i`` (computed once, then kept in memory)."""
        if i not in self._cache:
            shape = self.dataset.part_shape(i)
            grid = coloured_voxels(shape, self.resolution, self.bound)
            coarse = grid
            if self.input_resolution != self.resolution:
                coarse = coloured_voxels(shape, self.input_resolution, self.bound)
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
            samples = grid.point_samples(self.num_points, self.inside_fraction, g)
            self._cache[i] = (coarse.encoder_input(), *samples)
        return self._cache[i]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = dict(self.dataset[i])
        item.update(zip(VOXEL_KEYS, self.voxels(i), strict=True))
        return item
