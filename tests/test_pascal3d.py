"""The PASCAL3D+ reader: its camera against the dataset's own ``project_3d.m`` worked
line by line here, and a fixture in the real layout (MATLAB ``record`` structs with
their field names, JPEG photographs, ``.off`` CAD models, VOC-style list files) whose
instance masks are ray cast here through ``project_3d.m``'s camera."""

import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat

from svrecon.cameras import PerspectiveCamera
from svrecon.data import Pascal3DDataset, pascal3d_camera, validate_item

from .helpers import projection_scores, ray_hits, train_and_evaluate
from .test_pix3d import l_shape

SIZE = 64


def project_3d(x3d, v):
    """``project_3d.m`` of the PASCAL3D+ toolbox, line by line (MATLAB pixels)."""
    a, e, theta = (math.radians(v[k]) for k in ("azimuth", "elevation", "theta"))
    d, f, M = v["distance"], v["focal"], v["viewport"]
    C = np.array([d * math.cos(e) * math.sin(a), -d * math.cos(e) * math.cos(a), d * math.sin(e)])
    a, e = -a, -(math.pi / 2 - e)
    Rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    Rx = np.array([[1, 0, 0], [0, math.cos(e), -math.sin(e)], [0, math.sin(e), math.cos(e)]])
    R = Rx @ Rz
    P = np.diag([M * f, M * f, -1.0]) @ np.concatenate([R, (-R @ C)[:, None]], 1)
    x = P @ np.concatenate([x3d, np.ones((len(x3d), 1))], 1).T
    x = x[:2] / x[2]
    R2d = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    x = (R2d @ x).T
    x[:, 1] = -x[:, 1]
    return x + np.array([v["px"], v["py"]]), C, R


def cast_mask(mesh, v, w, h):
    """The mesh's silhouette through ``project_3d.m``'s camera, inverted by hand: pixel
    (MATLAB) -> undo the flip, the principal point and theta -> the camera ray."""
    _, C, R = project_3d(np.zeros((1, 3)), v)
    u, y = np.meshgrid(np.arange(w) + 1.0, np.arange(h) + 1.0)  # MATLAB pixel centres
    x = np.stack([u - v["px"], -(y - v["py"])], -1).reshape(-1, 2)
    th = math.radians(v["theta"])
    x = x @ np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])  # R2d^T
    Mf = v["viewport"] * v["focal"]
    rays = np.concatenate([x / Mf, -np.ones((len(x), 1))], 1)  # camera looks along -z
    return ray_hits(mesh, C, rays @ R).reshape(h, w)


def viewpoint(n):
    return {"azimuth": 30.0 + 100 * n, "elevation": 10.0 + 8 * n, "theta": 6.0 * n - 5,
            "distance": 3.0 + 0.3 * n, "focal": 1.0, "px": 70.0 + 5 * n, "py": 52.0,
            "viewport": 220.0 + 10 * n}  # fmt: skip


@pytest.mark.parametrize("n", range(4))
def test_camera_is_project_3d(n):
    v = viewpoint(n)
    points = np.random.default_rng(n).uniform(-0.5, 0.5, (50, 3))
    truth = project_3d(points, v)[0]
    K, pose = pascal3d_camera(*(v[k] for k in ("azimuth", "elevation", "theta", "distance",
                                               "focal", "px", "py", "viewport")))  # fmt: skip
    R = pose[:, :3]
    assert np.allclose(R @ R.T, np.eye(3)) and np.linalg.det(R) > 0
    camera = PerspectiveCamera.from_intrinsics(
        torch.from_numpy(K)[None], torch.from_numpy(pose)[None]
    )
    uv = camera.project(torch.from_numpy(points)[None])[0].numpy()
    assert np.allclose(uv + 0.5, truth, atol=1e-8)  # MATLAB's centres are svrecon's + 1/2
    assert (camera.world_to_camera(torch.from_numpy(points)[None])[0, :, 2] > 0).all()


def _struct_array(dicts, fields):
    out = np.zeros((1, len(dicts)), dtype=[(f, "O") for f in fields])
    for k, d in enumerate(dicts):
        for f in fields:
            out[0, k][f] = d[f]
    return out


def write_pascal3d(root, rng):
    meshes = {"chair": l_shape(), "car": l_shape()}
    meshes["car"].apply_scale((1.4, 0.7, 0.8))
    for cat, mesh in meshes.items():
        (root / "CAD" / cat).mkdir(parents=True)
        mesh.export(root / "CAD" / cat / "01.off")
    images = [("chair", "imagenet", "n0001", (150, 110), [0, 1]),
              ("chair", "imagenet", "n0002", (130, 120), [2]),
              ("car", "pascal", "2008_000001", (160, 100), [3])]  # fmt: skip
    fields = ("class", "bbox", "viewpoint", "cad_index", "truncated", "occluded", "difficult")
    for cat, source, name, (w, h), views in images:
        objects, instances = [], np.zeros((h, w), np.uint8)
        for k, n in enumerate(views):
            v = viewpoint(n)
            if k == 1:  # a second object whose viewpoint annotation failed (distance 0)
                objects.append({"class": cat, "bbox": np.array([1.0, 1, 5, 5]),
                                "viewpoint": {**v, "distance": 0.0}, "cad_index": 1,
                                "truncated": 0, "occluded": 0, "difficult": 0})  # fmt: skip
                continue
            mask = cast_mask(meshes[cat], v, w, h)
            instances[mask] = k + 1
            rows, cols = np.nonzero(mask)
            bbox = np.array([cols.min() + 1, rows.min() + 1, cols.max() + 1, rows.max() + 1.0])
            objects.append({"class": cat, "bbox": bbox, "viewpoint": v, "cad_index": 1,
                            "truncated": 0, "occluded": int(n == 2), "difficult": 0})  # fmt: skip
        record = {"filename": f"{name}.JPEG", "database": "ImageNet",
                  "size": {"width": w, "height": h, "depth": 3},
                  "objects": _struct_array(objects, fields)}  # fmt: skip
        folder = f"{cat}_{source}"
        for sub in ("Annotations", "Images", "masks"):
            (root / sub / folder).mkdir(parents=True, exist_ok=True)
        savemat(root / "Annotations" / folder / f"{name}.mat", {"record": record})
        photo = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        photo[instances > 0] = (30, 90, 200)
        ext = ".JPEG" if source == "imagenet" else ".jpg"
        Image.fromarray(photo).save(root / "Images" / folder / f"{name}{ext}", quality=95)
        Image.fromarray(instances, "L").save(root / "masks" / folder / f"{name}.png")
    (root / "Image_sets").mkdir()
    (root / "Image_sets" / "chair_imagenet_val.txt").write_text("n0002\n")
    return root


@pytest.fixture(scope="module")
def pascal_root(tmp_path_factory):
    return write_pascal3d(tmp_path_factory.mktemp("pascal3d"), np.random.default_rng(0))


def test_items_and_projection(pascal_root):
    ds = Pascal3DDataset(pascal_root, mask_root=pascal_root / "masks", num_points=20_000)
    assert ds.categories == ["car", "chair"] and len(ds) == 3  # the distance-0 object skipped
    ious = []
    for i in range(len(ds)):
        item = ds[i]
        validate_item(item)
        assert not item["mask_from_cad"]
        iou, on_mask, covered = projection_scores(item, SIZE)
        assert on_mask > 0.98 and covered > 0.98, (i, on_mask, covered)
        ious.append(iou)
    print(f"PASCAL3D+ projection IoU: mean {np.mean(ious):.3f}")
    assert np.mean(ious) > 0.85
    assert [int(ds[i]["shape_index"]) for i in range(3)] == [0, 1, 1]


def test_cad_silhouettes_stand_in_for_missing_masks(pascal_root):
    given = Pascal3DDataset(pascal_root, mask_root=pascal_root / "masks", num_points=10)
    drawn = Pascal3DDataset(pascal_root, num_points=10)
    for i in range(len(given)):
        a, b = given[i]["mask"], drawn[i]["mask"]
        assert drawn[i]["mask_from_cad"]
        assert float((a & b).sum() / (a | b).sum()) > 0.93
        assert torch.equal(given[i]["intrinsics"], drawn[i]["intrinsics"])


def test_splits_filters_and_errors(pascal_root, tmp_path):
    split = pascal_root / "Image_sets" / "chair_imagenet_val.txt"
    ds = Pascal3DDataset(pascal_root, categories=["chair"], split=split, num_points=10)
    assert [o[2] for o in ds.objects] == ["n0002"]
    assert len(Pascal3DDataset(pascal_root, skip_occluded=True, num_points=10)) == 2
    assert len(Pascal3DDataset(pascal_root, sources="pascal", num_points=10)) == 1
    with pytest.raises(ValueError, match="sources"):
        Pascal3DDataset(pascal_root, sources=["coco"])
    with pytest.raises(FileNotFoundError, match="Annotations"):
        Pascal3DDataset(tmp_path)
    with pytest.raises(FileNotFoundError, match="split"):
        Pascal3DDataset(pascal_root, split=tmp_path / "none.txt")


def test_malformed_files_give_clear_errors(pascal_root, tmp_path):
    import shutil

    broken = tmp_path / "p"
    shutil.copytree(pascal_root, broken)
    path = broken / "Annotations" / "car_pascal" / "2008_000001.mat"
    savemat(path, {"other": np.zeros(2)})
    with pytest.raises(ValueError, match="has no 'record'"):
        Pascal3DDataset(broken)
    path.write_bytes(b"not a mat file")
    with pytest.raises(ValueError, match="cannot read"):
        Pascal3DDataset(broken)
    shutil.rmtree(broken)
    shutil.copytree(pascal_root, broken)
    (broken / "CAD" / "car" / "01.off").unlink()
    with pytest.raises(FileNotFoundError, match="01.off"):
        Pascal3DDataset(broken)[0]
    v = {**viewpoint(0), "viewport": float("nan")}
    with pytest.raises(ValueError, match="finite"):
        pascal3d_camera(*(v[k] for k in ("azimuth", "elevation", "theta", "distance",
                                         "focal", "px", "py", "viewport")))  # fmt: skip


def test_a_model_trains_and_evaluates_on_it(pascal_root, tmp_path):
    data = Pascal3DDataset(pascal_root, mask_root=pascal_root / "masks", num_points=500)
    train_and_evaluate(data, tmp_path)
