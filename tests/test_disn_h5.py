"""DISN's h5 files: the pose recovered from trans_mat against DISN's own composition
(K RT rot norm), and a fixture in the real layout (ori_sample.h5, per-view BGRA image
h5 files, file lists, isosurf.obj) whose ground truth projects onto the masks."""

import math

import numpy as np
import pytest
import torch

from svrecon.data import (
    DISNDataset,
    make_shape,
    pose_from_trans_mat,
    r2n2_camera,
    render_shape,
    shape_samples,
    validate_item,
)

from .helpers import projection_scores, train_and_evaluate

h5py = pytest.importorskip("h5py")
SIZE, VIEWS = 64, 2


def disn_rotate_matrix(angle):
    """DISN's get_rotate_matrix (preprocessing/create_img_h5.py), written out."""
    c, s = math.cos(angle), math.sin(angle)
    rx = np.array([[1, 0, 0, 0], [0, c, -s, 0], [0, s, c, 0], [0, 0, 0, 1]])
    rz = np.array([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    flip_y = np.diag([1.0, -1.0, 1.0, 1.0])
    neg = np.diag([-1.0, -1.0, -1.0, 1.0])
    return neg @ rz @ rz @ flip_y @ rx


def test_pose_from_trans_mat_reproduces_disns_projection():
    K, pose = r2n2_camera(70.0, 25.0, 0.8, (137, 137))
    RT = pose.double().numpy()
    centre, m = np.array([0.02, -0.05, 0.01]), 0.57
    norm = np.array([[m, 0, 0, centre[0]], [0, m, 0, centre[1]], [0, 0, m, centre[2]],
                     [0, 0, 0, 1.0]])  # fmt: skip
    trans_mat = (K.double().numpy() @ RT @ disn_rotate_matrix(-math.pi / 2) @ norm).T
    ours = pose_from_trans_mat(trans_mat, K.double().numpy())
    R = ours[:, :3]
    assert np.allclose(R @ R.T, np.eye(3), atol=1e-6) and np.linalg.det(R) > 0  # float32 in
    p = np.random.default_rng(0).uniform(-0.5, 0.5, (50, 3))
    h = np.concatenate([p, np.ones((50, 1))], 1) @ trans_mat
    disn_uv = h[:, :2] / h[:, 2:]
    cam = p @ R.T + ours[:, 3]
    ours_uv = (cam @ K.double().numpy().T)[:, :2] / cam[:, 2:]
    assert np.allclose(disn_uv, ours_uv, atol=1e-8)
    with pytest.raises(ValueError, match="scaled rotation"):
        pose_from_trans_mat(np.diag([1.0, 2.0, 3.0, 0.0])[:, :3] + np.eye(4, 3), np.eye(3))


def write_disn(root):
    import trimesh

    from svrecon.cameras import PerspectiveCamera
    from svrecon.mesh import extract_mesh

    rng = np.random.default_rng(2)
    (root / "lists").mkdir(parents=True)
    for synset, category in {"03001627": "chair", "02958343": "car"}.items():
        names = ["a1", "b2"]
        (root / "lists" / f"{synset}_train.lst").write_text("\n".join(names) + "\n")
        for name in names:
            shape = make_shape(category, rng)
            (root / "sdf" / synset / name).mkdir(parents=True)
            samples = shape_samples(shape, rng, num_sdf=3000)
            pc = np.concatenate([samples["sdf_points"], samples["sdf_values"][:, None]], 1)
            with h5py.File(root / "sdf" / synset / name / "ori_sample.h5", "w") as f:
                f["pc_sdf_sample"] = pc.astype(np.float32)
                f["norm_params"] = np.array([0.0, 0.0, 0.0, 1.0], dtype=np.float32)
            mesh_dir = root / "mesh" / synset / name
            mesh_dir.mkdir(parents=True)
            extract_mesh(shape, 48, (-0.6, 0.6), dtype=torch.float64).export(
                mesh_dir / "isosurf.obj"
            )
            (root / "img" / synset / name).mkdir(parents=True)
            for v in range(VIEWS):
                K, pose = r2n2_camera(60.0 * v + 20, 20.0, 0.8, (SIZE, SIZE))
                camera = PerspectiveCamera.from_intrinsics(K[None].double(), pose[None].double())
                light = torch.zeros(1, 27, dtype=torch.float64)
                light[:, [0, 9, 18]] = 0.9 / 0.2820948
                r = render_shape(shape, camera, SIZE, light)
                rgb = (r.rgb[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
                bgra = np.dstack([rgb[..., ::-1], r.mask[0].numpy().astype(np.uint8) * 255])
                trans = (K.double().numpy() @ (0.7 * pose.double().numpy())).T  # any scale
                with h5py.File(root / "img" / synset / name / f"{v:02d}.h5", "w") as f:
                    f["img_arr"] = bgra
                    f["trans_mat"] = trans.astype(np.float32)
                    f["K"] = K.numpy()
                    f["RT"] = pose.numpy()
    del trimesh
    return root


@pytest.fixture(scope="module")
def disn_root(tmp_path_factory):
    return write_disn(tmp_path_factory.mktemp("disn"))


def dataset(root, **kw):
    return DISNDataset(root / "sdf", root / "img", root / "lists", views=range(VIEWS), **kw)


def test_items_project_onto_their_masks(disn_root):
    # ground truth from isosurf.obj, then the approximation from the SDF samples (a
    # tenth of 3000: sparse, so it covers less of the mask)
    cases = ((dataset(disn_root, mesh_root=disn_root / "mesh", num_points=3000), 0.85),
             (dataset(disn_root, num_points=3000), 0.2))  # fmt: skip
    for ds, floor in cases:
        ious = []
        for i in range(len(ds)):
            item = ds[i]
            validate_item(item)
            iou, on_mask, _ = projection_scores(item, SIZE)
            assert on_mask >= 0.99
            ious.append(iou)
        source = "SDF samples" if bool(item["surface_from_sdf"]) else "isosurf.obj"
        print(f"DISN projection IoU ({source}): {np.mean(ious):.3f}")
        assert np.mean(ious) > floor
    item = ds[0]
    assert item["sdf_points"].shape == (2048, 3) and item["sdf_values"].shape == (2048,)
    assert (item["image"][:, ~item["mask"]] == 1).all()


def test_malformed_files_give_clear_errors(disn_root, tmp_path):
    import shutil

    with pytest.raises(FileNotFoundError, match="split"):
        DISNDataset(disn_root / "sdf", disn_root / "img", disn_root / "lists", split="test")
    broken = tmp_path / "img"
    shutil.copytree(disn_root / "img", broken)
    path = broken / "03001627" / "a1" / "00.h5"
    with h5py.File(path, "r+") as f:
        del f["trans_mat"]
    ds = DISNDataset(disn_root / "sdf", broken, disn_root / "lists", views=[0])
    with pytest.raises(ValueError, match="trans_mat"):
        ds[2]  # the chair comes after the car (synsets sorted)
    path.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="HDF5"):
        ds[2]


def test_disn_trains_and_evaluates_on_it(disn_root, tmp_path):
    kwargs = dict(encoder="conv", global_dim=16, point_dims=(16, 16), head_dims=(16,),
                  num_points=256)  # fmt: skip
    train_and_evaluate(dataset(disn_root, num_points=1000), tmp_path, "disn", kwargs, "disn")
