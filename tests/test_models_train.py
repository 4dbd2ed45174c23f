"""Assembled models, the training loop (resume, checkpoints, DDP) and the CLI, on a
tiny procedural dataset written by the tests."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from svrecon.cameras import OrthographicCamera
from svrecon.cli import main as cli_main
from svrecon.data import ProceduralDataset
from svrecon.engine import TrainConfig, load_checkpoint, load_model, save_checkpoint, train
from svrecon.models import DISN, SDFSRN

TINY_SDF_SRN = dict(encoder="conv", latent_dim=32, trunk_dims=(16, 16), hidden_dims=(16,),
                    num_rays=64, silhouette_samples=3, eikonal_points=128)  # fmt: skip
TINY_CAT3D = dict(encoder="conv", estimator="conv", encoder_widths=(8, 16),
                  estimator_widths=(8, 16), latent_dim=16, texture_dim=8, trunk_dims=(16, 16),
                  trunk_concat=(1,), hidden_dims=(16,), num_categories=6, render_size=16,
                  fixed_angles={"roll": 0.0}, silhouette_samples=2, eikonal_points=64,
                  discriminator_channels=8, clip_after=1)  # fmt: skip
TINY_DISN = dict(encoder="conv", global_dim=16, point_dims=(16, 16), head_dims=(16,),
                 num_points=256)  # fmt: skip


def batch_of(root, n=4, split="train"):
    ds = ProceduralDataset(root, split)
    return torch.utils.data.default_collate([ds[i] for i in range(n)])


def test_sdf_srn_losses_perspective_and_orthographic(tiny_procedural):
    torch.manual_seed(0)
    model = SDFSRN(**TINY_SDF_SRN)
    batch = batch_of(tiny_procedural)
    losses = model.losses(batch)
    assert set(losses) == {"rgb", "silhouette", "intersection", "free_space", "eikonal", "total"}
    expected = sum(model.loss_weights[k] * v for k, v in losses.items() if k != "total")
    assert torch.isclose(losses["total"], expected)
    losses["total"].backward()
    for part in (model.encoder, model.field, model.marcher):
        assert all(torch.isfinite(p.grad).all() for p in part.parameters() if p.grad is not None)
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    # the same model trains through an orthographic camera (SDF-SRN's Pascal3D setting)
    ortho = OrthographicCamera(torch.full((4,), 32 / 1.4), torch.full((4, 2), 16.0), batch["pose"])
    model.zero_grad()
    out = model.losses({**batch, "camera": ortho})
    out["total"].backward()
    assert all(torch.isfinite(v) for v in out.values())


def test_sdf_srn_sphere_pretraining_fits_the_field_and_trains_the_marcher(tiny_procedural):
    torch.manual_seed(0)
    model = SDFSRN(**TINY_SDF_SRN).double()
    batch = {
        k: v.double() if v.is_floating_point() else v for k, v in batch_of(tiny_procedural).items()
    }
    shared = [p for m in (model.encoder, model.field) for p in m.parameters()]
    torch.manual_seed(1)
    loss = model.pretraining_loss(batch, radius=0.4)
    grads = torch.autograd.grad(loss, shared + list(model.marcher.parameters()), allow_unused=True)
    grads = [torch.zeros(()) if g is None else g for g in grads]
    # The encoder and field learn only from the fit to |x| - r (the first random draw),
    # which is recomputed here by hand; the marcher term reaches the marcher alone.
    torch.manual_seed(1)
    field = model.field_for(batch["image"])
    points = (torch.rand(4, 1024, 3, dtype=torch.float64) * 2 - 1) * model.eikonal_range
    fit = ((field(points).sdf - (points.norm(dim=-1) - 0.4)) ** 2).mean()
    expected = torch.autograd.grad(fit, shared, allow_unused=True)
    for g, e in zip(grads[: len(shared)], expected, strict=True):
        assert torch.allclose(g, torch.zeros(()) if e is None else e, atol=1e-12)
    assert loss.item() > fit.item()
    assert any(g.abs().sum() > 0 for g in grads[len(shared) :])


@pytest.mark.parametrize("camera", ["gt", "predicted"])
def test_disn_losses_and_camera_network(tiny_procedural, camera):
    torch.manual_seed(0)
    model = DISN(camera=camera, **TINY_DISN)
    losses = model.losses(batch_of(tiny_procedural))
    assert ("camera" in losses) == (camera == "predicted")
    losses["total"].backward()
    if camera == "predicted":
        assert model.camera_head.linear.weight.grad.abs().sum() > 0
    assert model.decoder.local_head[0].weight.grad.abs().sum() > 0


def test_reconstruct_returns_meshes(tiny_procedural):
    batch = batch_of(tiny_procedural, 2, "test")
    model = SDFSRN(**TINY_SDF_SRN)
    meshes = model.reconstruct(batch["image"], resolution=16)
    assert len(meshes) == 2 and all(isinstance(m, trimesh.Trimesh) for m in meshes)


def tiny_config(root, out, model="disn", iterations=4, **kw):
    kwargs = {"disn": TINY_DISN, "sdf_srn": TINY_SDF_SRN, "cat3d": TINY_CAT3D}[model]
    return TrainConfig(
        model=model, model_kwargs=kwargs, data_root=str(root), out_dir=str(out),
        iterations=iterations, batch_size=2, checkpoint_every=2, log_every=1, **kw,
    )  # fmt: skip


@pytest.mark.parametrize("model", ["disn", "sdf_srn", "cat3d"])
def test_resume_continues_with_identical_losses(tiny_procedural, tmp_path, model):
    full = train(tiny_config(tiny_procedural, tmp_path / "full", model), progress=False)
    first = train(
        tiny_config(tiny_procedural, tmp_path / "part", model, iterations=2), progress=False
    )
    rest = train(
        tiny_config(tiny_procedural, tmp_path / "part", model),
        resume=tmp_path / "part" / "checkpoint.pt",
        progress=False,
    )
    assert [r["total"] for r in first + rest] == [r["total"] for r in full]
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "part" / "checkpoint.pt")
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert set(a["optimizers"]) == set(b["optimizers"])
    if model == "cat3d":  # two optimizers, each saved and restored
        assert set(a["optimizers"]) == {"model", "discriminator"}
        assert [r["discriminator/total"] for r in first + rest] == [
            r["discriminator/total"] for r in full
        ]


def test_bad_checkpoints_give_clear_errors(tiny_procedural, tmp_path):
    train(tiny_config(tiny_procedural, tmp_path / "run", iterations=2), progress=False)
    good = tmp_path / "run" / "checkpoint.pt"
    corrupted = tmp_path / "corrupted.pt"
    corrupted.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match="corrupted"):
        load_checkpoint(corrupted)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ValueError, match="not a svrecon checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(ValueError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    other = tiny_config(tiny_procedural, tmp_path / "other")
    other.model_kwargs = {**TINY_DISN, "global_dim": 8}
    with pytest.raises(ValueError, match="model settings"):
        train(other, resume=good, progress=False)
    with pytest.raises(ValueError, match="sdf_srn"):
        train(tiny_config(tiny_procedural, tmp_path / "x", "sdf_srn"), resume=good, progress=False)
    weights_only = tmp_path / "weights.pt"
    save_checkpoint(weights_only, load_model(good))
    with pytest.raises(ValueError, match="optimizer"):
        train(tiny_config(tiny_procedural, tmp_path / "y"), resume=weights_only, progress=False)
    state = load_checkpoint(good)
    state["state_dict"].pop(next(iter(state["state_dict"])))
    torch.save(state, tmp_path / "mismatched.pt")
    with pytest.raises(ValueError, match="does not match"):
        load_model(tmp_path / "mismatched.pt")


DDP_SCRIPT = """
import sys
from svrecon.engine import TrainConfig, train
kwargs = dict(encoder="conv", global_dim=16, point_dims=(16, 16), head_dims=(16,), num_points=4096)
train(TrainConfig(model="disn", model_kwargs=kwargs, data_root=sys.argv[1], out_dir=sys.argv[2],
                  iterations=3, batch_size=4, checkpoint_every=3), progress=False, device="cpu")
"""


@pytest.mark.slow
def test_ddp_on_cpu_matches_one_process(tiny_procedural, tmp_path):
    """Two gloo ranks with half the batch each end with the weights of one process on
    the whole batch. DISN with every SDF sample used has no randomness in its loss."""
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = [sys.executable, str(script), str(tiny_procedural), str(tmp_path / "one")]
    subprocess.run(one, check=True, env=env, timeout=300)
    two = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(script), str(tiny_procedural), str(tmp_path / "two")]  # fmt: skip
    subprocess.run(two, check=True, env=env, timeout=300)
    a = load_checkpoint(tmp_path / "one" / "checkpoint.pt")["state_dict"]
    b = load_checkpoint(tmp_path / "two" / "checkpoint.pt")["state_dict"]
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5
    assert any((a[k] != 0).any() for k in a)


def test_cli_evaluate_and_reconstruct(tiny_procedural, tmp_path, capsys):
    train(tiny_config(tiny_procedural, tmp_path / "run", iterations=2), progress=False)
    ckpt = str(tmp_path / "run" / "checkpoint.pt")
    cli_main(["evaluate", ckpt, "--data", str(tiny_procedural), "--items", "2", "--sphere"])
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2 and all("chamfer" in r and r["items"] == 2 for r in rows.values())
    from PIL import Image

    item = ProceduralDataset(tiny_procedural, "test")[0]
    image = (item["image"].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "input.png")
    Image.fromarray(item["mask"].numpy().astype(np.uint8) * 255).save(tmp_path / "mask.png")
    out = tmp_path / "mesh.obj"
    cli_main([
        "reconstruct", str(tmp_path / "input.png"), "--mask", str(tmp_path / "mask.png"),
        "--checkpoint", ckpt, "--out", str(out), "--size", "32", "--resolution", "16",
    ])  # fmt: skip
    assert Path(out).exists() and "mesh:" in capsys.readouterr().out


@pytest.mark.slow
def test_demo_runs_with_the_shipped_checkpoints(tmp_path):
    from svrecon.engine import shipped_checkpoint
    from svrecon.engine.demo import run_demo

    models = ("disn", "sdf_srn", "cat3d", "msu")
    assert all(shipped_checkpoint(m).stat().st_size < 20e6 for m in models)
    results = run_demo(tmp_path, shapes=2)
    for name in models:
        assert (tmp_path / f"demo_{name}.png").exists()
        assert len(list((tmp_path / "meshes").glob(f"{name}_*.obj"))) == 2
        assert all(0 <= r["chamfer"] < 0.2 for r in results[name])
    assert len(list((tmp_path / "inputs").glob("*.png"))) == 2
