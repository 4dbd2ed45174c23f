"""ShapeClipper assembled: its terms on an analytic sphere seen from a known viewpoint
(colour, mask, normals in the canonical frame), the semantic shape consistency's
swap of texture and viewpoint, the camera priors, no camera read, and training and
evaluation through the engine with neighbours."""

import math

import pytest
import torch

from svrecon.fields import BoundField, FieldOutput
from svrecon.models import MODELS, ShapeClipper, get_model
from svrecon.semantic import ThumbnailEmbedder, WithNeighbours, embed_dataset, top_k_neighbours

TINY = dict(
    encoder="conv", estimator="conv", encoder_widths=(8, 16), estimator_widths=(8, 16),
    latent_dim=16, texture_dim=8, projected_dim=8, hidden_dim=16, num_layers=3,
    skip_layers=(1,), texture_dims=(16,), num_rays=64, num_samples=24,
    focal_fraction=1.8660254, camera_distance=2.732, pose_preset="nmr",
    elevation_range=(-10.0, 45.0), roll_range=(0.0, 0.0), bounding_radius=0.6,
    eikonal_points=64,
)  # fmt: skip
SIZE = 32


def tiny(**overrides) -> ShapeClipper:
    torch.manual_seed(0)
    return ShapeClipper(**{**TINY, **overrides})


def trig_of(azimuth, elevation, b):
    a, e = math.radians(azimuth), math.radians(elevation)
    row = torch.tensor([math.cos(a), math.sin(a), math.cos(e), math.sin(e), 1.0, 0.0])
    return row.expand(b, 6)


def sphere_views(model, radius=0.4, b=2, azimuth=30.0, elevation=20.0):
    """A sphere's mask and camera-frame normals as the rig sees it (ray casting)."""
    trig = trig_of(azimuth, elevation, b)
    camera = model.camera_for(trig, torch.ones(b), (SIZE, SIZE))
    rays = camera.rays(SIZE, SIZE)
    t, hit = rays.intersect_sphere(radius)
    points = rays.points_at(t.near)
    n_world = torch.nn.functional.normalize(points, dim=-1)
    n_cam = n_world @ camera.R.transpose(1, 2)
    mask = hit.reshape(b, SIZE, SIZE)
    normals = torch.where(hit[..., None], n_cam, 0.0).reshape(b, SIZE, SIZE, 3).permute(0, 3, 1, 2)
    image = torch.where(mask[:, None], torch.full((b, 3, SIZE, SIZE), 0.5), 1.0)
    return {"image": image, "mask": mask, "normals_estimated": normals}, trig


def analytic(model, radius=0.4, trig=None, rgb=0.5):
    def fn(points):
        b, n, _ = points.shape
        return FieldOutput(
            sdf=points.norm(dim=-1) - radius,
            features=torch.zeros(b, n, model.sdf.feature_dim),
            rgb=torch.full((b, n, 3), rgb) + 0 * points,
        )

    model.textured_field = lambda shape, texture: BoundField(fn, shape.shape[0], "sdf")
    if trig is not None:
        model.estimate_viewpoint = lambda images: (trig[: len(images)], torch.ones(len(images)))
    return model


def test_registered_with_presets_and_protocol():
    spec = get_model("shapeclipper")
    assert "shapeclipper" in MODELS and spec.protocol == "shapeclipper"
    assert spec.cls.estimates_viewpoint
    model = ShapeClipper(encoder="conv", estimator="conv")  # the paper's field and losses
    assert model.sdf.symmetric and model.loss_weights["mask"] == 0.5
    assert model.renderer.num_samples == 64 and model.renderer.last_delta == 0.0


def test_a_true_sphere_from_the_true_viewpoint_scores_well():
    model = tiny(beta_init=0.005)
    batch, trig = sphere_views(model)
    analytic(model, trig=trig)
    model.eval()  # deterministic samples
    terms = model.compute_losses(batch)
    assert terms["mask"] < 0.1
    assert terms["rgb"] < 0.01
    # the rendered normals (canonical frame) against the camera-frame ones rotated by R^T
    assert terms["normal"] < 0.6


def test_normals_in_the_wrong_frame_score_badly():
    model = tiny(beta_init=0.005)
    batch, trig = sphere_views(model)
    analytic(model, trig=trig)
    model.eval()
    good = model.compute_losses(batch)["normal"]
    flipped = dict(batch, normals_estimated=-batch["normals_estimated"])
    bad = model.compute_losses(flipped)["normal"]
    assert bad > 5 * good


def test_an_empty_mask_costs_the_mask_and_colour_terms():
    model = tiny(beta_init=0.005)
    batch, trig = sphere_views(model)
    analytic(model, trig=trig)
    model.eval()
    right = model.compute_losses(batch)
    empty = dict(batch, mask=torch.zeros_like(batch["mask"]), image=torch.ones_like(batch["image"]))
    wrong = model.compute_losses(empty)
    assert wrong["mask"] > 0.9 and wrong["rgb"] > right["rgb"] + 0.05


def test_semantic_consistency_uses_the_neighbours_texture_and_viewpoint():
    model = tiny()
    batch, _ = sphere_views(model, b=2)
    shape_codes, texture_codes = [], []
    original = model.textured_field

    def spy(shape, texture):
        shape_codes.append(shape)
        texture_codes.append(texture)
        return original(shape, texture)

    model.textured_field = spy
    other, _ = sphere_views(model, b=2, azimuth=120.0)
    batch = dict(
        batch,
        neighbour_image=other["image"][:, None].repeat(1, 3, 1, 1, 1),
        neighbour_mask=other["mask"][:, None].repeat(1, 3, 1, 1),
        neighbour_normals=other["normals_estimated"][:, None].repeat(1, 3, 1, 1, 1),
    )
    terms = model.compute_losses(batch)
    assert {"ssc_rgb", "ssc_mask", "ssc_normal"} <= set(terms)
    assert len(shape_codes) == 2
    assert torch.equal(shape_codes[1], shape_codes[0])  # the query's shape ...
    _, nn_texture = model.codes(other["image"])
    assert torch.allclose(texture_codes[1], nn_texture)  # ... with the neighbour's texture
    without = model.compute_losses({k: batch[k] for k in ("image", "mask", "normals_estimated")})
    assert without["ssc_rgb"] == 0 and without["ssc_mask"] == 0


def test_camera_priors_and_flip_term():
    model = tiny()
    batch, trig = sphere_views(model, b=4)
    # an estimator that ignores the flip: it predicts the same viewpoint for the mirror
    model.estimate_viewpoint = lambda images: (trig, torch.ones(len(images)))
    terms = model.compute_losses(batch)
    assert terms["angle_range"] == 0  # elevation 20 in [-10, 45], roll 0 in [0, 0]
    # the mirror should flip the signs of sin(azimuth) and sin(roll): the term is
    # (2 sin 30 deg)^2 = 1 for the azimuth pair, 0 for elevation and roll
    assert torch.isclose(terms["flip"], torch.tensor(4 * math.sin(math.radians(30)) ** 2),
                         atol=1e-5)  # fmt: skip


def test_estimated_rotation_reads_no_camera():
    model = tiny()
    batch, _ = sphere_views(model, b=3)
    R = model.predict_rotation(batch["image"])
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3).expand(3, 3, 3), atol=1e-5)
    _, scale = model.estimate_viewpoint(batch["image"])
    assert ((scale >= 0.8) & (scale <= 1.2)).all()
    with pytest.raises(ValueError, match="normals_estimated"):
        model.compute_losses({"image": batch["image"], "mask": batch["mask"]})


def test_with_neighbours_stacks_k_items(tiny_procedural):
    from svrecon.data import ProceduralDataset

    ds = ProceduralDataset(tiny_procedural, "train")
    emb = embed_dataset(ThumbnailEmbedder(8), ds, progress=False)
    nn = top_k_neighbours(emb, 3)
    wrapped = WithNeighbours(ds, nn, k=2)
    item = wrapped[1]
    assert item["neighbour_image"].shape == (2, 3, 32, 32)
    assert item["neighbour_mask"].shape == (2, 32, 32)
    assert item["neighbour_normals"].shape == (2, 3, 32, 32)
    j = int(nn.indices[1, 0])
    assert torch.equal(item["neighbour_image"][0], ds[j]["image"])
    assert wrapped.categories == ds.categories and len(wrapped) == len(ds)
    with pytest.raises(ValueError, match="neighbours"):
        WithNeighbours(ds, top_k_neighbours(emb[:4], 2))
    with pytest.raises(ValueError, match="k"):
        WithNeighbours(ds, nn, k=4)


def test_trains_and_evaluates_through_the_engine(tiny_procedural, tmp_path):
    from svrecon.data import ProceduralDataset
    from svrecon.engine import TrainConfig, evaluate_dataset, load_model, train

    ds = ProceduralDataset(tiny_procedural, "train")
    nn = top_k_neighbours(embed_dataset(ThumbnailEmbedder(8), ds, progress=False), 2)
    config = TrainConfig(model="shapeclipper", model_kwargs=TINY, out_dir=str(tmp_path),
                         iterations=2, batch_size=2, checkpoint_every=2)  # fmt: skip
    history = train(config, progress=False, train_set=WithNeighbours(ds, nn))
    assert len(history) == 2 and all(math.isfinite(h["total"]) for h in history)
    assert history[0]["ssc_rgb"] > 0
    model = load_model(tmp_path / "checkpoint.pt")
    test = ProceduralDataset(tiny_procedural, "test")
    report = evaluate_dataset(test, "procedural_view_centric", model=model, max_items=2)
    assert math.isfinite(report.summary["chamfer"])
