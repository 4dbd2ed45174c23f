"""Pictures of meshes and point clouds: a small z-buffer rasteriser (numpy), so that
previews show the extracted mesh, the thing that is evaluated."""

from __future__ import annotations

import numpy as np
import torch
import trimesh

from ..cameras import Camera

__all__ = ["PART_PALETTE", "part_colors", "render_mesh", "render_points", "shade"]

#: Light from above (world +y), tilted toward the viewer by :func:`shade`.
LIGHT_UP = np.array([0.0, 1.0, 0.0])


#: Twelve distinct colours (matplotlib's tab10 and two more), one per part label.
PART_PALETTE = np.array([
    [0.122, 0.467, 0.706], [1.000, 0.498, 0.055], [0.173, 0.627, 0.173],
    [0.839, 0.153, 0.157], [0.580, 0.404, 0.741], [0.549, 0.337, 0.294],
    [0.890, 0.467, 0.761], [0.498, 0.498, 0.498], [0.737, 0.741, 0.133],
    [0.090, 0.745, 0.812], [0.400, 0.200, 0.000], [0.000, 0.000, 0.500],
])  # fmt: skip


def part_colors(labels: np.ndarray) -> np.ndarray:
    """RGB ``[N, 3]`` of integer part labels ``[N]`` (:data:`PART_PALETTE`, cycled for
    labels past 11); ``render_mesh``'s ``face_colors`` for a segmentation."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels: expected a 1-D integer array, got {labels.dtype} {labels.shape}")
    return PART_PALETTE[labels % len(PART_PALETTE)]


def _camera_arrays(camera: Camera):
    return camera.R.detach().double().cpu().numpy(), camera.t.detach().double().cpu().numpy()


def shade(normals: np.ndarray, view_dirs: np.ndarray) -> np.ndarray:
    """Grey levels ``[..]`` in ``[0, 1]`` of unit world normals ``[.., 3]``: ambient 0.3
    plus Lambertian 0.65 from a light above and behind the viewer (``view_dirs``, unit,
    from the camera toward the points). Normals facing away from the viewer are
    flipped (two-sided)."""
    n = np.where((normals * view_dirs).sum(-1, keepdims=True) > 0, -normals, normals)
    light = LIGHT_UP[None] - 0.6 * view_dirs
    light = light / np.linalg.norm(light, axis=-1, keepdims=True)
    return 0.3 + 0.65 * np.clip((n * light).sum(-1), 0, None)


def _zbuffer(pixel_ids: np.ndarray, depth: np.ndarray, payload: np.ndarray, size: int):
    """The nearest candidate per pixel: ``(mask [size*size], depth, payload index)``."""
    out_depth = np.full(size * size, np.inf)
    out_index = np.full(size * size, -1, dtype=np.int64)
    if len(pixel_ids):
        order = np.lexsort((depth, pixel_ids))  # by pixel, then nearest first
        ids = pixel_ids[order]
        first = np.ones(len(ids), dtype=bool)
        first[1:] = ids[1:] != ids[:-1]
        out_depth[ids[first]] = depth[order][first]
        out_index[ids[first]] = payload[order][first]
    return out_index >= 0, out_depth, out_index


def render_mesh(
    mesh: trimesh.Trimesh,
    camera: Camera,
    size: int,
    background: float = 1.0,
    face_colors: np.ndarray | None = None,
) -> torch.Tensor:
    """Renders ``[V, 3, size, size]`` in ``[0, 1]`` of ``mesh`` (world frame) seen by
    each of ``camera`` ``[V]`` (square images, pixel centres at ``+0.5``), flat shaded
    by :func:`shade`; ``background`` where no triangle covers a pixel centre. Grey, or
    each face's RGB in ``face_colors`` ``[F, 3]`` (``[0, 1]``) times its shade.

    A z-buffer over the triangles: each covers the pixel centres inside its projection
    (barycentric test), depth interpolated in ``1 / z``.
    """
    images = []
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    normals = np.asarray(mesh.face_normals, dtype=np.float64)
    centres = vertices[faces].mean(1)
    if face_colors is not None:
        face_colors = np.asarray(face_colors, dtype=np.float64)
        if face_colors.shape != (len(faces), 3):
            raise ValueError(
                f"face_colors: expected shape ({len(faces)}, 3), got {face_colors.shape}"
            )
    images = []
    for v in range(len(camera)):
        mask, face = np.zeros(size * size, dtype=bool), None
        if len(faces):
            pix, depth = _project(camera[v], vertices)
            mask, _, face = _rasterize(pix[faces], depth[faces], size)
        images.append(
            _paint(mask, face, normals, centres, camera[v], size, background, face_colors)
        )
    return torch.from_numpy(np.stack(images)).float()


def _project(camera: Camera, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels ``[N, 2]`` and camera depths ``[N]`` of world points ``[N, 3]`` seen by a
    batch-1 ``camera``."""
    R, t = _camera_arrays(camera)
    depth = (points @ R[0].T + t[0])[:, 2]
    pix = camera.project(torch.from_numpy(points)[None].to(camera.dtype))[0]
    return pix.detach().double().cpu().numpy(), depth


def _paint(mask, index, normals, positions, camera, size, background, colors=None):
    """``[3, size, size]`` image: pixel ``mask`` shaded with ``normals[index]`` seen
    from ``camera`` at ``positions[index]`` (times ``colors[index]`` when given, else
    grey), ``background`` elsewhere."""
    image = np.full((size * size, 3), float(background))
    if mask.any():
        R, t = _camera_arrays(camera)
        view = positions[index[mask]] - (-R[0].T @ t[0])
        view /= np.linalg.norm(view, axis=-1, keepdims=True)
        grey = shade(normals[index[mask]], view)[:, None]
        image[mask] = grey if colors is None else grey * colors[index[mask]]
    return np.ascontiguousarray(image.T.reshape(3, size, size))


def _cross(u: np.ndarray, w: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Twice the signed area of the triangles ``(u, w, p)``, each ``[K, 2]``."""
    return (w[:, 0] - u[:, 0]) * (p[:, 1] - u[:, 1]) - (w[:, 1] - u[:, 1]) * (p[:, 0] - u[:, 0])


def _rasterize(tri: np.ndarray, z: np.ndarray, size: int, chunk: int = 20000):
    """Triangles ``[F, 3, 2]`` in pixels with camera depths ``[F, 3]`` -> z-buffer."""
    keep = (z > 1e-6).all(1)
    tri, z, ids = tri[keep], z[keep], np.nonzero(keep)[0]
    all_pixels, all_depth, all_face = [], [], []
    for s in range(0, len(tri), chunk):
        tr, zz, fi = tri[s : s + chunk], z[s : s + chunk], ids[s : s + chunk]
        lo = np.clip(np.floor(tr.min(1) - 0.5).astype(np.int64) + 1, 0, size)
        hi = np.clip(np.ceil(tr.max(1) - 0.5).astype(np.int64), -1, size - 1)
        nx, ny = np.maximum(hi[:, 0] - lo[:, 0] + 1, 0), np.maximum(hi[:, 1] - lo[:, 1] + 1, 0)
        count = nx * ny
        if count.sum() == 0:
            continue
        owner = np.repeat(np.arange(len(tr)), count)
        local = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        px = lo[owner, 0] + local % nx[owner]
        py = lo[owner, 1] + local // nx[owner]
        p = np.stack([px + 0.5, py + 0.5], -1)
        a, b, c = tr[owner, 0], tr[owner, 1], tr[owner, 2]
        area = _cross(a, b, c)
        ok = np.abs(area) > 1e-12
        safe = np.where(ok, area, 1.0)
        w0, w1, w2 = _cross(b, c, p) / safe, _cross(c, a, p) / safe, _cross(a, b, p) / safe
        inside = ok & (w0 >= -1e-9) & (w1 >= -1e-9) & (w2 >= -1e-9)
        inv = w0 / zz[owner, 0] + w1 / zz[owner, 1] + w2 / zz[owner, 2]
        all_pixels.append((py * size + px)[inside])
        all_depth.append(1.0 / inv[inside])
        all_face.append(fi[owner][inside])
    if not all_pixels:
        return np.zeros(size * size, bool), np.full(size * size, np.inf), np.full(size * size, -1)
    return _zbuffer(np.concatenate(all_pixels), np.concatenate(all_depth),
                    np.concatenate(all_face), size)  # fmt: skip


def render_points(
    points: torch.Tensor,
    normals: torch.Tensor,
    camera: Camera,
    size: int,
    radius: int = 1,
    background: float = 1.0,
) -> torch.Tensor:
    """Grey renders ``[V, 3, size, size]`` of a cloud ``[N, 3]`` with unit normals
    ``[N, 3]`` (e.g. a shape's ground-truth surface samples): each point covers the
    pixels within ``radius`` of its own, nearest point first, shaded by :func:`shade`."""
    pts = points.detach().double().cpu().numpy()
    nrm = normals.detach().double().cpu().numpy()
    offsets = [(dx, dy) for dx in range(-radius, radius + 1) for dy in range(-radius, radius + 1)
               if dx * dx + dy * dy <= radius * radius]  # fmt: skip
    images = []
    for v in range(len(camera)):
        pix, depth = _project(camera[v], pts)
        pix = np.floor(pix).astype(np.int64)
        ids, dep, owner = [], [], []
        for dx, dy in offsets:
            x, y = pix[:, 0] + dx, pix[:, 1] + dy
            ok = (x >= 0) & (x < size) & (y >= 0) & (y < size) & (depth > 0)
            ids.append((y * size + x)[ok])
            dep.append(depth[ok])
            owner.append(np.nonzero(ok)[0])
        mask, _, index = _zbuffer(np.concatenate(ids), np.concatenate(dep),
                                  np.concatenate(owner), size)  # fmt: skip
        images.append(_paint(mask, index, nrm, pts, camera[v], size, background))
    return torch.from_numpy(np.stack(images)).float()
