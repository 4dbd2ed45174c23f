"""MSU assembled: registry, camera target, the three stages through the engine (each
resumes bit-exact, each trains only its own parts), rendering against an analytic
sphere, and part segmentation against the procedural parts."""

import dataclasses
import math

import pytest
import torch

from svrecon.cameras import ProjectionMatrixCamera
from svrecon.data import ProceduralDataset, WithColouredVoxels
from svrecon.data.procedural import view_camera
from svrecon.engine import TrainConfig, evaluate_part_segmentation, load_checkpoint, train
from svrecon.fields import FieldOutput
from svrecon.models import MODELS, MSU, get_model
from svrecon.models.msu import (
    NMR_CAMERA_SPREAD,
    NMR_FRONTAL_CAMERA,
    ground_truth_projection,
    projection_statistics,
)
from svrecon.renderers import sh_shading

TINY = {
    "encoder": "conv", "encoder_widths": (8, 16, 16), "voxel_widths": (8, 16),
    "category_dim": 3, "shape_dim": 16, "albedo_dim": 8, "num_categories": 6,
    "shape_hidden": (32, 16), "albedo_hidden": (16, 16), "num_branches": 4,
    "num_samples": 12, "num_refine": 3, "render_size": 6, "bounding_radius": 0.6,
    "boundary_resolution": 6, "boundary_points": 8,
}  # fmt: skip


def tiny(**overrides) -> MSU:
    return MSU(**{**TINY, **overrides})


def batch_of(dataset, n=4):
    return torch.utils.data.default_collate([dataset[i] for i in range(n)])


def test_registered_with_its_stages_protocol_and_presets():
    spec = get_model("msu")
    assert "msu" in MODELS and spec.cls is MSU and spec.protocol == "msu"
    assert spec.surface_kind == "occupancy" and spec.surface_level == 0.5
    assert MSU.stages == ("decoders", "image_encoder", "finetune")
    cpu = spec.build("cpu")
    assert sum(p.numel() for p in cpu.parameters()) * 4 < 20e6  # ships under 20 MB
    paper = spec.build("paper")
    assert paper.joint.occupancy.num_branches == 12
    assert paper.config["shape_hidden"] == (3072, 384) and paper.config["search"] == "linear_binary"


def test_ground_truth_projection_projects_as_the_perspective_camera():
    cam = view_camera(torch.tensor([0.3, 2.0]), torch.tensor([0.2, -0.1]), 48)
    P = ground_truth_projection({"intrinsics": cam.K, "pose": cam.pose,
                                 "image": torch.zeros(2, 3, 48, 48)})  # fmt: skip
    points = torch.randn(2, 20, 3) * 0.3
    fractions = ProjectionMatrixCamera(P).project(points)
    torch.testing.assert_close(fractions * 48, cam.project(points))
    torch.testing.assert_close(P[:, 2, :3].norm(dim=-1), torch.ones(2))  # metric depth row


def test_default_camera_prior_is_the_nmr_rig_frontal_camera_and_its_spread(tiny_procedural):
    mean = torch.tensor(NMR_FRONTAL_CAMERA)
    for size in (32, 64):  # image fractions: one prior for every size
        cam = view_camera(torch.tensor([0.0]), torch.tensor([math.radians(20.0)]), size)
        points = torch.randn(1, 50, 3) * 0.3
        got = ProjectionMatrixCamera(mean[None]).project(points) * size
        torch.testing.assert_close(got, cam.project(points), atol=2e-3 * size, rtol=0)
    # the spread over the rig (uniform azimuth) on a freshly generated set of 6 cameras
    _, std = projection_statistics(ProceduralDataset(tiny_procedural, "train"))
    spread = torch.tensor(NMR_CAMERA_SPREAD)
    assert ((std[:, :3] / spread[:, :3]).log().abs() < math.log(2.5)).all()
    assert (std[:, 3] == 0.01).all()  # the fixed distance and centre are floored
    model = tiny()
    torch.testing.assert_close(model.camera_head.mean, mean)


def test_stage_is_required_and_checked():
    model = tiny()
    with pytest.raises(ValueError, match="stages"):
        model.losses({"image": torch.rand(1, 3, 8, 8), "mask": torch.ones(1, 8, 8, dtype=bool)})
    with pytest.raises(ValueError, match="decoders"):
        TrainConfig(model="msu", stage=None)
    with pytest.raises(ValueError, match="one stage"):
        TrainConfig(model="disn", stage="decoders")
    model.set_stage("decoders")
    with pytest.raises(ValueError, match="stage_options"):
        model.stage_dataset([], colour=3)
    model.set_stage("finetune")
    with pytest.raises(ValueError, match="stage_options"):
        model.stage_dataset([], resolution=16)


@pytest.mark.parametrize("stage", MSU.stages)
def test_each_stage_steps_only_its_parts_and_lowers_its_loss(tiny_procedural, stage):
    model = tiny()
    model.set_stage(stage)
    data = model.stage_dataset(ProceduralDataset(tiny_procedural, "train"),
                               **({} if stage == "finetune" else {"resolution": 8}))  # fmt: skip
    batch = batch_of(data)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = model.optimizer_groups()["model"]["params"]
    optimizer = torch.optim.Adam(params, lr=3e-3)
    first = None
    for _ in range(25):
        losses = model.losses(batch)
        assert all(torch.isfinite(v) for v in losses.values()), losses
        first = float(losses["total"].detach()) if first is None else first
        optimizer.zero_grad()
        losses["total"].backward()
        assert all(torch.isfinite(p.grad).all() for p in params if p.grad is not None)
        optimizer.step()
    assert float(model.losses(batch)["total"].detach()) < 0.9 * first
    trained = {id(p) for p in params}
    for name, p in model.named_parameters():
        if id(p) not in trained:
            assert torch.equal(p.detach(), before[name]), f"{stage} changed {name}"
    expected = {"decoders": {"occupancy", "albedo", "category"},
                "image_encoder": {"image", "code_category", "code_shape", "code_albedo",
                                  "camera", "lighting"},
                "finetune": {"image", "silhouette", "feature_consistency",
                             "albedo_constancy", "white_shading"}}[stage]  # fmt: skip
    assert set(losses) - {"total"} == expected


def test_without_a_category_code_has_no_category_terms(tiny_procedural):
    model = tiny(category_dim=0)
    assert model.classifier is None
    model.set_stage("decoders")
    data = model.stage_dataset(ProceduralDataset(tiny_procedural, "train"), resolution=8)
    assert "category" not in model.losses(batch_of(data))


def _stage_one_total(losses):
    """Eq. 8's weighted terms (MSU_WEIGHTS: 1, 1, 100)."""
    weights = {"occupancy": 1, "albedo": 1, "category": 100}
    return sum(losses[k].item() * w for k, w in weights.items())


def test_branch_l1_is_bae_net_l1_on_the_branch_layer_weights(tiny_procedural):
    model = tiny(loss_weights={"branch_l1": 0.5})
    model.set_stage("decoders")
    data = model.stage_dataset(ProceduralDataset(tiny_procedural, "train"), resolution=8)
    batch = batch_of(data)
    layer = model.joint.occupancy.net[-1]  # hidden (16) -> 4 branch logits
    assert model.joint.occupancy.branch_layer is layer and layer.weight.shape == (4, 16)
    with torch.no_grad():
        layer.weight.copy_(torch.arange(-32, 32, dtype=torch.float32).view(4, 16) / 64)
    losses = model.losses(batch)
    hand = sum(abs(k) for k in range(-32, 32)) / 64  # 1024 / 64 = 16
    assert losses["branch_l1"].item() == pytest.approx(hand)
    rest = _stage_one_total(losses)
    assert losses["total"].item() == pytest.approx(rest + 0.5 * hand, rel=1e-5)
    # its gradient is weight * sign(W) on the branch layer alone (biases untouched)
    model.zero_grad()
    losses["branch_l1"].backward()
    torch.testing.assert_close(layer.weight.grad, torch.sign(layer.weight.detach()))
    assert layer.bias.grad is None
    default = tiny()  # MSU states no regulariser: off unless weighted
    default.set_stage("decoders")
    assert "branch_l1" not in default.losses(batch)


def test_branch_balance_term_is_the_balance_of_the_occupied_points_logits(tiny_procedural):
    from svrecon.losses import branch_balance_loss

    model = tiny(loss_weights={"branch_balance": 2.0})
    model.set_stage("decoders")
    data = model.stage_dataset(ProceduralDataset(tiny_procedural, "train"), resolution=8)
    batch = batch_of(data)
    torch.manual_seed(0)
    losses = model.losses(batch)
    codes = model.encode_voxels(batch["voxels"])
    decoder = model.joint.occupancy
    logits = decoder.logits(batch["voxel_points"], codes["shape"], codes["category"])
    out = decoder(batch["voxel_points"], codes["shape"], codes["category"])
    torch.testing.assert_close(torch.sigmoid(logits), out.branch_values)  # one decoder
    inside = batch["voxel_occupancy"] > 0.5
    expected = branch_balance_loss(logits, inside)
    torch.testing.assert_close(losses["branch_balance"], expected)
    rest = _stage_one_total(losses)
    assert losses["total"].item() == pytest.approx(rest + 2 * expected.item(), rel=1e-5)


def test_branch_colours_term_separates_the_occupied_points_by_their_voxel_albedo(
    tiny_procedural,
):
    from svrecon.losses import branch_colour_separation_loss

    model = tiny(loss_weights={"branch_colours": 3.0})
    model.set_stage("decoders")
    data = model.stage_dataset(ProceduralDataset(tiny_procedural, "train"), resolution=16)
    batch = batch_of(data)
    losses = model.losses(batch)
    codes = model.encode_voxels(batch["voxels"])
    logits = model.joint.occupancy.logits(batch["voxel_points"], codes["shape"], codes["category"])
    inside = batch["voxel_occupancy"] > 0.5
    assert inside.sum(1).max() > 1 and batch["voxel_albedo"][inside].std(0).max() > 0
    expected = branch_colour_separation_loss(logits, batch["voxel_albedo"], inside)
    assert 0 < expected.item() < 1
    torch.testing.assert_close(losses["branch_colours"], expected)
    rest = _stage_one_total(losses)
    assert losses["total"].item() == pytest.approx(rest + 3 * expected.item(), rel=1e-5)
    default = tiny()  # off unless weighted
    default.set_stage("decoders")
    assert "branch_colours" not in default.losses(batch)


def _config(root, out, stage, **kw):
    return TrainConfig(model="msu", model_kwargs=TINY, data_root=str(root), out_dir=str(out),
                       iterations=4, batch_size=2, lr=1e-3, checkpoint_every=2, protocol=None,
                       stage=stage, **kw)  # fmt: skip


@pytest.mark.slow
def test_stages_chain_through_the_engine_and_resume_bit_exact(tiny_procedural, tmp_path, capsys):
    voxels = {"resolution": 8}
    whole = _config(tiny_procedural, tmp_path / "s1", "decoders", stage_options=voxels)
    train(whole, progress=False)
    # the same run killed after step 2 and resumed
    half = _config(tiny_procedural, tmp_path / "s1b", "decoders", stage_options=voxels)
    train(dataclasses.replace(half, iterations=2), progress=False)
    train(half, resume=tmp_path / "s1b" / "checkpoint.pt", progress=False)
    a = load_checkpoint(tmp_path / "s1" / "checkpoint.pt")["state_dict"]
    b = load_checkpoint(tmp_path / "s1b" / "checkpoint.pt")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # stage 2 starts from stage 1's weights and leaves the decoders as they were
    s2 = _config(tiny_procedural, tmp_path / "s2", "image_encoder", stage_options=voxels,
                 init_from=str(tmp_path / "s1" / "checkpoint.pt"))  # fmt: skip
    train(s2, progress=False)
    c = load_checkpoint(tmp_path / "s2" / "checkpoint.pt")
    assert c["train_config"]["stage"] == "image_encoder"
    for k in a:
        if k.startswith(("joint.", "voxel_encoder.")):
            assert torch.equal(a[k], c["state_dict"][k]), k
    assert not torch.equal(
        a["camera_head.linear.weight"], c["state_dict"]["camera_head.linear.weight"]
    )
    # stage 3: only the image parts and the albedo decoder move
    s3 = _config(tiny_procedural, tmp_path / "s3", "finetune",
                 init_from=str(tmp_path / "s2" / "checkpoint.pt"))  # fmt: skip
    train(s3, progress=False)
    d = load_checkpoint(tmp_path / "s3" / "checkpoint.pt")["state_dict"]
    assert all(torch.equal(c["state_dict"][k], d[k]) for k in d if k.startswith("joint.occupancy"))
    assert any(not torch.equal(c["state_dict"][k], d[k]) for k in d if k.startswith("joint.albedo"))
    # resuming as another stage, or starting from another model's weights, is refused
    with pytest.raises(ValueError, match="stage"):
        train(_config(tiny_procedural, tmp_path / "s3", "image_encoder", stage_options=voxels),
              resume=tmp_path / "s3" / "checkpoint.pt", progress=False)  # fmt: skip
    other = _config(tiny_procedural, tmp_path / "x", "finetune",
                    init_from=str(tmp_path / "s3" / "checkpoint.pt"))  # fmt: skip
    other.model_kwargs = {**TINY, "num_branches": 5}
    with pytest.raises(ValueError, match="init_from"):
        train(other, progress=False)
    # settings that change no weight may differ (an ablation's loss weights or search),
    # and are named
    ablation = dataclasses.replace(
        other, model_kwargs={**TINY, "search": "linear", "loss_weights": {"silhouette": 0.5}},
        iterations=1, out_dir=str(tmp_path / "y"),
    )  # fmt: skip
    train(ablation, progress=False)
    assert "settings that differ from its run: loss_weights, search" in capsys.readouterr().out


def _sphere_codes(model, b, radius=0.3):
    """Codes whose field (patched in) is an analytic occupancy sphere."""
    cam = view_camera(torch.full((b,), 0.4), torch.full((b,), 0.3), 32)
    P = ground_truth_projection({"intrinsics": cam.K, "pose": cam.pose,
                                 "image": torch.zeros(b, 3, 32, 32)})  # fmt: skip
    P = P * torch.tensor([32.0, 32.0, 1.0])[:, None]  # to pixels
    lighting = torch.zeros(b, 27)
    lighting[:, [0, 9, 18]] = 0.8
    lighting[:, [2, 11, 20]] = 0.3  # band 1: shading varies with the normal
    codes = {"shape": torch.zeros(b, 1), "albedo": torch.zeros(b, 1), "lighting": lighting,
             "camera": ProjectionMatrixCamera(P)}  # fmt: skip

    def field(points):
        r = points.norm(dim=-1)
        occupancy = torch.sigmoid((radius - r) * 60)
        albedo = torch.tensor([0.8, 0.5, 0.2]).expand(*points.shape[:-1], 3)
        return FieldOutput(occupancy=occupancy, albedo=albedo,
                           branch_index=(points[..., 1] > 0).long())  # fmt: skip

    model.field_of = lambda codes: field
    return codes, cam, radius


def test_render_of_an_analytic_sphere_matches_the_ray_sphere_intersection():
    model = tiny(render_size=16, num_samples=64, num_refine=8).eval()
    codes, cam, radius = _sphere_codes(model, 2)
    with torch.no_grad():
        render = model.render_codes(codes, (32, 32))
    rays = cam.rays_at(render.pixels)
    # analytic: |o + t d| = r
    o, d = rays.origins, rays.directions
    bq = (o * d).sum(-1)
    disc = bq**2 - (o * o).sum(-1) + radius**2
    inside = disc > 0
    clear = disc.abs() > 0.01  # pixels grazing the rim may go either way
    assert torch.equal(render.mask[clear], inside[clear]) and inside.sum() > 50
    t = -bq - disc.clamp_min(0).sqrt()
    normals = torch.nn.functional.normalize(o + t[..., None] * d, dim=-1)
    hit = render.mask & clear
    torch.testing.assert_close(render.normals[hit], normals[hit], atol=0.03, rtol=0)
    shading = sh_shading(normals, codes["lighting"])
    albedo = torch.tensor([0.8, 0.5, 0.2])
    torch.testing.assert_close(render.rgb[hit], (albedo * shading)[hit], atol=0.02, rtol=0)
    assert (render.rgb[~render.mask] == 1).all() and (render.branch[~render.mask] == -1).all()
    assert render.image("rgb").shape == (2, 3, 16, 16) and render.image("mask").shape == (2, 16, 16)


def test_model_render_and_segment_shapes(tiny_procedural):
    model = tiny().eval()
    images = batch_of(ProceduralDataset(tiny_procedural, "test"), 2)["image"]
    render = model.render(images)
    assert render.rgb.shape == (2, 36, 3) and render.occupancy.shape == (2, 36)
    labels = model.segment(images, torch.rand(2, 10, 3) - 0.5)
    assert labels.shape == (2, 10) and labels.min() >= 0 and labels.max() < 4
    meshes = model.reconstruct(images, resolution=16)
    assert len(meshes) == 2
    # the shape field (what extraction and segmentation read) is the joint field
    # without its albedo decoder: the same occupancy and branches
    points = torch.rand(2, 50, 3) - 0.5
    with torch.no_grad():
        codes = model.encode(images)[0]
        joint, shape = model.field_of(codes)(points), model.field_for(images)(points)
    assert shape.albedo is None and joint.albedo is not None
    torch.testing.assert_close(shape.occupancy, joint.occupancy, rtol=0, atol=0)
    assert torch.equal(shape.branch_index, joint.branch_index)


def test_a_singular_regressed_camera_renders_finite_values(tiny_procedural):
    # The camera head predicting a rank-2 P (what averaging views around an object
    # gives; it stopped a stage-2 run once) renders finite values, no error.
    model = tiny()
    with torch.no_grad():
        model.camera_head.linear.weight.zero_()
        mean = model.camera_head.mean.clone()
        mean[:, 2] = 0.0  # the third column of M: rank 2
        model.camera_head.linear.bias.copy_(((mean - model.camera_head.mean)
                                             / model.camera_head.std).flatten())  # fmt: skip
    images = batch_of(ProceduralDataset(tiny_procedural, "test"), 2)["image"]
    codes, _ = model.encode(images)
    assert (codes["camera_standardised"] * model.camera_head.std + model.camera_head.mean)[
        :, :, :3
    ].det().abs().max() < 1e-6
    render = model.render_codes(codes, tuple(images.shape[-2:]))
    assert torch.isfinite(render.rgb).all() and model.num_part_labels == 4
    assert model.num_part_labels == model.joint.occupancy.num_branches


def test_part_segmentation_scores_truth_as_one_and_bands_by_the_parts(tiny_procedural):
    data = ProceduralDataset(tiny_procedural, "test")

    def index_of(item):
        return next(j for j in range(len(data)) if torch.equal(data[j]["image"], item["image"]))

    def semantic(item, points):  # any relabelling of the semantic parts
        return (data.part_shape(index_of(item)).semantic_index(points) + 3) % 32

    def primitive(item, points):
        return (data.part_shape(index_of(item)).part_index(points) + 5) % 32

    report = evaluate_part_segmentation(data, predict=semantic, num_labels=32)
    assert report.summary["iou"] == pytest.approx(1.0)
    assert set(report.per_category) == set(data.categories)
    assert all(0 <= r["height_bands"] <= 1 for r in report.rows)
    by_primitive = evaluate_part_segmentation(
        data, predict=primitive, num_labels=32, parts="primitive"
    )
    assert by_primitive.summary["iou"] == pytest.approx(1.0)
    # a chair's four legs are one semantic part: labelling each leg apart (or the
    # legs as one) is right at one level only
    for wrong in (
        evaluate_part_segmentation(data, predict=primitive, num_labels=32),
        evaluate_part_segmentation(data, predict=semantic, num_labels=32, parts="primitive"),
    ):
        assert wrong.per_category["chair"]["iou"] < 0.9
    for row, other in zip(report.rows, by_primitive.rows, strict=True):
        shape = data.part_shape(row["index"])
        assert row["parts"] <= min(len(shape.semantic_parts), other["parts"])
        assert other["parts"] <= len(shape.parts)

    # a single label scores 1 / parts at most on every item
    def one_label(item, points):
        return torch.zeros(len(points), dtype=torch.long)

    one = evaluate_part_segmentation(data, predict=one_label, num_labels=1)
    assert all(r["iou"] <= 1 / r["parts"] + 1e-9 for r in one.rows)
    with pytest.raises(ValueError, match="exactly one"):
        evaluate_part_segmentation(data)
    with pytest.raises(ValueError, match="parts"):
        evaluate_part_segmentation(data, predict=one_label, num_labels=1, parts="leg")


def test_voxel_wrapper_is_what_stage_one_reads(tiny_procedural):
    model = tiny()
    model.set_stage("decoders")
    data = model.stage_dataset(ProceduralDataset(tiny_procedural, "train"), resolution=8,
                               num_points=64)  # fmt: skip
    assert isinstance(data, WithColouredVoxels) and data.resolution == 8
    assert data[0]["voxel_points"].shape == (64, 3)


@pytest.mark.slow
def test_the_demo_draws_the_segmentation_of_a_model_that_segments(
    tiny_procedural, tmp_path, monkeypatch
):
    # A tiny MSU checkpoint stands in for the shipped one, its field replaced by a
    # sphere whose two halves (x < 0, x > 0) are branches 0 and 1: the panel gets the
    # parts column, the mesh with each face coloured by its branch.
    from types import SimpleNamespace

    import svrecon.engine.demo as demo
    from svrecon.fields import FieldOutput
    from svrecon.viz import PART_PALETTE

    def halves(self, images, camera=None):
        def field(points):
            occupancy = torch.sigmoid(-200 * (points.norm(dim=-1) - 0.3))
            return FieldOutput(occupancy=occupancy, branch_index=(points[..., 0] > 0).long())

        return field

    monkeypatch.setattr(MSU, "field_for", halves)

    config = _config(tiny_procedural, tmp_path / "run", "decoders", stage_options={"resolution": 8})
    train(dataclasses.replace(config, iterations=1), progress=False)
    spec = SimpleNamespace(checkpoint_path=lambda: tmp_path / "run" / "checkpoint.pt",
                           surface_kind="occupancy")  # fmt: skip
    monkeypatch.setattr(demo, "MODELS", {"msu": spec})
    panels = []
    monkeypatch.setattr(demo, "save_panel", lambda rows, path, titles: panels.append(
        (rows, titles)) or path)  # fmt: skip
    demo.run_demo(tmp_path / "demo", shapes=1, size=32)
    (rows, titles) = panels[0]
    assert titles[-1] == "parts (novel 1)" and len(rows[0]) == len(titles)
    parts = rows[0][-1]
    assert parts.shape == (3, 32, 32)
    covered = parts.flatten(1)[:, (parts < 1).any(0).flatten()]
    hue = covered / covered.amax(0, keepdim=True)  # the palette colour, shading divided out
    palette = torch.from_numpy(PART_PALETTE[:2]).float()
    nearest = torch.cdist(hue.T, palette / palette.amax(1, keepdim=True)).argmin(1)
    assert (nearest == 0).sum() > 5 and (nearest == 1).sum() > 5  # both halves drawn
