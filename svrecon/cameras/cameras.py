"""Batched camera models (conventions in docs/conventions.md).

Every camera holds a batch of ``B`` cameras and maps between world points
``[B, N, 3]`` and pixels ``[B, N, 2]`` (``(u, v)``, pixel centres at ``+0.5``):

* ``project(points) -> [B, N, 2]``
* ``unproject(pixels, depth) -> [B, N, 3]`` with ``depth`` ``[B, N]`` the camera
  z-depth (for :class:`ProjectionMatrixCamera`, the projective depth ``w``)
* ``rays(height, width) -> RayBundle`` with ``height * width`` rays in row-major order
* ``rays_at(pixels) -> RayBundle`` for chosen pixels ``[B, R, 2]``
* ``.to(device)``, ``len(camera)`` and indexing of the batch dimension.

Poses are world-to-camera ``[R | t]``: ``x_cam = R @ x_world + t`` in the OpenCV frame
(x right, y down, z forward).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch

from ..checks import as_float, batch_index, check_finite, check_rotation, check_shape, safe_eps
from .rays import RayBundle, pixel_grid

__all__ = [
    "Camera",
    "OrthographicCamera",
    "PerspectiveCamera",
    "ProjectionMatrixCamera",
    "WeakPerspectiveCamera",
    "well_conditioned_projection",
]


def _z_nonzero(z: torch.Tensor) -> torch.Tensor:
    """Keep |z| >= eps, preserving its sign, so a projection never divides by zero."""
    eps = safe_eps(z.dtype)
    return torch.where(z >= 0, z.clamp_min(eps), z.clamp_max(-eps))


def _camera_dtype(name: str, value: torch.Tensor) -> torch.Tensor:
    """Integer camera tensors promoted to the default float dtype; float16 and bfloat16
    refused by name (poses are checked and inverted in float32 at least, and rays need
    float32, docs/reliability.md)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    value = as_float(name, value)
    if value.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"{name}: expected float32 or float64, got {value.dtype}")
    return value


def _pair(name: str, value, batch: int, like: torch.Tensor) -> torch.Tensor:
    """A per-camera pair ``[B, 2]`` from a number, ``[B]`` or ``[B, 2]``."""
    value = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if value.dim() == 0:
        value = value.expand(batch)
    if value.dim() == 1:
        check_shape(name, value, (batch,))
        value = torch.stack([value, value], dim=-1)
    check_shape(name, value, (batch, 2))
    return value


class Camera(ABC):
    """Base class: batch handling shared by all camera models."""

    _fields: ClassVar[tuple[str, ...]] = ()

    def _map(self, fn) -> Camera:
        new = object.__new__(type(self))
        for name in self._fields:
            setattr(new, name, fn(getattr(self, name)))
        return new

    def to(self, *args, **kwargs) -> Camera:
        """Move or cast every parameter tensor, as ``torch.Tensor.to``."""
        return self._map(lambda t: t.to(*args, **kwargs))

    def __getitem__(self, index) -> Camera:
        """Index the batch; an integer keeps the batch dimension (a batch of one)."""
        index = batch_index(index, len(self))
        return self._map(lambda t: t[index])

    def __len__(self) -> int:
        return getattr(self, self._fields[0]).shape[0]

    @property
    def batch_size(self) -> int:
        return len(self)

    @property
    def device(self) -> torch.device:
        return getattr(self, self._fields[0]).device

    @property
    def dtype(self) -> torch.dtype:
        return getattr(self, self._fields[0]).dtype

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(batch_size={len(self)}, dtype={self.dtype}, device={self.device})"

    # -- interface -----------------------------------------------------------------
    @abstractmethod
    def project(self, points: torch.Tensor) -> torch.Tensor:
        """World points ``[B, N, 3]`` to pixels ``[B, N, 2]``."""

    @abstractmethod
    def unproject(self, pixels: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """Pixels ``[B, N, 2]`` at depths ``[B, N]`` to world points ``[B, N, 3]``."""

    @abstractmethod
    def _ray_parts(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Origins ``[B, R, 3]`` and directions scaled to advance depth by one unit."""

    def rays_at(
        self,
        pixels: torch.Tensor,
        near: float | torch.Tensor = 0.0,
        far: float | torch.Tensor = float("inf"),
    ) -> RayBundle:
        """Rays through ``pixels`` ``[B, R, 2]``; ``near``/``far`` are numbers or ``[B, R]``."""
        dims = check_shape("pixels", pixels, (len(self), "R", 2))
        origins, steps = self._ray_parts(pixels)
        # ``steps`` advance z-depth (or projective depth) by exactly one unit, so the
        # cosine between a unit direction and the optical axis is 1 / |step|.
        length = steps.norm(dim=-1)
        directions = steps / length[..., None]
        shape = (len(self), dims["R"])
        near_t, far_t = (
            self._bounds(name, value, shape, pixels)
            for name, value in (("near", near), ("far", far))
        )
        return RayBundle(origins, directions, pixels, near_t, far_t, 1.0 / length)

    @staticmethod
    def _bounds(name: str, value, shape: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
        value = torch.as_tensor(value, dtype=like.dtype, device=like.device)
        if value.dim() != 0:
            check_shape(name, value, shape)
        return value.expand(shape)

    def rays(
        self,
        height: int,
        width: int,
        near: float | torch.Tensor = 0.0,
        far: float | torch.Tensor = float("inf"),
    ) -> RayBundle:
        """Rays through every pixel centre of a ``height x width`` image (row-major)."""
        grid = pixel_grid(height, width, device=self.device, dtype=self.dtype)
        return self.rays_at(grid.expand(len(self), -1, -1), near, far)


class _PosedCamera(Camera):
    """A camera with an explicit world-to-camera rotation ``R`` and translation ``t``."""

    R: torch.Tensor
    t: torch.Tensor

    def _set_pose(self, pose: torch.Tensor) -> int:
        pose = _camera_dtype("pose", pose)
        dims = check_shape("pose", pose, ("B", 3, 4))
        check_finite("pose", pose)
        check_rotation("pose", pose[..., :3])
        self.R = pose[..., :3]
        self.t = pose[..., 3]
        return dims["B"]

    @property
    def pose(self) -> torch.Tensor:
        """World-to-camera ``[B, 3, 4]``."""
        return torch.cat([self.R, self.t[..., None]], dim=-1)

    @property
    def camera_center(self) -> torch.Tensor:
        """Camera centres in world coordinates ``[B, 3]`` (``-R^T t``)."""
        return -(self.R.transpose(-1, -2) @ self.t[..., None])[..., 0]

    def world_to_camera(self, points: torch.Tensor) -> torch.Tensor:
        """World points ``[B, N, 3]`` to camera coordinates ``[B, N, 3]``."""
        check_shape("points", points, (len(self), "N", 3))
        return points @ self.R.transpose(-1, -2) + self.t[:, None]

    def camera_to_world(self, points: torch.Tensor) -> torch.Tensor:
        """Camera coordinates ``[B, N, 3]`` to world points ``[B, N, 3]``."""
        check_shape("points", points, (len(self), "N", 3))
        return (points - self.t[:, None]) @ self.R


class _PinholeIntrinsics(_PosedCamera):
    focal: torch.Tensor  # [B, 2] (fx, fy) in pixels (per world unit for orthographic)
    principal_point: torch.Tensor  # [B, 2] (cx, cy) in pixels

    def _set_intrinsics(self, focal, principal_point, batch: int) -> None:
        focal = _pair("focal", focal, batch, self.R)
        principal_point = _pair("principal_point", principal_point, batch, self.R)
        check_finite("focal", focal)
        check_finite("principal_point", principal_point)
        if (focal.abs() <= safe_eps(focal.dtype)).any():
            raise ValueError("focal: a camera has zero focal length (degenerate camera)")
        if (focal < 0).any():
            raise ValueError(
                "focal: expected positive focal lengths (u grows right and v down, "
                "docs/conventions.md; flip a mirrored image instead)"
            )
        self.focal, self.principal_point = focal, principal_point

    def _check_pixels_depth(self, pixels: torch.Tensor, depth: torch.Tensor) -> None:
        dims = check_shape("pixels", pixels, (len(self), "N", 2))
        check_shape("depth", depth, (len(self), dims["N"]))

    def _normalized(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels - self.principal_point[:, None]) / self.focal[:, None]


class PerspectiveCamera(_PinholeIntrinsics):
    """Pinhole cameras: ``u = fx * x / z + cx``, ``v = fy * y / z + cy``.

    Args:
        focal: ``(fx, fy)`` in pixels, as a number, ``[B]`` or ``[B, 2]``.
        principal_point: ``(cx, cy)`` in pixels, as a number, ``[B]`` or ``[B, 2]``.
        pose: world-to-camera ``[B, 3, 4]``.

    Points on or behind the camera plane (``z <= 0``) project through a clamped
    ``|z| >= eps``: finite, but meaningless; test ``world_to_camera(p)[..., 2] > 0``.
    """

    _fields = ("R", "t", "focal", "principal_point")

    def __init__(self, focal, principal_point, pose: torch.Tensor) -> None:
        batch = self._set_pose(pose)
        self._set_intrinsics(focal, principal_point, batch)

    @classmethod
    def from_intrinsics(cls, K: torch.Tensor, pose: torch.Tensor) -> PerspectiveCamera:
        """From ``K`` ``[B, 3, 3]`` = ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` (no skew)."""
        check_shape("K", K, ("B", 3, 3))
        expected_zero = torch.stack([K[:, 0, 1], K[:, 1, 0], K[:, 2, 0], K[:, 2, 1]], -1)
        if expected_zero.abs().amax() > 0 or (K[:, 2, 2] != 1).any():
            raise ValueError("K: expected [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (no skew)")
        focal = torch.stack([K[:, 0, 0], K[:, 1, 1]], -1)
        principal = torch.stack([K[:, 0, 2], K[:, 1, 2]], -1)
        return cls(focal, principal, pose)

    @classmethod
    def from_focal_fraction(
        cls, focal_fraction, image_size: tuple[int, int], pose: torch.Tensor
    ) -> PerspectiveCamera:
        """Seed-code intrinsics: ``fx = f * W``, ``fy = f * H``, centre ``(W/2, H/2)``.

        ``focal_fraction`` is a number or ``[B]``; ``image_size`` is ``(H, W)``.
        NMR ShapeNet renders use ``f = 1.8660254`` (a 30 degree field of view).
        """
        H, W = image_size
        f = torch.as_tensor(focal_fraction, dtype=pose.dtype, device=pose.device)
        f = f.expand(pose.shape[0]) if f.dim() == 0 else f
        focal = torch.stack([f * W, f * H], dim=-1)
        principal = torch.tensor([W / 2, H / 2], dtype=pose.dtype, device=pose.device)
        return cls(focal, principal.expand(pose.shape[0], 2), pose)

    @classmethod
    def from_fov(cls, fov, image_size: tuple[int, int], pose: torch.Tensor) -> PerspectiveCamera:
        """From the horizontal field of view ``fov`` (radians; number or ``[B]``), square pixels."""
        H, W = image_size
        fov = torch.as_tensor(fov, dtype=pose.dtype, device=pose.device)
        if ((fov <= 0) | (fov >= torch.pi)).any():
            raise ValueError("fov: expected a field of view in (0, pi) radians")
        fx = (W / 2) / torch.tan(fov / 2)
        principal = torch.tensor([W / 2, H / 2], dtype=pose.dtype, device=pose.device)
        return cls(fx, principal.expand(pose.shape[0], 2), pose)

    @property
    def K(self) -> torch.Tensor:
        """Intrinsic matrices ``[B, 3, 3]``."""
        K = torch.zeros(len(self), 3, 3, dtype=self.dtype, device=self.device)
        K[:, 0, 0], K[:, 1, 1] = self.focal[:, 0], self.focal[:, 1]
        K[:, 0, 2], K[:, 1, 2] = self.principal_point[:, 0], self.principal_point[:, 1]
        K[:, 2, 2] = 1
        return K

    def project(self, points: torch.Tensor) -> torch.Tensor:
        """World points ``[B, N, 3]`` to pixels ``[B, N, 2]``."""
        cam = self.world_to_camera(points)
        xy = cam[..., :2] / _z_nonzero(cam[..., 2:])
        return xy * self.focal[:, None] + self.principal_point[:, None]

    def unproject(self, pixels: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """Pixels ``[B, N, 2]`` at z-depths ``[B, N]`` to world points ``[B, N, 3]``."""
        self._check_pixels_depth(pixels, depth)
        xy = self._normalized(pixels) * depth[..., None]
        return self.camera_to_world(torch.cat([xy, depth[..., None]], dim=-1))

    def _ray_parts(self, pixels):
        xy = self._normalized(pixels)
        steps_cam = torch.cat([xy, torch.ones_like(xy[..., :1])], dim=-1)
        origins = self.camera_center[:, None].expand(-1, pixels.shape[1], -1)
        return origins, steps_cam @ self.R


class OrthographicCamera(_PinholeIntrinsics):
    """Orthographic cameras: ``u = sx * x + cx``, ``v = sy * y + cy`` (camera frame).

    Args:
        scale: ``(sx, sy)`` in pixels per world unit (number, ``[B]`` or ``[B, 2]``).
        principal_point: pixel of the optical axis, ``(cx, cy)``.
        pose: world-to-camera ``[B, 3, 4]``.

    Rays start on the camera plane ``z = 0`` and point along the camera's +z axis.
    """

    _fields = ("R", "t", "focal", "principal_point")

    def __init__(self, scale, principal_point, pose: torch.Tensor) -> None:
        batch = self._set_pose(pose)
        self._set_intrinsics(scale, principal_point, batch)

    @classmethod
    def from_sdf_srn_grid(
        cls, image_size: tuple[int, int], pose: torch.Tensor
    ) -> OrthographicCamera:
        """SDF-SRN's Pascal3D+ grid: pixel centres at ``linspace(-1, 1, W)`` (and ``H``)."""
        H, W = image_size
        if H < 2 or W < 2:
            raise ValueError(f"image_size: expected at least 2 x 2 pixels, got {image_size}")
        B = pose.shape[0]
        scale = torch.tensor([(W - 1) / 2, (H - 1) / 2], dtype=pose.dtype, device=pose.device)
        principal = torch.tensor([W / 2, H / 2], dtype=pose.dtype, device=pose.device)
        return cls(scale.expand(B, 2), principal.expand(B, 2), pose)

    @property
    def scale(self) -> torch.Tensor:
        """``(sx, sy)`` ``[B, 2]`` in pixels per world unit."""
        return self.focal

    def project(self, points: torch.Tensor) -> torch.Tensor:
        """World points ``[B, N, 3]`` to pixels ``[B, N, 2]``."""
        cam = self.world_to_camera(points)
        return cam[..., :2] * self.focal[:, None] + self.principal_point[:, None]

    def unproject(self, pixels: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """Pixels ``[B, N, 2]`` at camera z ``[B, N]`` to world points ``[B, N, 3]``."""
        self._check_pixels_depth(pixels, depth)
        return self.camera_to_world(torch.cat([self._normalized(pixels), depth[..., None]], -1))

    def _ray_parts(self, pixels):
        xy = self._normalized(pixels)
        origins = self.camera_to_world(torch.cat([xy, torch.zeros_like(xy[..., :1])], dim=-1))
        axis = self.R[:, 2][:, None].expand(-1, pixels.shape[1], -1)  # camera +z in world
        return origins, axis


class WeakPerspectiveCamera(OrthographicCamera):
    """Weak perspective: ``(u, v) = s * (R @ x)[:2] + (tx, ty)``, all in pixels.

    Args:
        rotation: ``[B, 3, 3]`` world-to-camera rotation.
        scale: ``s`` in pixels per world unit, a number or ``[B]``.
        translation: ``(tx, ty)`` ``[B, 2]`` in pixels.

    It is an orthographic camera with isotropic scale and the camera plane through
    the world origin; ``depth`` in ``unproject`` is ``(R @ x)[2]``.
    """

    def __init__(self, rotation: torch.Tensor, scale, translation: torch.Tensor) -> None:
        dims = check_shape("rotation", rotation, ("B", 3, 3))
        check_shape("translation", translation, (dims["B"], 2))
        scale = torch.as_tensor(scale, dtype=rotation.dtype, device=rotation.device)
        scale = scale.expand(dims["B"]) if scale.dim() == 0 else scale
        check_shape("scale", scale, (dims["B"],))
        zeros = torch.zeros(dims["B"], 3, 1, dtype=rotation.dtype, device=rotation.device)
        super().__init__(scale, translation, torch.cat([rotation, zeros], dim=-1))

    @property
    def rotation(self) -> torch.Tensor:
        return self.R

    @property
    def translation(self) -> torch.Tensor:
        return self.principal_point

    @property
    def scale(self) -> torch.Tensor:
        """Isotropic scale ``[B]`` in pixels per world unit."""
        return self.focal[:, 0]


def well_conditioned_projection(P: torch.Tensor, min_relative_det: float = 1e-4) -> torch.Tensor:
    """``P`` ``[B, 3, 4]`` whose left block ``M`` is moved away from singularity:
    where ``|det M| < min_relative_det * m^3`` (``m = max |M_ij|``) it becomes
    ``M + min_relative_det^(1/3) m I``; other matrices are returned unchanged. A
    regressed camera is near-singular where the regression averages views it cannot
    tell apart (the mean of cameras around an object is a degenerate matrix); this
    keeps its rays finite, and differentiable, without a host sync.

    Example:
        >>> P = torch.zeros(1, 3, 4); P[0, 0, 0] = P[0, 1, 1] = 1.0  # rank 2
        >>> well_conditioned_projection(P)[0, :, :3].det() > 0
        tensor(True)
    """
    check_shape("P", P, ("B", 3, 4))
    M = P[:, :, :3]
    m = M.detach().abs().amax(dim=(-1, -2))
    m = torch.where(m > 0, m, torch.ones_like(m))  # an all-zero M becomes a multiple of I
    # det(M / m) rather than det(M) < rel m^3: m^3 underflows for small (valid) matrices
    small = torch.det(M.detach() / m[:, None, None]).abs() < min_relative_det
    shift = torch.where(small, min_relative_det ** (1 / 3) * m, torch.zeros_like(m))
    eye = torch.eye(3, dtype=P.dtype, device=P.device)
    return torch.cat([M + shift[:, None, None] * eye, P[:, :, 3:]], dim=-1)


class ProjectionMatrixCamera(Camera):
    """A general finite projective camera ``w [u, v, 1]^T = P [x, 1]^T``.

    Args:
        P: ``[B, 3, 4]`` unconstrained projection matrices (the MSU model regresses
            12 values). ``P = [M | p4]`` needs an invertible ``M``; a singular one
            raises ``ValueError``.
        validate: check ``P`` (finite, ``M`` invertible; a host sync). A model's own
            prediction in the training graph passes ``False`` after
            :func:`well_conditioned_projection`, so that a near-singular regression
            neither stops training nor syncs.

    ``P`` is stored rescaled by ``sign(det M) / |m3|`` (``m3`` the third row of ``M``),
    which changes no projection but makes ``w`` the metric z-depth of the camera
    ``K [R | t]`` it factors into, positive in front of the camera.
    """

    _fields = ("P",)

    def __init__(self, P: torch.Tensor, *, validate: bool = True) -> None:
        P = _camera_dtype("P", P)
        check_shape("P", P, ("B", 3, 4))
        M = P[:, :, :3]
        det = torch.det(M)
        if validate:
            check_finite("P", P)
            scale = M.abs().amax(dim=(-1, -2)).clamp_min(torch.finfo(P.dtype).tiny) ** 3
            if (det.abs() <= safe_eps(P.dtype) * scale).any():
                raise ValueError(
                    "P: the left 3x3 block is singular (not a finite projective camera)"
                )
        sign = torch.where(det < 0, -1.0, 1.0).to(P.dtype)
        norm = M[:, 2].norm(dim=-1).clamp_min(torch.finfo(P.dtype).tiny)
        self.P = P * (sign / norm)[:, None, None]

    @property
    def camera_center(self) -> torch.Tensor:
        """Camera centres ``[B, 3]``: the null vector ``-M^-1 p4``."""
        return -torch.linalg.solve(self.P[:, :, :3], self.P[:, :, 3:])[..., 0]

    def project(self, points: torch.Tensor) -> torch.Tensor:
        """World points ``[B, N, 3]`` to pixels ``[B, N, 2]``."""
        check_shape("points", points, (len(self), "N", 3))
        h = points @ self.P[:, :, :3].transpose(-1, -2) + self.P[:, None, :, 3]
        return h[..., :2] / _z_nonzero(h[..., 2:])

    def depth(self, points: torch.Tensor) -> torch.Tensor:
        """Projective depth ``w`` ``[B, N]`` of world points ``[B, N, 3]``."""
        check_shape("points", points, (len(self), "N", 3))
        return (points @ self.P[:, 2, :3, None])[..., 0] + self.P[:, 2, 3:]

    def unproject(self, pixels: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """Pixels ``[B, N, 2]`` at projective depths ``[B, N]`` to world points ``[B, N, 3]``."""
        dims = check_shape("pixels", pixels, (len(self), "N", 2))
        check_shape("depth", depth, (len(self), dims["N"]))
        h = torch.cat([pixels, torch.ones_like(pixels[..., :1])], dim=-1) * depth[..., None]
        rhs = (h - self.P[:, None, :, 3]).transpose(-1, -2)
        return torch.linalg.solve(self.P[:, :, :3], rhs).transpose(-1, -2)

    def _ray_parts(self, pixels):
        h = torch.cat([pixels, torch.ones_like(pixels[..., :1])], dim=-1)
        steps = torch.linalg.solve(self.P[:, :, :3], h.transpose(-1, -2)).transpose(-1, -2)
        origins = self.camera_center[:, None].expand(-1, pixels.shape[1], -1)
        return origins, steps
