"""The procedural dataset: exact primitive SDFs, determinism, renders that agree with
the analytic shapes, and the torch Dataset reader."""

import json
import math

import numpy as np
import pytest
import torch

from svrecon.data import (
    CATEGORIES,
    SEMANTIC_PARTS,
    ProceduralDataset,
    camera_from_batch,
    generate_procedural_dataset,
    make_shape,
    primitive_sdf,
    random_lighting,
    render_shape,
    view_camera,
)

from .reference.analytic import box_sdf

f64 = torch.float64


def surface_cloud(kind, params, n=400):
    """Dense points on a primitive's surface, parametrised independently of its SDF."""
    u = torch.linspace(0, 2 * math.pi, n, dtype=f64)[:-1]
    if kind == "cylinder":
        r, h = params
        y = torch.linspace(-h, h, n // 2, dtype=f64)
        side = torch.stack(
            [r * u.cos()[:, None].expand(-1, len(y)), y.expand(len(u), -1),
             r * u.sin()[:, None].expand(-1, len(y))], -1
        ).reshape(-1, 3)  # fmt: skip
        rad = torch.linspace(0, r, n // 4, dtype=f64)
        disc = torch.stack(
            [(rad[:, None] * u.cos()).reshape(-1), torch.zeros(len(rad) * len(u), dtype=f64),
             (rad[:, None] * u.sin()).reshape(-1)], -1
        )  # fmt: skip
        caps = [disc + torch.tensor([0, s * h, 0], dtype=f64) for s in (-1, 1)]
        return torch.cat([side, *caps])
    if kind == "capsule":
        r, h = params
        dirs = torch.randn(20000, 3, dtype=f64, generator=torch.Generator().manual_seed(0))
        dirs = dirs / dirs.norm(dim=-1, keepdim=True)
        ends = [dirs * r + torch.tensor([0, s * h, 0], dtype=f64) for s in (-1, 1)]
        y = torch.linspace(-h, h, n // 2, dtype=f64)
        side = torch.stack(
            [r * u.cos()[:, None].expand(-1, len(y)), y.expand(len(u), -1),
             r * u.sin()[:, None].expand(-1, len(y))], -1
        ).reshape(-1, 3)  # fmt: skip
        return torch.cat([*ends, side])
    if kind == "torus":
        big, small = params
        v = torch.linspace(0, 2 * math.pi, n // 2, dtype=f64)[:-1]
        ring = big + small * v.cos()
        return torch.stack(
            [(ring[None] * u.cos()[:, None]).reshape(-1),
             (small * v.sin()).expand(len(u), -1).reshape(-1),
             (ring[None] * u.sin()[:, None]).reshape(-1)], -1
        )  # fmt: skip
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind, params", [("cylinder", (0.3, 0.2)), ("capsule", (0.15, 0.25)), ("torus", (0.3, 0.08))]
)
def test_primitive_sdf_is_distance_to_surface(kind, params):
    cloud = surface_cloud(kind, params)
    g = torch.Generator().manual_seed(1)
    points = torch.rand(300, 3, dtype=f64, generator=g) * 1.2 - 0.6
    sdf = primitive_sdf(kind, torch.tensor(params, dtype=f64), points)
    nearest = torch.cdist(points, cloud).min(dim=1).values
    assert torch.allclose(sdf.abs(), nearest, atol=6e-3)
    # sign: inside points are those the parametrisation encloses
    if kind == "cylinder":
        inside = (points[:, [0, 2]].norm(dim=-1) < params[0]) & (points[:, 1].abs() < params[1])
        assert torch.equal(sdf < 0, inside)


def test_box_and_sphere_primitives_match_analytic():
    g = torch.Generator().manual_seed(2)
    points = torch.rand(500, 3, dtype=f64, generator=g) * 2 - 1
    half = torch.tensor([0.5, 0.3, 0.4], dtype=f64)
    assert torch.allclose(primitive_sdf("box", half, points), box_sdf(points, (0.5, 0.3, 0.4)))
    expected = points.norm(dim=-1) - 0.4
    assert torch.allclose(primitive_sdf("sphere", torch.tensor([0.4], dtype=f64), points), expected)


def test_shape_surface_gradients_are_unit_normals():
    """On the exact surface the SDF's gradient must be the unit normal, not the zero
    subgradient that a naive box formula gives there."""
    shape = make_shape("table", np.random.default_rng(3))
    part = shape.parts[0]
    top = torch.tensor([[0.0, 0.0, 0.0]], dtype=f64)
    top[0, 1] = float(part.params[1])  # the top face of the first part, in its frame
    world = (top @ torch.from_numpy(part.rotation).T + torch.from_numpy(part.translation)) * (
        shape.scale
    )
    world.requires_grad_()
    (grad,) = torch.autograd.grad(shape.sdf(world).sum(), world)
    assert grad.norm().item() == pytest.approx(1.0, abs=1e-9)


def test_every_category_builds_and_fits_the_bounds():
    rng = np.random.default_rng(0)
    axis = torch.linspace(-0.6, 0.6, 49, dtype=f64)
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    counts = {}
    for category in CATEGORIES:
        for _ in range(4):
            shape = make_shape(category, rng)
            inside = shape.sdf(grid) < 0
            assert inside.any(), category
            assert grid[inside].norm(dim=-1).max() < 0.56
            # nothing inside at the boundary of the evaluation box
            assert (shape.sdf(grid[(grid.abs() > 0.59).any(-1)]) > 0).all()
            counts.setdefault(category, set()).add(len(shape.parts))
    assert all(len(c) >= 1 for c in counts.values())
    assert any(len(c) > 1 for c in counts.values())  # part counts vary
    with pytest.raises(ValueError, match="category"):
        make_shape("sofa", rng)


#: What each category's generator builds, counted by hand from its description: the
#: number of primitives of each semantic part (a set where the count varies).
PART_COUNTS = {
    "chair": {"seat": {1}, "back": {1}, "leg": {4}, "arm": {0, 2}},
    "table": {"top": {1}, "leg": {2, 4}},
    "airplane": {"body": {1}, "wing": {1}, "tail": {2}, "engine": {0, 2, 4}},
    "car": {"body": {1}, "cabin": {1}, "wheel": {4}},
    "lamp": {"base": {1}, "tube": {1, 2}, "shade": {1}},
    "mug": {"body": {1, 2}, "handle": {1}},
}


@pytest.mark.parametrize("category", CATEGORIES)
def test_semantic_parts_group_the_repeated_primitives(category):
    rng = np.random.default_rng(3)
    for _ in range(8):
        shape = make_shape(category, rng)
        names = [p.name for p in shape.parts]
        assert shape.semantic_parts == SEMANTIC_PARTS[category]
        for part, allowed in PART_COUNTS[category].items():
            assert names.count(part) in allowed, (part, names)
        # a point at the centre of a primitive that no other one covers there gets
        # that primitive's semantic part; the legs stand alone (a torus wheel's centre is
        # its hole)
        centres = torch.tensor(np.stack([p.translation for p in shape.parts])) * shape.scale
        own = torch.tensor([SEMANTIC_PARTS[category].index(n) for n in names])
        alone = shape.part_index(centres) == torch.arange(len(names))
        assert all(alone[i] for i, n in enumerate(names) if n == "leg")
        assert torch.equal(shape.semantic_index(centres)[alone], own[alone])
    shape.parts[0].name = "propeller"
    with pytest.raises(ValueError, match="propeller"):
        shape.semantic_index(centres)


def render_one(category, seed, size=64):
    rng = np.random.default_rng(seed)
    shape = make_shape(category, rng)
    azimuth = torch.tensor([0.7, 2.5], dtype=f64)
    elevation = torch.tensor([0.3, -0.1], dtype=f64)
    camera = view_camera(azimuth, elevation, size)
    light = torch.from_numpy(
        np.stack([random_lighting(rng, np.array([0.0, 0.0, 1.0])) for _ in range(2)])
    )
    return shape, camera, render_shape(shape, camera, size, light)


@pytest.mark.parametrize("category", CATEGORIES)
def test_mask_matches_analytic_silhouette(category):
    """The traced mask against rays densely sampled (2000 steps) through the SDF."""
    shape, camera, render = render_one(category, seed=CATEGORIES.index(category))
    rays, _ = camera.to(f64).rays(64, 64).intersect_sphere(0.6)
    t = torch.linspace(0, 1, 2000, dtype=f64)
    silhouettes = []
    for chunk in range(0, 64 * 64, 512):
        near, far = rays.near[:, chunk : chunk + 512], rays.far[:, chunk : chunk + 512]
        dist = near[..., None] + (far - near)[..., None] * t
        pts = (
            rays.origins[:, chunk : chunk + 512, None]
            + dist[..., None] * (rays.directions[:, chunk : chunk + 512, None])
        )
        silhouettes.append((shape.sdf(pts) < 0).any(-1))
    silhouette = torch.cat(silhouettes, dim=1).reshape(2, 64, 64)
    inter = (silhouette & render.mask).sum().item()
    union = (silhouette | render.mask).sum().item()
    assert inter / union > 0.99


@pytest.mark.parametrize("category", ["chair", "car", "mug"])
def test_depth_and_normals_agree_with_the_analytic_surface(category):
    shape, camera, render = render_one(category, seed=11)
    camera = camera.to(f64)
    v, s = 2, 64
    pixels = torch.stack(
        torch.meshgrid(torch.arange(s, dtype=f64) + 0.5, torch.arange(s, dtype=f64) + 0.5,
                       indexing="xy"), -1
    ).reshape(1, -1, 2).expand(v, -1, -1)  # fmt: skip
    depth = render.depth.reshape(v, -1).to(f64)
    mask = render.mask.reshape(v, -1)
    points = camera.unproject(pixels, depth)[mask]
    assert shape.sdf(points).abs().max() < 1e-4
    # central-difference gradient of the analytic SDF, independent of autograd
    h = 1e-6
    eye = torch.eye(3, dtype=f64) * h
    fd = torch.stack([(shape.sdf(points + e) - shape.sdf(points - e)) / (2 * h) for e in eye], -1)
    smooth = (fd.norm(dim=-1) - 1).abs() < 1e-4  # away from edges and corners
    assert smooth.float().mean() > 0.95
    normals = render.normals_world.permute(0, 2, 3, 1).reshape(v, -1, 3)[mask].to(f64)
    assert torch.allclose(normals[smooth], fd[smooth], atol=1e-3)
    cam_normals = render.normals_camera.permute(0, 2, 3, 1).reshape(v, -1, 3)[mask].to(f64)
    R = camera.R[:, None].expand(-1, s * s, -1, -1)[mask]
    assert torch.allclose(cam_normals, (R @ normals[..., None])[..., 0], atol=1e-9)
    # background pixels: white, depth 0, no part
    assert (render.rgb.permute(0, 2, 3, 1)[~render.mask] == 1).all()
    assert (render.depth[~render.mask] == 0).all() and (
        render.part_labels[~render.mask] == -1
    ).all()


SMALL = {"shapes_per_category": {"train": 1, "test": 1}, "views": {"train": 1, "test": 2}}


def test_dataset_is_byte_identical_for_a_seed(tmp_path):
    kw = dict(SMALL, image_size=32, categories=("chair", "mug"), progress=False)
    generate_procedural_dataset(tmp_path / "a", seed=4, **kw)
    generate_procedural_dataset(tmp_path / "b", seed=4, **kw)
    generate_procedural_dataset(tmp_path / "c", seed=5, **kw)
    files = sorted(p.name for p in (tmp_path / "a").glob("*.npz"))
    assert len(files) == 4
    differs = False
    for name in files:
        with np.load(tmp_path / "a" / name) as a, np.load(tmp_path / "b" / name) as b:
            with np.load(tmp_path / "c" / name) as c:
                for key in a.files:
                    assert np.isfinite(a[key]).all() if a[key].dtype.kind == "f" else True
                    assert a[key].dtype == b[key].dtype
                    assert a[key].tobytes() == b[key].tobytes(), (name, key)
                differs |= a["rgb"].tobytes() != c["rgb"].tobytes()
    assert differs


def test_dataset_reader_single_and_multiview(tmp_path):
    generate_procedural_dataset(
        tmp_path, image_size=32, categories=("car", "mug"), progress=False, **SMALL
    )
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [s["category"] for s in manifest["shapes"]] == ["car", "mug", "car", "mug"]
    single = ProceduralDataset(tmp_path, "test")
    multi = ProceduralDataset(tmp_path, "test", multiview=True)
    assert len(single) == 4 and len(multi) == 2 and len(ProceduralDataset(tmp_path)) == 2
    item = single[1]
    assert item["image"].shape == (3, 32, 32) and item["image"].max() <= 1
    assert item["view"].item() == 1 and item["label"].item() == CATEGORIES.index("car")
    assert multi[0]["image"].shape == (2, 3, 32, 32)
    assert torch.equal(multi[0]["image"][1], item["image"])
    batch = torch.utils.data.default_collate([single[0], single[2]])
    camera = camera_from_batch(batch)
    # ground-truth surface points project inside the image, within a pixel of the mask
    # (no sub-pixel parts in cars and mugs at 32 x 32; a lamp's pole can fall between
    # pixel centres)
    pixels = camera.project(batch["surface_points"])
    assert ((pixels > 0) & (pixels < 32)).all()
    cols, rows = pixels[..., 0].long(), pixels[..., 1].long()
    grown = torch.nn.functional.max_pool2d(batch["mask"][:, None].float(), 3, 1, 1)[:, 0]
    on_mask = grown[torch.arange(2)[:, None], rows, cols]
    assert on_mask.mean() > 0.99
    # surface samples lie on the surface with unit normals
    assert (batch["surface_normals"].norm(dim=-1) - 1).abs().max() < 1e-5
    with pytest.raises(ValueError, match="other settings"):
        generate_procedural_dataset(tmp_path, image_size=48, categories=("car", "mug"), **SMALL)
    with pytest.raises(FileNotFoundError, match="manifest"):
        ProceduralDataset(tmp_path / "missing")
    with pytest.raises(ValueError, match="split"):
        ProceduralDataset(tmp_path, "val")


def test_true_shading_times_albedo_is_the_stored_image(tiny_procedural):
    from svrecon.data import ProceduralDataset, true_shading

    data = ProceduralDataset(tiny_procedural, "train")
    batch = torch.utils.data.default_collate([data[i] for i in range(len(data))])
    shading = true_shading(batch)
    m = batch["mask"][:, None].expand_as(shading)
    rendered = (batch["albedo"] * shading).clamp(0, 1)
    # On the object the stored image is albedo * shading, quantised to 8 bits.
    assert (rendered - batch["image"])[m].abs().max() <= 0.5 / 255 + 1e-5
    assert (shading[~m] == 0).all() and (shading[m] > 0).float().mean() > 0.9
