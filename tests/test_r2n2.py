"""The 3D-R2N2 reader: its camera against the Blender set-up worked by hand, and a
fixture in the real layout (RGBA renders, rendering_metadata.txt, OccNet-style split
lists and pointcloud.npz with loc/scale) whose ground truth projects onto the masks."""

import math

import numpy as np
import pytest
import torch

from svrecon.data import (
    R2N2Dataset,
    make_shape,
    r2n2_camera,
    render_shape,
    shape_samples,
    validate_item,
)

from .helpers import projection_scores, train_and_evaluate

SIZE, VIEWS = 64, 3


@pytest.mark.parametrize("azimuth, elevation, ratio", [(0, 0, 0.8), (135, 30, 0.7), (290, 20, 0.9)])
def test_camera_is_the_blender_setup(azimuth, elevation, ratio):
    K, pose = r2n2_camera(azimuth, elevation, ratio, (137, 137))
    R, t = pose[:, :3].double(), pose[:, 3].double()
    assert torch.allclose(R @ R.T, torch.eye(3, dtype=torch.float64), atol=1e-6)
    assert torch.det(R) > 0
    # Blender (z up): the camera at distance ratio * 1.75, elevation up, azimuth turning
    # clockwise seen from above (the renders' script rotates the object by -azimuth)
    a, e, d = math.radians(azimuth), math.radians(elevation), ratio * 1.75
    bx, by, bz = d * math.cos(e) * math.cos(a), -d * math.cos(e) * math.sin(a), d * math.sin(e)
    shapenet = torch.tensor([bx, bz, -by], dtype=torch.float64)  # Blender (x, y, z) -> ShapeNet
    centre = -R.T @ t
    assert torch.allclose(centre, shapenet, atol=1e-5)
    # it looks at the origin (OpenCV: along +z), and ShapeNet's up (+y) points up in the image
    assert torch.allclose(t[:2], torch.zeros(2, dtype=torch.float64), atol=1e-5) and t[2] > 0
    up = R @ torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    assert up[1] < 0
    assert math.isclose(float(K[0, 0]), 35 / 32 * 137, rel_tol=1e-6) and float(K[0, 2]) == 68.5


def write_r2n2(root, models=2, size=SIZE):
    from PIL import Image

    from svrecon.cameras import PerspectiveCamera

    rng = np.random.default_rng(1)
    synsets = {"03001627": "chair", "04379243": "table"}
    for synset, category in synsets.items():
        names = [f"m{k}" for k in range(models)]
        (root / "shapes" / synset).mkdir(parents=True)
        (root / "shapes" / synset / "train.lst").write_text("\n".join(names))
        for name in names:
            shape = make_shape(category, rng)
            folder = root / "ShapeNetRendering" / synset / name / "rendering"
            folder.mkdir(parents=True)
            rows, poses, Ks = [], [], []
            for v in range(VIEWS):
                az, el, ratio = 40.0 * v + 10, 25.0, 0.75 + 0.05 * v
                rows.append(f"{az} {el} 0 {ratio} 25")
                K, pose = r2n2_camera(az, el, ratio, (size, size))
                poses.append(pose)
                Ks.append(K)
            (folder / "rendering_metadata.txt").write_text("\n".join(rows) + "\n")
            camera = PerspectiveCamera.from_intrinsics(torch.stack(Ks), torch.stack(poses))
            light = torch.zeros(VIEWS, 27, dtype=torch.float64)
            light[:, [0, 9, 18]] = 0.9 / 0.2820948
            render = render_shape(shape, camera.to(torch.float64), size, light)
            for v in range(VIEWS):
                rgb = (render.rgb[v].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
                alpha = render.mask[v].numpy().astype(np.uint8) * 255
                Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(folder / f"{v:02d}.png")
            pts = shape_samples(shape, rng, num_surface=3000)["surface_points"]
            loc, scale = np.array([0.01, -0.02, 0.03]), 1.2
            out = root / "shapes" / synset / name
            out.mkdir()
            np.savez(out / "pointcloud.npz", points=(pts - loc) / scale, loc=loc, scale=scale)
    return root / "ShapeNetRendering", root / "shapes"


@pytest.fixture(scope="module")
def r2n2_roots(tmp_path_factory):
    return write_r2n2(tmp_path_factory.mktemp("r2n2"))


def test_items_and_projection(r2n2_roots):
    ds = R2N2Dataset(*r2n2_roots, views=range(VIEWS), num_points=None)
    assert len(ds) == 4 * VIEWS and ds.categories == ["chair", "table"]
    ious = []
    for i in range(len(ds)):
        item = ds[i]
        validate_item(item)
        iou, on_mask, covered = projection_scores(item, SIZE)
        assert on_mask > 0.99 and covered > 0.99
        ious.append(iou)
    print(f"R2N2 projection IoU: mean {np.mean(ious):.3f}")
    assert np.mean(ious) > 0.85


def test_malformed_files_give_clear_errors(r2n2_roots, tmp_path):
    import shutil

    renders, shapes = r2n2_roots
    with pytest.raises(FileNotFoundError, match="split"):
        R2N2Dataset(renders, shapes, "test")
    broken = tmp_path / "r"
    shutil.copytree(renders, broken)
    meta = broken / "03001627" / "m0" / "rendering" / "rendering_metadata.txt"
    meta.write_text("10 twenty 0 0.8 25\n")
    ds = R2N2Dataset(broken, shapes, views=[0], num_points=10)
    with pytest.raises(ValueError, match="rendering_metadata"):
        ds[0]
    meta.write_text("10 20\n")
    with pytest.raises(ValueError, match="rows of 5 numbers"):
        ds[0]
    meta.unlink()
    with pytest.raises(FileNotFoundError, match="metadata"):
        ds[0]


def test_a_model_trains_and_evaluates_on_it(r2n2_roots, tmp_path):
    train_and_evaluate(R2N2Dataset(*r2n2_roots, views=range(VIEWS), num_points=1000), tmp_path)
