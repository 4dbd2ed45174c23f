"""Mesh collections to training data: any folder of OBJ / OFF / PLY / GLB meshes
(ShapeNet, Objaverse exports, artist assets) rendered and sampled into the procedural
set's on-disk format, so that every reader, trainer and CLI command of svrecon takes it
unchanged (``svrecon data --meshes DIR``; ``ProceduralDataset(root)`` reads it).

Convention, stated once:

- **Normalisation**: every part of the file in one frame; the up axis (``up``) turned
  to +y; centred on the bounding box's centre; scaled so that the farthest vertex is
  ``0.5`` from the origin (the procedural shapes' reach, inside the renderers' and
  samples' ``0.6`` bound). The scale and centre are recorded per shape.
- **Views**: ``nmr``: NMR's cameras (distance 2.732, 30 degree field of view, 30
  degree elevation, azimuths evenly spaced from a random offset); ``r2n2``: 3D-R2N2's
  Blender set-up (:func:`~svrecon.data.r2n2_camera`, azimuth uniform, elevation
  25-30 degrees, distance ratio 0.65-0.85). Images: albedo from the file's textures,
  vertex or face colours or material colours (grey when it has none), times the
  procedural set's random spherical-harmonics lighting, on white; masks, z-depth and
  world / camera normals (flat, facing the camera) from ray casting every pixel centre.
- **Samples**: surface points area-weighted; SDF and occupancy samples as the
  procedural set's (half ``N(0, 0.02)`` around the surface, half uniform in
  ``[-0.6, 0.6]^3``). Distances are exact point-to-triangle distances; the **sign**
  is the generalised winding number (inside where ``w > 1/2``), robust to the holes,
  duplicated and intersecting parts that real meshes have (Jacobson et al. 2013). A
  shape whose uniform samples have winding numbers far from both 0 and 1 (more than
  ``ambiguous_limit`` of them in ``[0.2, 0.8]``) is recorded as ``sign_trusted:
  false``: its SDF sign and occupancy cannot be trusted.

Distances, winding numbers and ray casting are libigl's (``pip install 'svrecon[meshes]'``).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

__all__ = [
    "MESH_SUFFIXES",
    "LoadedMesh",
    "generate_mesh_dataset",
    "load_mesh",
    "mesh_samples",
    "meshes_in",
    "render_mesh",
]

MESH_SUFFIXES = (".obj", ".off", ".ply", ".glb", ".gltf")
FORMAT_VERSION = 1
_GREY = np.array([0.7, 0.7, 0.7])
_UP = {"y": np.eye(3), "z": np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])}  # z -> +y


def _igl():
    try:
        import igl
    except ImportError:
        raise ImportError(
            "mesh collections need libigl (winding numbers, distances, ray casting): "
            "pip install 'svrecon[meshes]'"
        ) from None
    return igl


class LoadedMesh:
    """A mesh file's parts in one normalised frame: ``vertices`` ``[V, 3]`` float64,
    ``faces`` ``[F, 3]`` int64, and the albedo of any surface point.

    Build with :func:`load_mesh`."""

    def __init__(self, vertices, faces, samplers, face_part, centre, scale):
        self.vertices, self.faces = vertices, faces
        self._samplers, self._face_part = samplers, face_part
        self.centre, self.scale = centre, scale
        self._tree = None

    @property
    def tree(self):
        """libigl's AABB tree of the mesh (built once)."""
        if self._tree is None:
            self._tree = _igl().AABB()
            self._tree.init(self.vertices, self.faces)
        return self._tree

    def albedo(self, faces: np.ndarray, barycentric: np.ndarray) -> np.ndarray:
        """Albedo ``[N, 3]`` in ``[0, 1]`` at points given by face index ``[N]`` and
        barycentric ``(u, v)`` ``[N, 2]`` (``p = (1-u-v) a + u b + v c``)."""
        out = np.empty((len(faces), 3))
        parts = self._face_part[faces]
        for k, (offset, sampler) in enumerate(self._samplers):
            chosen = parts == k
            if chosen.any():
                out[chosen] = sampler(faces[chosen] - offset, barycentric[chosen])
        return np.clip(out, 0, 1)


def _colour(value) -> np.ndarray | None:
    if value is None:
        return None
    c = np.asarray(value, dtype=np.float64).reshape(-1)[:3]
    if c.size < 3 or not np.isfinite(c).all():
        return None
    return c / 255 if c.max() > 1 else c


def _sampler(geometry) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The albedo of one trimesh part at (local face, barycentric) pairs."""
    visual, faces = geometry.visual, np.asarray(geometry.faces)

    def weights(bary):
        return np.stack([1 - bary[:, 0] - bary[:, 1], bary[:, 0], bary[:, 1]], -1)

    kind = getattr(visual, "kind", None)
    if kind == "vertex":
        colours = np.asarray(visual.vertex_colors, dtype=np.float64)[:, :3] / 255
        return lambda f, b: np.einsum("nk,nkc->nc", weights(b), colours[faces[f]])
    if kind == "face":
        colours = np.asarray(visual.face_colors, dtype=np.float64)[:, :3] / 255
        return lambda f, b: colours[f]
    material = getattr(visual, "material", None)
    image = getattr(material, "image", None) or getattr(material, "baseColorTexture", None)
    uv = getattr(visual, "uv", None)
    if image is not None and uv is not None and len(uv) == len(geometry.vertices):
        texture = np.asarray(image.convert("RGB"), dtype=np.float64) / 255
        uv = np.asarray(uv, dtype=np.float64)
        h, w = texture.shape[:2]

        def textured(f, b):
            st = np.einsum("nk,nkc->nc", weights(b), uv[faces[f]]) % 1.0  # repeat wrap
            cols = np.clip((st[:, 0] * w).astype(int), 0, w - 1)
            rows = np.clip(((1 - st[:, 1]) * h).astype(int), 0, h - 1)  # v points up
            return texture[rows, cols]

        return textured
    colour = None
    for name in ("diffuse", "baseColorFactor", "main_color"):
        colour = _colour(getattr(material, name, None))
        if colour is not None:
            break
    colour = _GREY if colour is None else colour
    return lambda f, b: np.broadcast_to(colour, (len(f), 3))


def load_mesh(path: str | Path, up: str = "y") -> LoadedMesh:
    """Read a mesh file (every part of a scene, its transforms applied) and normalise it
    (module docstring). Raises ``ValueError`` for a file with no triangles."""
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"meshes: no file {path}")
    if up not in _UP:
        raise ValueError(f"up: expected one of {sorted(_UP)}, got {up!r}")
    try:
        loaded = trimesh.load(path, process=False)
    except Exception as exc:  # trimesh raises many types for a broken file
        raise ValueError(f"meshes: cannot read {path} ({exc})") from None
    parts = loaded.dump() if isinstance(loaded, trimesh.Scene) else [loaded]
    parts = [p for p in parts if isinstance(p, trimesh.Trimesh) and len(p.faces)]
    if not parts:
        raise ValueError(f"meshes: {path} has no triangles")
    vertices, faces, samplers, face_part, offset, count = [], [], [], [], 0, 0
    for k, part in enumerate(parts):
        vertices.append(np.asarray(part.vertices, dtype=np.float64))
        faces.append(np.asarray(part.faces, dtype=np.int64) + count)
        samplers.append((offset, _sampler(part)))
        face_part.append(np.full(len(part.faces), k))
        count += len(part.vertices)
        offset += len(part.faces)
    V = np.concatenate(vertices) @ _UP[up].T
    if not np.isfinite(V).all():
        raise ValueError(f"meshes: {path} has NaN or infinite vertices")
    centre = (V.min(0) + V.max(0)) / 2
    radius = np.linalg.norm(V - centre, axis=1).max()
    if radius <= 0:
        raise ValueError(f"meshes: {path} has no extent")
    scale = 0.5 / radius
    return LoadedMesh((V - centre) * scale, np.concatenate(faces), samplers,
                      np.concatenate(face_part), centre, scale)  # fmt: skip


def render_mesh(mesh: LoadedMesh, camera, image_size: int, lighting: torch.Tensor) -> dict:
    """Ray cast ``mesh`` from each camera ``[V]`` at every pixel centre; returns the
    procedural set's per-view arrays (``rgb`` uint8 ``[V, 3, H, W]`` on white,
    ``mask``, ``depth``, ``normals_world``, ``normals_camera``, ``albedo``) under SH
    ``lighting`` ``[V, 27]``."""
    from ..renderers import sh_shading

    camera = camera.to(torch.float64)
    v, s = len(camera), image_size
    rays = camera.rays(s, s)
    origins = rays.origins.reshape(-1, 3).numpy()
    directions = rays.directions.reshape(-1, 3).numpy()
    face, distance, bary = mesh.tree.intersect_ray_first(
        mesh.vertices, mesh.faces, np.ascontiguousarray(origins), np.ascontiguousarray(directions)
    )
    hit = face >= 0
    points = origins + np.nan_to_num(distance)[:, None] * directions
    tri = mesh.vertices[mesh.faces[np.where(hit, face, 0)]]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-300)
    normals *= -np.sign(np.sum(normals * directions, axis=1, keepdims=True) + 1e-300)
    albedo = np.zeros((len(face), 3))
    albedo[hit] = mesh.albedo(face[hit], bary[hit])
    normals_t = torch.from_numpy(np.where(hit[:, None], normals, 0.0)).view(v, -1, 3)
    shading = sh_shading(normals_t, lighting.to(torch.float64)).reshape(-1, 3).numpy()
    rgb = np.where(hit[:, None], np.clip(albedo * shading, 0, 1), 1.0)
    points_t = torch.from_numpy(points).view(v, -1, 3)
    depth = camera.world_to_camera(points_t)[..., 2].reshape(-1).numpy()
    normals_camera = (normals_t @ camera.R.transpose(1, 2)).reshape(-1, 3).numpy()

    def image(x):
        return np.ascontiguousarray(x.reshape(v, s, s, -1).transpose(0, 3, 1, 2))

    return {
        "rgb": (image(rgb) * 255).round().astype(np.uint8),
        "mask": hit.reshape(v, s, s),
        "depth": np.where(hit, depth, 0.0).reshape(v, s, s).astype(np.float32),
        "normals_world": image(normals_t.reshape(-1, 3).numpy()).astype(np.float32),
        "normals_camera": image(normals_camera).astype(np.float32),
        "albedo": image(albedo).astype(np.float32),
    }


def mesh_samples(
    mesh: LoadedMesh,
    rng: np.random.Generator,
    num_surface: int = 4096,
    num_sdf: int = 4096,
    num_occupancy: int = 4096,
    near_sigma: float = 0.02,
    ambiguous_limit: float = 0.02,
) -> dict[str, np.ndarray]:
    """Ground-truth samples of a normalised mesh (module docstring): surface points and
    outward normals, SDF and occupancy samples, and the sign's trust (``sign_trusted``,
    ``sign_ambiguous``: the fraction of uniform samples with ``0.2 < w < 0.8``)."""
    import trimesh.sample

    from .procedural import near_and_uniform

    igl = _igl()
    tm = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    points, index = trimesh.sample.sample_surface(tm, num_surface, seed=rng)
    points = np.asarray(points, dtype=np.float64)
    normals = np.asarray(tm.face_normals[index], dtype=np.float64)

    def winding(q):
        return igl.fast_winding_number(mesh.vertices, mesh.faces, np.ascontiguousarray(q))

    # a face's normal points outward where the winding number drops across it
    step = 1e-3 * normals
    flip = winding(points + step) > winding(points - step)
    normals[flip] *= -1

    sdf_points = near_and_uniform(points, rng, num_sdf, near_sigma)
    occ_points = near_and_uniform(points, rng, num_occupancy, near_sigma)
    squared, _, _ = mesh.tree.squared_distance(mesh.vertices, mesh.faces, sdf_points)
    w_sdf, w_occ = winding(sdf_points), winding(occ_points)
    sdf_values = np.sqrt(squared) * np.where(w_sdf > 0.5, -1.0, 1.0)
    uniform = np.concatenate([w_sdf[num_sdf // 2 :], w_occ[num_occupancy // 2 :]])
    ambiguous = float(((uniform > 0.2) & (uniform < 0.8)).mean())
    return {
        "surface_points": points.astype(np.float32),
        "surface_normals": normals.astype(np.float32),
        "sdf_points": sdf_points.astype(np.float32),
        "sdf_values": sdf_values.astype(np.float32),
        "occupancy_points": occ_points.astype(np.float32),
        "occupancy": w_occ > 0.5,
        "sign_ambiguous": np.array(ambiguous, dtype=np.float32),
        "sign_trusted": np.array(ambiguous <= ambiguous_limit),
    }


def _cameras(convention: str, rng: np.random.Generator, views: int, image_size: int):
    from ..cameras import PerspectiveCamera
    from .procedural import view_camera
    from .r2n2 import r2n2_camera

    if convention == "nmr":
        offset = rng.uniform(0, 2 * math.pi)
        azimuth = (offset + 2 * math.pi * np.arange(views) / views) % (2 * math.pi)
        elevation = np.full(views, math.radians(30.0))
        camera = view_camera(torch.from_numpy(azimuth), torch.from_numpy(elevation), image_size)
        return camera, azimuth, elevation
    azimuth = rng.uniform(0, 360, views)
    elevation = rng.uniform(25, 30, views)
    ratio = rng.uniform(0.65, 0.85, views)
    pairs = [r2n2_camera(a, e, r, (image_size, image_size))
             for a, e, r in zip(azimuth, elevation, ratio, strict=True)]  # fmt: skip
    K = torch.stack([k for k, _ in pairs]).double()
    camera = PerspectiveCamera.from_intrinsics(K, torch.stack([p for _, p in pairs]).double())
    return camera, np.radians(azimuth), np.radians(elevation)


def _shape_record(job: dict) -> tuple[dict, float]:
    """Everything written for one mesh (a function of the seed and the shape index)."""
    from .procedural import random_lighting

    start = time.perf_counter()
    torch.set_num_threads(1)
    rng = np.random.default_rng([job["seed"], job["index"]])
    mesh = load_mesh(job["path"], job["up"])
    camera, azimuth, elevation = _cameras(job["convention"], rng, job["views"], job["size"])
    centres = camera.camera_center.numpy()
    towards = centres / np.linalg.norm(centres, axis=1, keepdims=True)
    lighting = np.stack([random_lighting(rng, t) for t in towards])
    record = render_mesh(mesh, camera, job["size"], torch.from_numpy(lighting))
    record.update({
        "intrinsics": camera.K.float().numpy(), "pose": camera.pose.float().numpy(),
        "azimuth": azimuth.astype(np.float32), "elevation": elevation.astype(np.float32),
        "lighting": lighting.astype(np.float32), "label": np.array(job["label"]),
        "scale": np.array(mesh.scale), "centre": mesh.centre,
    })  # fmt: skip
    record.update(mesh_samples(mesh, rng))
    return record, time.perf_counter() - start


def _write(job: dict) -> dict:
    record, seconds = _shape_record(job)
    np.savez_compressed(Path(job["root"]) / job["file"], **record)
    return {"index": job["index"], "split": job["split"], "category": job["category"],
            "file": job["file"], "source": str(job["path"]),
            "sign_trusted": bool(record["sign_trusted"]),
            "sign_ambiguous": float(record["sign_ambiguous"]),
            "seconds": seconds}  # fmt: skip


def generate_mesh_dataset(
    meshes: Sequence[tuple],
    root: str | Path,
    views: dict[str, int] | None = None,
    image_size: int = 64,
    convention: str = "nmr",
    up: str = "y",
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
) -> Path:
    """Render and sample every mesh into ``root`` (the procedural set's format, with
    the categories in its manifest) and return the manifest's path.

    Args:
        meshes: ``(path, category, split)`` or ``(path, category, split, up)`` per
            mesh, e.g. from :func:`meshes_in` or
            :func:`~svrecon.data.furniture.furniture_meshes`.
        views: rendered views per split (default ``{"train": 1, "test": 2}``).
        image_size: square images, in pixels.
        convention: ``"nmr"`` or ``"r2n2"`` cameras (module docstring).
        up: the files' up axis, ``"y"`` or ``"z"``, where an entry does not give it.
        seed: every array is a function of ``(seed, index)``, whatever ``workers``.
        workers: processes (default: the CPUs); 1 runs in this process.

    An existing manifest with the same settings and meshes is reused; others raise.
    Shapes whose sign cannot be trusted are written and flagged in the manifest.
    """
    views = views or {"train": 1, "test": 2}
    if convention not in ("nmr", "r2n2"):
        raise ValueError(f"convention: expected 'nmr' or 'r2n2', got {convention!r}")
    if up not in _UP:
        raise ValueError(f"up: expected one of {sorted(_UP)}, got {up!r}")
    if image_size < 1 or any(v < 1 for v in views.values()):
        raise ValueError(f"image_size, views: expected >= 1, got {image_size}, {views}")
    if not meshes:
        raise ValueError("meshes: none given")
    if any(len(m) not in (3, 4) for m in meshes):
        raise ValueError("meshes: expected (path, category, split[, up]) entries")
    meshes = [(Path(m[0]), str(m[1]), str(m[2]), m[3] if len(m) == 4 else up) for m in meshes]
    bad_up = sorted({u for *_, u in meshes} - set(_UP))
    if bad_up:
        raise ValueError(f"meshes: up axes {bad_up}; expected one of {sorted(_UP)}")
    unknown = sorted({s for _, _, s, _ in meshes} - set(views))
    if unknown:
        raise ValueError(f"meshes: splits {unknown} have no entry in views {views}")
    categories = sorted({c for _, c, _, _ in meshes})
    root = Path(root)
    settings = {"format": FORMAT_VERSION, "kind": "meshes", "seed": seed,
                "image_size": image_size, "categories": categories, "views": views,
                "convention": convention,
                "sources": [[str(p), u] for p, _, _, u in meshes]}  # fmt: skip
    manifest_path = root / "manifest.json"
    if manifest_path.exists():
        existing = json.loads(manifest_path.read_text())
        if existing["settings"] != settings:
            raise ValueError(f"root: {root} holds a dataset with other settings")
        return manifest_path
    root.mkdir(parents=True, exist_ok=True)
    jobs = [{"index": i, "path": str(p), "category": c, "split": s, "label": categories.index(c),
             "file": f"{s}_{i:04d}_{c}.npz", "root": str(root), "seed": seed, "up": u,
             "views": views[s], "size": image_size, "convention": convention}
            for i, (p, c, s, u) in enumerate(meshes)]  # fmt: skip
    workers = workers or os.cpu_count() or 1
    start = time.perf_counter()
    bar = tqdm(total=len(jobs), desc="meshes", disable=not progress)
    entries = []
    if workers == 1:
        for job in jobs:
            entries.append(_write(job))
            bar.update()
    else:
        with ProcessPoolExecutor(workers) as pool:
            for entry in pool.map(_write, jobs):
                entries.append(entry)
                bar.update()
    bar.close()
    untrusted = [e["source"] for e in entries if not e["sign_trusted"]]
    manifest = {"settings": settings, "shapes": entries,
                "summary": {"shapes": len(entries), "seconds": time.perf_counter() - start,
                            "workers": workers,
                            "sign_untrusted_fraction": len(untrusted) / len(entries),
                            "sign_untrusted": untrusted}}  # fmt: skip
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return manifest_path


def meshes_in(folder: str | Path, test_every: int = 5) -> list[tuple[Path, str, str]]:
    """``(path, category, split)`` of every mesh file under ``folder``: the category is
    the first folder under ``folder`` (``"object"`` for files directly in it); every
    ``test_every``-th mesh of a category (sorted by path) is a test shape."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"meshes: no folder {folder}")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in MESH_SUFFIXES)
    if not paths:
        raise ValueError(f"meshes: no {'/'.join(MESH_SUFFIXES)} files under {folder}")
    out, seen = [], {}
    for p in paths:
        rel = p.relative_to(folder)
        category = rel.parts[0] if len(rel.parts) > 1 else "object"
        k = seen[category] = seen.get(category, -1) + 1
        out.append((p, category, "test" if k % test_every == test_every - 1 else "train"))
    return out
