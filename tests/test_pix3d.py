"""The Pix3D reader on a fixture in the real layout (pix3d.json with its key names,
JPEG and PNG photographs, greyscale PNG masks, OBJ models), whose masks are ray cast
here from the models through Pix3D's own camera (x left, y up, z forward; focal in mm
on a 32 mm sensor over the longer side), independently of the reader."""

import json

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image
from scipy.spatial.transform import Rotation

from svrecon.data import Pix3DDataset, validate_item

from .helpers import projection_scores, ray_hits, train_and_evaluate

SIZE = 64


def l_shape():
    """An asymmetric chair-like mesh: a flip of any camera axis changes its silhouette."""
    seat = trimesh.creation.box((0.6, 0.1, 0.5))
    back = trimesh.creation.box((0.6, 0.6, 0.1))
    back.apply_translation((0, 0.3, -0.2))
    leg = trimesh.creation.box((0.1, 0.4, 0.1))
    leg.apply_translation((0.25, -0.25, 0.2))
    return trimesh.util.concatenate([seat, back, leg])


def pix3d_mask(mesh, R, t, focal_mm, w, h):
    """Ray cast the mesh through Pix3D's camera, pixel by pixel (centres at +0.5)."""
    f = focal_mm / 32 * max(w, h)
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    d_cam = np.stack([(w / 2 - u) / f, (h / 2 - v) / f, np.ones_like(u)], -1).reshape(-1, 3)
    return ray_hits(mesh, -R.T @ t, d_cam @ R).reshape(h, w)  # rows of d_cam @ R: R^T d


def write_pix3d(root, rng):
    (root / "model" / "chair" / "a").mkdir(parents=True)
    (root / "model" / "sofa" / "b").mkdir(parents=True)
    meshes = {"model/chair/a/model.obj": l_shape(), "model/sofa/b/model.obj": l_shape()}
    meshes["model/sofa/b/model.obj"].apply_scale((1.3, 0.8, 1.0))
    for path, mesh in meshes.items():
        mesh.export(root / path)
    entries = []
    views = [("chair", "0001", "png", (160, 120)), ("chair", "0002", "jpg", (100, 140)),
             ("sofa", "0001", "png", (140, 140)), ("sofa", "0002", "jpg", (150, 110))]  # fmt: skip
    for n, (cat, stem, ext, (w, h)) in enumerate(views):
        model = f"model/{cat}/{'a' if cat == 'chair' else 'b'}/model.obj"
        R = Rotation.from_euler("YX", [40 + 70 * n, 15 + 5 * n], degrees=True).as_matrix()
        t = np.array([0.05 * n - 0.05, 0.03, 2.2 + 0.2 * n])
        focal = 35.0 + 5 * n
        mask = pix3d_mask(meshes[model], R, t, focal, w, h)
        rows, cols = np.nonzero(mask)
        bbox = [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1]
        photo = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)  # a cluttered background
        photo[mask] = (200, 80 + 20 * n, 40)
        for sub in ("img", "mask"):
            (root / sub / cat).mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo).save(root / "img" / cat / f"{stem}.{ext}", quality=95)
        Image.fromarray(mask.astype(np.uint8) * 255, "L").save(root / "mask" / cat / f"{stem}.png")
        entries.append({
            "img": f"img/{cat}/{stem}.{ext}", "category": cat, "img_size": [w, h],
            "2d_keypoints": [], "mask": f"mask/{cat}/{stem}.png", "img_source": "fixture",
            "model": model, "model_raw": model, "model_source": "fixture",
            "3d_keypoints": "", "voxel": "", "rot_mat": R.tolist(), "trans_mat": t.tolist(),
            "focal_length": focal, "cam_position": (-R.T @ t).tolist(),
            "inplane_rotation": 0.0, "truncated": False, "occluded": n == 3,
            "slightly_occluded": False, "bbox": bbox,
        })  # fmt: skip
    (root / "pix3d.json").write_text(json.dumps(entries))
    return root


@pytest.fixture(scope="module")
def pix3d_root(tmp_path_factory):
    return write_pix3d(tmp_path_factory.mktemp("pix3d"), np.random.default_rng(0))


def test_items_and_projection(pix3d_root):
    ds = Pix3DDataset(pix3d_root, size=SIZE, num_points=20_000)
    assert len(ds) == 4 and ds.categories == ["chair", "sofa"]
    ious = []
    for i in range(len(ds)):
        item = ds[i]
        validate_item(item)
        assert item["image"].shape == (3, SIZE, SIZE)
        # the background is composited on white, the object kept
        assert torch.all(item["image"][:, ~item["mask"]] == 1)
        iou, on_mask, covered = projection_scores(item, SIZE)
        assert on_mask > 0.98 and covered > 0.98, (i, on_mask, covered)
        ious.append(iou)
    print(f"Pix3D projection IoU: mean {np.mean(ious):.3f}")
    assert np.mean(ious) > 0.85
    # the same item read as if Pix3D's camera were OpenCV's projects elsewhere
    item = ds[0]
    item["pose"] = torch.diag(torch.tensor([-1.0, -1.0, 1.0])) @ item["pose"]
    assert projection_scores(item, SIZE)[0] < 0.3


def test_splits_filters_and_errors(pix3d_root, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("img/chair/0002.jpg\nsofa/0001\n")
    ds = Pix3DDataset(pix3d_root, split=listing, num_points=10)
    assert [e["img"] for e in ds.entries] == ["img/chair/0002.jpg", "img/sofa/0001.png"]
    assert len(Pix3DDataset(pix3d_root, skip_occluded=True, num_points=10)) == 3
    assert Pix3DDataset(pix3d_root, categories=["sofa"], num_points=10).categories == ["sofa"]
    listing.write_text("0001\n")
    with pytest.raises(ValueError, match="ambiguous"):
        Pix3DDataset(pix3d_root, split=listing)
    listing.write_text("chair/0009\n")
    with pytest.raises(ValueError, match="matches no annotation"):
        Pix3DDataset(pix3d_root, split=listing)
    with pytest.raises(FileNotFoundError, match="pix3d.json"):
        Pix3DDataset(tmp_path)


def test_malformed_files_give_clear_errors(pix3d_root, tmp_path):
    import shutil

    broken = tmp_path / "p"
    shutil.copytree(pix3d_root, broken)
    entries = json.loads((broken / "pix3d.json").read_text())
    del entries[1]["rot_mat"]
    (broken / "pix3d.json").write_text(json.dumps(entries))
    with pytest.raises(ValueError, match=r"annotation 1 has no \['rot_mat'\]"):
        Pix3DDataset(broken)
    entries[1]["rot_mat"] = (2 * np.eye(3)).tolist()
    (broken / "pix3d.json").write_text(json.dumps(entries))
    with pytest.raises(ValueError, match="not a rotation"):
        Pix3DDataset(broken, num_points=10)[1]
    entries[1]["rot_mat"] = np.eye(3).tolist()
    entries[1]["bbox"] = [10, 10, 5, 20]
    (broken / "pix3d.json").write_text(json.dumps(entries))
    with pytest.raises(ValueError, match="0002.jpg: bbox"):
        Pix3DDataset(broken, num_points=10)[1]
    (broken / "pix3d.json").write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        Pix3DDataset(broken)
    shutil.rmtree(broken)
    shutil.copytree(pix3d_root, broken)
    Image.new("L", (10, 10)).save(broken / "mask" / "chair" / "0001.png")
    with pytest.raises(ValueError, match="mask/chair/0001.png"):
        Pix3DDataset(broken, num_points=10)[0]
    (broken / "model" / "sofa" / "b" / "model.obj").write_text("v 0 0 0\n")
    with pytest.raises(ValueError, match="no triangles"):
        Pix3DDataset(broken, num_points=10)[2]


def test_a_model_trains_and_evaluates_on_it(pix3d_root, tmp_path):
    train_and_evaluate(Pix3DDataset(pix3d_root, size=SIZE, num_points=500), tmp_path)
