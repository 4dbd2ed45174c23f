"""A mesh's silhouette through a camera: which pixel centres some triangle covers."""

from __future__ import annotations

import torch

from ..checks import check_shape

__all__ = ["mesh_silhouette"]


def mesh_silhouette(
    vertices: torch.Tensor, faces: torch.Tensor, camera, image_size: tuple[int, int]
) -> torch.Tensor:
    """Rasterise a triangle mesh's silhouette: pixel ``(row, col)`` is on when its
    centre ``(col + 0.5, row + 0.5)`` lies inside (or on the edge of) the projection
    of at least one triangle. No depth test is needed for a silhouette; triangles of
    either winding count. Not differentiable: it makes ground-truth masks of
    data, not a training signal.

    .. math::
        m(u) = \\bigvee_f \\; [\\, e_0(u) \\ge 0 \\wedge e_1(u) \\ge 0 \\wedge e_2(u) \\ge 0
        \\,] \\;\\vee\\; [\\, e_0(u) \\le 0 \\wedge e_1(u) \\le 0 \\wedge e_2(u) \\le 0 \\,]

    with :math:`e_k` the edge functions of face ``f``'s projected triangle.

    Args:
        vertices: ``[V, 3]`` world points (one mesh, seen by every camera).
        faces: ``[F, 3]`` integer vertex indices.
        camera: a :class:`~svrecon.cameras.Camera` of batch ``B``.
        image_size: ``(H, W)``.

    Returns:
        ``[B, H, W]`` bool.

    Raises ``ValueError`` when a vertex is on or behind a camera's plane (the
    projection of such a triangle is not its image) or an index is out of range.

    Example:
        >>> import trimesh
        >>> box = trimesh.creation.box((1, 1, 1))
        >>> cam = PerspectiveCamera(64.0, 32.0, pose)  # doctest: +SKIP
        >>> mask = mesh_silhouette(torch.as_tensor(box.vertices), torch.as_tensor(box.faces),
        ...                        cam, (64, 64))  # doctest: +SKIP
    """
    check_shape("vertices", vertices, ("V", 3))
    check_shape("faces", faces, ("F", 3))
    if faces.is_floating_point() or faces.dtype == torch.bool:
        raise ValueError(f"faces: expected integer indices, got {faces.dtype}")
    if faces.numel() and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError(f"faces: indices must be in [0, {len(vertices)})")
    H, W = (int(s) for s in image_size)
    B = len(camera)
    verts = vertices.to(camera.dtype).to(camera.device)
    if not torch.isfinite(verts).all():
        raise ValueError("vertices: contain NaN or infinite values")
    mask = torch.zeros(B, H * W, dtype=torch.bool, device=camera.device)
    if faces.numel() == 0 or H * W == 0:
        return mask.view(B, H, W)
    depth = camera.world_to_camera(verts[None].expand(B, -1, -1))[..., 2]
    if (depth <= 0).any():
        raise ValueError("vertices: some are on or behind the camera plane (z <= 0)")
    uv = camera.project(verts[None].expand(B, -1, -1))  # [B, V, 2]
    cols = torch.arange(W, dtype=uv.dtype, device=uv.device) + 0.5
    rows = torch.arange(H, dtype=uv.dtype, device=uv.device) + 0.5
    centres = torch.stack(torch.meshgrid(rows, cols, indexing="ij")[::-1], -1).view(1, -1, 2)
    faces = faces.to(camera.device).long()
    chunk = max(1, 2**21 // (B * H * W))  # bounds the [B, chunk, 3, H*W] edge functions
    for start in range(0, len(faces), chunk):
        tri = uv[:, faces[start : start + chunk]]  # [B, f, 3, 2]
        a, b = tri, tri.roll(-1, dims=2)
        # e_k(p) = cross(b_k - a_k, p - a_k), for every pixel centre p
        ex, ey = (b - a)[..., 0, None], (b - a)[..., 1, None]  # [B, f, 3, 1]
        px = centres[..., 0].view(1, 1, 1, -1) - a[..., 0, None]
        py = centres[..., 1].view(1, 1, 1, -1) - a[..., 1, None]
        e = ex * py - ey * px  # [B, f, 3, HW]
        inside = (e >= 0).all(2) | (e <= 0).all(2)  # [B, f, HW]
        degenerate = ex[..., 0] * ey.roll(-1, 2)[..., 0] - ey[..., 0] * ex.roll(-1, 2)[..., 0]
        inside &= degenerate.abs().amax(2, keepdim=True) > 0  # zero-area triangles cover nothing
        mask |= inside.any(1)
    return mask.view(B, H, W)
