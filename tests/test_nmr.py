"""The NMR ShapeNet reader, on a fixture written in the real layout: PNG renders and
masks, cameras.npz with world_mat_i (4 x 4, as DVR stores them) and camera_mat_i,
pointcloud3.npz, softras split lists. The camera convention is checked by projecting
each model's ground-truth points into its own image and matching the mask."""

import math

import numpy as np
import pytest
import torch

from svrecon.cameras import pose_from_angles
from svrecon.data import NMRDataset, make_shape, render_shape, shape_samples, validate_item

from .helpers import projection_scores

SYNSETS = {"03001627": "chair", "02691156": "airplane"}
SIZE, VIEWS = 64, 3


def write_nmr(root, models_per_category=2, size=SIZE):
    """Write NMR_Dataset-style files of procedural shapes (views at 30 degrees
    elevation, azimuths 15 degrees apart, as the NMR renders)."""
    from PIL import Image

    from svrecon.cameras import PerspectiveCamera

    rng = np.random.default_rng(0)
    for synset, category in SYNSETS.items():
        names = [f"model{k:02d}" for k in range(models_per_category)]
        (root / synset).mkdir(parents=True)
        (root / synset / "softras_train.lst").write_text("\n".join(names) + "\n")
        (root / synset / "softras_test.lst").write_text(names[-1] + "\n")
        for name in names:
            folder = root / synset / name
            (folder / "image").mkdir(parents=True)
            (folder / "mask").mkdir()
            shape = make_shape(category, rng)
            azimuth = torch.tensor(
                [math.radians(15 * v) for v in range(VIEWS)], dtype=torch.float64
            )
            pose = pose_from_angles("nmr", azimuth, math.radians(30), 0.0, 2.732)
            camera = PerspectiveCamera.from_focal_fraction(1.8660254037844388, (size, size), pose)
            light = torch.zeros(VIEWS, 27, dtype=torch.float64)
            light[:, [0, 9, 18]] = 0.9 / 0.2820948
            render = render_shape(shape, camera, size, light)
            cams = {}
            for v in range(VIEWS):
                rgb = (render.rgb[v].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
                alpha = render.mask[v].numpy().astype(np.uint8) * 255
                Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(
                    folder / "image" / f"{v:04d}.png"
                )
                Image.fromarray(alpha, "L").save(folder / "mask" / f"{v:04d}.png")
                world = np.eye(4)
                world[:3] = pose[v].numpy()
                cams[f"world_mat_{v}"] = world
                cams[f"camera_mat_{v}"] = np.diag([2 * 1.8660254, 2 * 1.8660254, 1.0, 1.0])
            np.savez(folder / "cameras.npz", **cams)
            samples = shape_samples(shape, rng, num_surface=3000)
            np.savez(folder / "pointcloud3.npz", points=samples["surface_points"],
                     normals=samples["surface_normals"])  # fmt: skip
    return root


@pytest.fixture(scope="module")
def nmr_root(tmp_path_factory):
    return write_nmr(tmp_path_factory.mktemp("nmr") / "NMR_Dataset")


def test_items_follow_the_schema(nmr_root):
    ds = NMRDataset(nmr_root, "train", num_points=2000)
    assert len(ds) == 2 * 2 * 24 or len(ds) == 4 * 24
    ds = NMRDataset(nmr_root, "train", views=range(VIEWS), num_points=2000)
    assert len(ds) == 4 * VIEWS and ds.categories == ["airplane", "chair"]
    item = ds[VIEWS + 1]
    validate_item(item)
    assert item["image"].shape == (3, SIZE, SIZE) and item["surface_points"].shape == (2000, 3)
    assert int(item["view"]) == 1 and int(item["label"]) == 0
    assert (item["image"][:, ~item["mask"]] == 1).all()  # composited on white
    assert ds.evaluation_indices() == [0, 3, 6, 9]
    test = NMRDataset(nmr_root, "test", views=[0], num_points=None)
    assert len(test) == 2 and test[0]["surface_points"].shape == (3000, 3)


def test_ground_truth_projects_onto_its_mask(nmr_root):
    """The convention check: every model's points, projected by the item's camera,
    land on its mask and cover it (up to the one-pixel ring where a pixel is partly
    covered but its centre is not); a wrong convention fails it."""
    ds = NMRDataset(nmr_root, "train", views=range(VIEWS), num_points=None)
    ious, on_mask, covered, wrong = [], [], [], []
    for i in range(len(ds)):
        item = ds[i]
        iou, on, cov = projection_scores(item, SIZE)
        ious.append(iou)
        on_mask.append(on)
        covered.append(cov)
        flipped = item["surface_points"] * torch.tensor([1.0, -1.0, 1.0])  # y up vs down
        wrong.append(projection_scores({**item, "surface_points": flipped}, SIZE)[0])
    print(f"NMR projection IoU: mean {np.mean(ious):.3f} (a y-flipped frame: {np.mean(wrong):.3f})")
    assert min(on_mask) > 0.99 and min(covered) > 0.99
    assert np.mean(ious) > 0.85 and np.mean(wrong) < np.mean(ious) - 0.2


def test_malformed_files_give_clear_errors(nmr_root, tmp_path):
    import shutil

    with pytest.raises(FileNotFoundError, match="root"):
        NMRDataset(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="split"):
        NMRDataset(nmr_root, "val")
    broken = tmp_path / "NMR_Dataset"
    shutil.copytree(nmr_root, broken)
    folder = broken / "02691156" / "model00"
    cams = dict(np.load(folder / "cameras.npz"))
    del cams["world_mat_1"]
    np.savez(folder / "cameras.npz", **cams)
    ds = NMRDataset(broken, "train", views=range(VIEWS), num_points=100)
    with pytest.raises(ValueError, match="world_mat_1"):
        ds[1]
    np.savez(folder / "pointcloud3.npz", normals=np.zeros((5, 3)))
    with pytest.raises(ValueError, match="points"):
        ds[0]
    (folder / "mask" / "0002.png").unlink()
    with pytest.raises(FileNotFoundError, match="0002.png"):
        ds[2]


def test_models_train_and_evaluate_on_it_unchanged(nmr_root, tmp_path):
    from svrecon.engine import TrainConfig, evaluate_dataset, train

    tiny = {"sdf_srn": dict(encoder="conv", latent_dim=16, trunk_dims=(16, 16), hidden_dims=(16,),
                            num_rays=64, silhouette_samples=2, eikonal_points=64),
            "cat3d": dict(encoder="conv", estimator="conv", encoder_widths=(8, 16),
                          estimator_widths=(8, 16), latent_dim=16, texture_dim=8,
                          trunk_dims=(16, 16), trunk_concat=(1,), hidden_dims=(16,),
                          num_categories=2, render_size=16, fixed_angles={"roll": 0.0},
                          silhouette_samples=2, eikonal_points=64,
                          discriminator_channels=8)}  # fmt: skip
    data = NMRDataset(nmr_root, "train", views=range(VIEWS), num_points=1000)
    for name, kwargs in tiny.items():
        config = TrainConfig(model=name, model_kwargs=kwargs, out_dir=str(tmp_path / name),
                             iterations=2, batch_size=2, checkpoint_every=2)  # fmt: skip
        history = train(config, progress=False, train_set=data, test_set=data)
        assert len(history) == 2 and all(math.isfinite(h["total"]) for h in history)
        from svrecon.engine import load_model

        model = load_model(tmp_path / name / "checkpoint.pt")
        protocol = "procedural_view_centric" if model.estimates_viewpoint else "procedural"
        report = evaluate_dataset(data, protocol, model=model, max_items=2)
        assert report.summary["items"] == 2 and math.isfinite(report.summary["chamfer"])
