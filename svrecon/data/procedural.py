"""The library's own procedural dataset: part-based shapes with analytic SDFs,
rendered by svrecon's sphere tracer under random spherical-harmonics lighting.

:func:`generate_procedural_dataset` writes one ``.npz`` per shape and a
``manifest.json``; :class:`ProceduralDataset` reads them as a torch ``Dataset``.
Everything is a function of ``(seed, shape index)``, so the arrays are byte-identical
across runs. Cameras follow NMR/ShapeNet (distance 2.732, 30 degree field of view),
looking at the origin with +y up, OpenCV frame (``docs/conventions.md``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..cameras import PerspectiveCamera, look_at
from ..checks import check_shape
from ..mesh import extract_mesh, sample_surface
from ..renderers import SphereTracer, sh_shading
from ..renderers.shading import SH_CONSTANTS
from .normals import estimated_normals
from .shapes import CATEGORIES, PartShape, make_shape

__all__ = [
    "CAMERA_DISTANCE",
    "ELEVATION_PRIORS",
    "FOCAL_FRACTION",
    "ProceduralDataset",
    "ProceduralRender",
    "camera_from_batch",
    "generate_procedural_dataset",
    "near_and_uniform",
    "random_lighting",
    "render_shape",
    "shape_samples",
    "true_shading",
    "view_camera",
]

FORMAT_VERSION = 1
CAMERA_DISTANCE = 2.732
FOCAL_FRACTION = 1.8660254
BOUNDING_RADIUS = 0.6
#: Elevation range (degrees) of each category's camera prior; azimuth is uniform.
ELEVATION_PRIORS = {
    "chair": (10.0, 40.0),
    "table": (15.0, 45.0),
    "airplane": (-10.0, 40.0),
    "car": (5.0, 35.0),
    "lamp": (0.0, 30.0),
    "mug": (10.0, 45.0),
}


def view_camera(
    azimuth: torch.Tensor,
    elevation: torch.Tensor,
    image_size: int,
    distance: float = CAMERA_DISTANCE,
) -> PerspectiveCamera:
    """Cameras ``[V]`` at ``distance`` looking at the origin, +y up. Azimuth 0 looks at
    the front (from +z); positive elevation looks down. Angles in radians ``[V]``."""
    eye = distance * torch.stack(
        [elevation.cos() * azimuth.sin(), elevation.sin(), elevation.cos() * azimuth.cos()], -1
    )
    up = torch.tensor([0.0, 1.0, 0.0], dtype=eye.dtype).expand_as(eye)
    pose = look_at(eye, torch.zeros_like(eye), up)
    return PerspectiveCamera.from_focal_fraction(FOCAL_FRACTION, (image_size, image_size), pose)


def random_lighting(rng: np.random.Generator, toward: np.ndarray) -> np.ndarray:
    """SH coefficients ``[27]`` (colour-major): ambient 0.45-0.65, a directional term
    0.35-0.55 from a light near ``toward`` (unit, world frame) and a faint band 2, with
    a slight colour tint."""
    direction = toward + np.array([0.0, 0.8, 0.0]) + rng.normal(0, 0.5, 3)
    direction /= np.linalg.norm(direction)
    c0, c1, c2 = SH_CONSTANTS[:3]
    base = np.zeros(9)
    base[0] = rng.uniform(0.45, 0.65) / c0
    base[1:4] = rng.uniform(0.35, 0.55) * direction[[2, 1, 0]] / c1  # basis order z, y, x
    base[4:] = rng.normal(0, 0.03, 5) / c2
    tint = 1 + rng.uniform(-0.08, 0.08, 3)
    return (tint[:, None] * base[None]).reshape(27)


@dataclass
class ProceduralRender:
    """One batch of renders, each ``[V, ...]`` (``H = W``).

    ``rgb`` ``[V, 3, H, W]`` in ``[0, 1]`` on a white background; ``mask`` ``[V, H, W]``;
    ``depth`` camera z-depth (0 off the shape); ``normals_world`` / ``normals_camera``
    ``[V, 3, H, W]`` unit outward normals (0 off the shape); ``part_labels``
    ``[V, H, W]`` (-1 off the shape); ``albedo`` ``[V, 3, H, W]``.
    """

    rgb: torch.Tensor
    mask: torch.Tensor
    depth: torch.Tensor
    normals_world: torch.Tensor
    normals_camera: torch.Tensor
    part_labels: torch.Tensor
    albedo: torch.Tensor


def render_shape(
    shape: PartShape, camera: PerspectiveCamera, image_size: int, lighting: torch.Tensor
) -> ProceduralRender:
    """Render ``shape`` from each camera ``[V]`` with SH ``lighting`` ``[V, 27]`` by
    sphere tracing its analytic SDF (float64)."""
    camera = camera.to(torch.float64)
    v, s = len(camera), image_size
    rays, _ = camera.rays(s, s).intersect_sphere(BOUNDING_RADIUS)

    out = SphereTracer(max_steps=200, tolerance=1e-6)(shape, rays)
    hit = out.mask
    normals = torch.where(hit[..., None], out.normals.detach(), 0.0)
    points = out.points.detach()
    albedo = torch.where(hit[..., None], shape.albedo(points), 0.0)
    shading = sh_shading(normals, lighting.to(torch.float64))
    rgb = torch.where(hit[..., None], (albedo * shading).clamp(0, 1), 1.0)
    normals_camera = normals @ camera.R.transpose(1, 2)
    parts = torch.where(hit, shape.part_index(points), -1)

    def image(x):
        return x.reshape(v, s, s, -1).permute(0, 3, 1, 2)

    return ProceduralRender(
        rgb=image(rgb),
        mask=hit.reshape(v, s, s),
        depth=torch.where(hit, out.depth.detach(), 0.0).reshape(v, s, s),
        normals_world=image(normals),
        normals_camera=image(normals_camera),
        part_labels=parts.reshape(v, s, s),
        albedo=image(albedo),
    )


def near_and_uniform(
    surface: np.ndarray, rng: np.random.Generator, n: int, near_sigma: float = 0.02
) -> np.ndarray:
    """``n`` sample positions ``[n, 3]``: half surface points (drawn with replacement
    from ``surface`` ``[Ns, 3]``) offset by ``N(0, near_sigma)``, half uniform in the
    ``[-0.6, 0.6]^3`` box (DISN's and the procedural set's mixture)."""
    near = surface[rng.integers(0, len(surface), n // 2)] + rng.normal(0, near_sigma, (n // 2, 3))
    return np.concatenate([near, rng.uniform(-0.6, 0.6, (n - n // 2, 3))])


def shape_samples(
    shape: PartShape,
    rng: np.random.Generator,
    num_surface: int = 4096,
    num_sdf: int = 4096,
    num_occupancy: int = 4096,
    near_sigma: float = 0.02,
) -> dict[str, np.ndarray]:
    """Ground-truth samples of ``shape``: surface points with normals (marching cubes at
    96^3, then projected onto the exact surface by Newton steps on the analytic SDF);
    SDF samples (half near the surface, ``N(0, near_sigma)`` offsets, half uniform in
    the ``[-0.6, 0.6]^3`` box) with exact SDF values; occupancy samples (same mix)."""
    mesh = extract_mesh(shape, resolution=96, bounds=(-0.6, 0.6), dtype=torch.float64)
    seed = int(rng.integers(2**31))
    points, _ = sample_surface(mesh, num_surface, seed=seed, dtype=torch.float64)
    for _ in range(3):
        points = points.detach().requires_grad_()
        value = shape.sdf(points)
        (grad,) = torch.autograd.grad(value.sum(), points)
        points = points - value[:, None] * grad / (grad * grad).sum(-1, keepdim=True).clamp_min(
            1e-12
        )
    points = points.detach().requires_grad_()
    (grad,) = torch.autograd.grad(shape.sdf(points).sum(), points)
    normals = grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    points = points.detach()
    if not (torch.isfinite(points).all() and (normals.norm(dim=-1) > 0.5).all()):
        raise RuntimeError("shape_samples: the SDF has a zero gradient on its surface")

    sdf_points, occ_points = (torch.from_numpy(near_and_uniform(points.numpy(), rng, n, near_sigma))
                              for n in (num_sdf, num_occupancy))  # fmt: skip
    with torch.no_grad():
        sdf_values = shape.sdf(sdf_points)
        occupancy = shape.sdf(occ_points) < 0
    return {
        "surface_points": points.numpy().astype(np.float32),
        "surface_normals": normals.numpy().astype(np.float32),
        "sdf_points": sdf_points.numpy().astype(np.float32),
        "sdf_values": sdf_values.numpy().astype(np.float32),
        "occupancy_points": occ_points.numpy().astype(np.float32),
        "occupancy": occupancy.numpy(),
    }


def _shape_record(seed: int, index: int, category: str, views: int, image_size: int) -> dict:
    rng = np.random.default_rng([seed, index])
    shape = make_shape(category, rng)
    lo, hi = ELEVATION_PRIORS[category]
    azimuth = torch.from_numpy(rng.uniform(0, 2 * math.pi, views))
    elevation = torch.from_numpy(np.deg2rad(rng.uniform(lo, hi, views)))
    camera = view_camera(azimuth, elevation, image_size)
    towards = camera.camera_center / CAMERA_DISTANCE
    lighting = np.stack([random_lighting(rng, towards[i].numpy()) for i in range(views)])
    render = render_shape(shape, camera, image_size, torch.from_numpy(lighting))
    record = {
        "rgb": (render.rgb * 255).round().to(torch.uint8).numpy(),
        "mask": render.mask.numpy(),
        "depth": render.depth.float().numpy(),
        "normals_world": render.normals_world.float().numpy(),
        "normals_camera": render.normals_camera.float().numpy(),
        "part_labels": render.part_labels.to(torch.int8).numpy(),
        "albedo": render.albedo.float().numpy(),
        "intrinsics": camera.K.float().numpy(),
        "pose": camera.pose.float().numpy(),
        "azimuth": azimuth.float().numpy(),
        "elevation": elevation.float().numpy(),
        "lighting": lighting.astype(np.float32),
        "label": np.array(CATEGORIES.index(category)),
        "scale": np.array(shape.scale),
    }
    record.update(shape_samples(shape, rng))
    return record


def true_shading(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The generator's diffuse shading ``[B, 3, H, W]`` of a procedural batch: the
    Lambertian SH shading of its world normals under its ``lighting``
    (``image = albedo * shading`` on the object, before quantisation and clipping),
    0 off the object; the ground truth an intrinsic decomposition is scored against.

    Needs ``normals_world`` ``[B, 3, H, W]``, ``lighting`` ``[B, 27]`` and ``mask``
    ``[B, H, W]``.
    """
    normals = batch["normals_world"].movedim(1, -1)
    check_shape("normals_world", normals, ("B", "H", "W", 3))
    shading = sh_shading(normals, batch["lighting"].to(normals.dtype)).movedim(-1, 1)
    return torch.where(batch["mask"].bool()[:, None], shading, 0.0)


def generate_procedural_dataset(
    root: str | Path,
    shapes_per_category: dict[str, int] | None = None,
    views: dict[str, int] | None = None,
    image_size: int = 64,
    seed: int = 0,
    categories: Sequence[str] = CATEGORIES,
    progress: bool = True,
) -> Path:
    """Write the dataset to ``root`` and return the manifest path.

    Args:
        shapes_per_category: shapes per split and category, default
            ``{"train": 100, "test": 10}``.
        views: rendered views per shape and split, default ``{"train": 1, "test": 3}``
            (single-view training).
        image_size: square image size in pixels.
        seed: every array is a function of ``(seed, shape index)``.

    An existing manifest with the same settings is reused; different settings raise.
    """
    shapes_per_category = shapes_per_category or {"train": 100, "test": 10}
    views = views or {"train": 1, "test": 3}
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown:
        raise ValueError(f"categories: unknown {unknown}; expected some of {CATEGORIES}")
    if set(views) != set(shapes_per_category):
        raise ValueError("views, shapes_per_category: expected the same split names")
    root = Path(root)
    settings = {
        "format": FORMAT_VERSION,
        "seed": seed,
        "image_size": image_size,
        "categories": list(categories),
        "shapes_per_category": shapes_per_category,
        "views": views,
    }
    manifest_path = root / "manifest.json"
    if manifest_path.exists():
        existing = json.loads(manifest_path.read_text())
        if existing["settings"] != settings:
            raise ValueError(
                f"root: {root} holds a dataset with other settings ({existing['settings']})"
            )
        return manifest_path
    root.mkdir(parents=True, exist_ok=True)
    jobs, index = [], 0
    for split, count in shapes_per_category.items():
        for k in range(count):
            for category in categories:
                jobs.append((index, split, category, f"{split}_{k:04d}_{category}.npz"))
                index += 1
    entries = []
    for index, split, category, name in tqdm(jobs, desc="rendering shapes", disable=not progress):
        record = _shape_record(seed, index, category, views[split], image_size)
        np.savez_compressed(root / name, **record)
        entries.append({"index": index, "split": split, "category": category, "file": name})
    manifest = {"settings": settings, "shapes": entries}
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return manifest_path


_PER_VIEW = (
    "rgb", "mask", "depth", "normals_world", "normals_camera", "part_labels", "albedo",
    "intrinsics", "pose", "azimuth", "elevation", "lighting",
)  # fmt: skip


class ProceduralDataset(Dataset):
    """Reads a dataset written by :func:`generate_procedural_dataset`.

    ``multiview=False``: one item per (shape, view); ``multiview=True``: one item per
    shape with every view stacked ``[V, ...]``. An item is a dict of tensors:
    ``image`` ``[3, H, W]`` float in ``[0, 1]``, ``mask`` ``[H, W]`` bool, ``depth``,
    ``normals_world``/``normals_camera`` ``[3, H, W]``, ``part_labels``, ``albedo``,
    ``intrinsics`` ``[3, 3]``, ``pose`` ``[3, 4]``, ``azimuth``, ``elevation``,
    ``lighting`` ``[27]``, ``label``, and per shape ``surface_points``/``surface_normals``
    ``[Ns, 3]``, ``sdf_points`` ``[Nd, 3]``/``sdf_values`` ``[Nd]``, ``occupancy_points``
    ``[No, 3]``/``occupancy`` ``[No]``, ``shape_index``, ``view``, and
    ``normals_estimated`` ``[3, H, W]``: the camera normals corrupted as a monocular
    normal estimator errs (:func:`~svrecon.data.normals.estimated_normals`; the
    "off-the-shelf" normals ShapeClipper supervises with), deterministic per view.
    """

    def __init__(self, root: str | Path, split: str = "train", multiview: bool = False):
        self.root = Path(root)
        manifest_path = self.root / "manifest.json"
        if not manifest_path.exists():
            raise FileNotFoundError(
                f"root: no manifest.json in {self.root}; write one with "
                "generate_procedural_dataset (or `python -m svrecon data`)"
            )
        manifest = json.loads(manifest_path.read_text())
        self.settings = manifest["settings"]
        if split not in self.settings["views"]:
            raise ValueError(
                f"split: expected one of {sorted(self.settings['views'])}, got {split!r}"
            )
        self.shapes = [s for s in manifest["shapes"] if s["split"] == split]
        self.views = self.settings["views"][split]
        self.multiview = multiview

    def __len__(self) -> int:
        return len(self.shapes) * (1 if self.multiview else self.views)

    @property
    def categories(self) -> list[str]:
        """Category names; an item's ``label`` indexes this list (a mesh collection's
        own, :mod:`~svrecon.data.mesh_collection`)."""
        if self.settings.get("kind") == "meshes":
            return list(self.settings["categories"])
        return list(CATEGORIES)

    def evaluation_indices(self) -> list[int]:
        """One item per shape (its first view), the items a model is evaluated on."""
        return list(range(0, len(self), 1 if self.multiview else self.views))

    def part_shape(self, i: int) -> PartShape:
        """The analytic shape of item ``i`` (its parts, SDF and part albedo), drawn again
        from the dataset seed and shape index exactly as it was generated; e.g. for
        :func:`~svrecon.data.coloured_voxels`."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} items")
        if self.settings.get("kind") == "meshes":
            raise ValueError("dataset: a mesh collection has no analytic part shapes")
        shape_i = i % len(self) if self.multiview else (i % len(self)) // self.views
        entry = self.shapes[shape_i]
        rng = np.random.default_rng([self.settings["seed"], entry["index"]])
        return make_shape(entry["category"], rng)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        shape_i, view = (i, None) if self.multiview else divmod(i, self.views)
        entry = self.shapes[shape_i]
        with np.load(self.root / entry["file"]) as data:
            item = {}
            for key in data.files:
                value = torch.from_numpy(np.array(data[key]))
                if key in _PER_VIEW and view is not None:
                    value = value[view]
                item[key] = value
        item["image"] = item.pop("rgb").float() / 255
        item["label"] = item["label"].long()
        item["shape_index"] = torch.tensor(entry["index"])
        item["view"] = torch.tensor(-1 if view is None else view)
        if "normals_camera" in item:
            item["normals_estimated"] = self._estimated_normals(item, entry["index"], view)
        return item

    def _estimated_normals(self, item: dict, index: int, view: int | None) -> torch.Tensor:
        """The "off-the-shelf" normals of a view (:func:`estimated_normals`), a function
        of the dataset seed, the shape and the view."""
        normals, masks = item["normals_camera"], item["mask"]
        if view is not None:
            normals, masks = normals[None], masks[None]
        out = []
        for v in range(len(masks)):
            k = v if view is None else view
            seed = (self.settings["seed"] * 1_000_003 + index) * 1009 + k
            g = torch.Generator().manual_seed(seed)
            out.append(estimated_normals(normals[v], masks[v], g))
        return out[0] if view is not None else torch.stack(out)


def camera_from_batch(batch: dict[str, torch.Tensor]) -> PerspectiveCamera:
    """The batch's cameras from its ``intrinsics`` ``[B, 3, 3]`` and ``pose`` ``[B, 3, 4]``."""
    return PerspectiveCamera.from_intrinsics(batch["intrinsics"], batch["pose"])
