"""``svrecon`` / ``python -m svrecon``: data, train, evaluate, reconstruct, demo."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from importlib import resources
from pathlib import Path

import torch

#: CPU-sized model settings used for the shipped checkpoints (docs/procedural.md).
SMALL_PRESETS = {
    "sdf_srn": {
        "encoder": "conv",
        "latent_dim": 256,
        "trunk_dims": [64, 64, 64],
        "hidden_dims": [64],
        "num_rays": 512,
    },
    "disn": {
        "encoder": "conv",
        "camera": "gt",
        "global_dim": 256,
        "point_dims": [64, 128],
        "head_dims": [128, 64],
        "num_points": 1024,
    },
}
DEFAULT_DATA = ".cache/procedural"


def shipped_checkpoint(model: str) -> Path:
    """Path of the checkpoint shipped in the package for ``model``."""
    return Path(str(resources.files("svrecon") / "checkpoints" / f"{model}_procedural.pt"))


def _data(args) -> None:
    from .data import generate_procedural_dataset

    path = generate_procedural_dataset(
        args.root,
        {"train": args.train_shapes, "test": args.test_shapes},
        {"train": args.train_views, "test": args.test_views},
        image_size=args.size,
        seed=args.seed,
    )
    print(f"dataset: {path}")


def _train(args) -> None:
    from .train import TrainConfig, train

    kwargs = dict(SMALL_PRESETS[args.model]) if args.preset == "small" else {}
    kwargs.update(json.loads(args.model_kwargs or "{}"))
    config = TrainConfig(
        model=args.model,
        model_kwargs=kwargs,
        data_root=args.data,
        out_dir=args.out,
        iterations=args.iterations,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        sphere_iterations=args.sphere_iterations,
        sphere_lr=args.sphere_lr,
        checkpoint_every=args.checkpoint_every,
        eval_every=args.eval_every,
    )
    train(config, resume=args.resume)
    checkpoint = Path(args.out) / "checkpoint.pt"
    print(f"checkpoint: {checkpoint}")
    if args.export:
        from .train import export_weights

        print(f"weights: {export_weights(checkpoint, args.export)}")


def _evaluate(args) -> None:
    from .data import ProceduralDataset
    from .evaluation import evaluate_model, evaluate_sphere, fit_sphere_baseline
    from .train import load_model

    test = ProceduralDataset(args.data, "test")
    rows = {}
    if args.sphere:
        radius = fit_sphere_baseline(ProceduralDataset(args.data, "train"))
        rows[f"sphere (r={radius:.3f})"] = evaluate_sphere(radius, test, args.protocol, args.items)
    for path in args.checkpoint:
        model = load_model(path)
        rows[str(path)] = evaluate_model(model, test, args.protocol, args.items)
    print(json.dumps(rows, indent=1))


def _load_image(path: str, mask_path: str | None, size: int) -> torch.Tensor:
    import numpy as np
    from PIL import Image

    image = Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR)
    rgb = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)
    if mask_path is not None:
        mask = Image.open(mask_path).convert("L").resize((size, size), Image.NEAREST)
        m = torch.from_numpy(np.asarray(mask, dtype=np.float32) / 255)[None] > 0.5
        rgb = torch.where(m, rgb, torch.ones_like(rgb))  # the procedural white background
    return rgb[None]


def _reconstruct(args) -> None:
    from .data import view_camera
    from .mesh import export_mesh
    from .train import load_model

    model = load_model(args.checkpoint or shipped_checkpoint(args.model))
    image = _load_image(args.image, args.mask, args.size)
    camera = view_camera(
        torch.tensor([math.radians(args.azimuth)]), torch.tensor([math.radians(args.elevation)]),
        args.size,
    )  # fmt: skip
    (mesh,) = model.reconstruct(image, camera, resolution=args.resolution)
    export_mesh(mesh, args.out)
    print(f"mesh: {args.out} ({len(mesh.vertices)} vertices, {len(mesh.faces)} faces)")


def _demo(args) -> None:
    from .demo import run_demo

    start = time.time()
    run_demo(Path(args.out), shapes=args.shapes, seed=args.seed)
    print(f"demo finished in {time.time() - start:.0f} s; outputs in {args.out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="svrecon", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help="write the procedural dataset")
    p.add_argument("--root", default=DEFAULT_DATA)
    p.add_argument("--train-shapes", type=int, default=120, help="per category")
    p.add_argument("--test-shapes", type=int, default=8, help="per category")
    p.add_argument("--train-views", type=int, default=1)
    p.add_argument("--test-views", type=int, default=2)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_data)

    p = sub.add_parser("train", help="train a model (torchrun-aware)")
    p.add_argument("--model", choices=sorted(SMALL_PRESETS), required=True)
    p.add_argument("--preset", choices=["small", "paper"], default="small")
    p.add_argument("--model-kwargs", help="JSON overrides of the model's arguments")
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--out", default="runs/default")
    p.add_argument("--iterations", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sphere-iterations", type=int, default=0)
    p.add_argument("--sphere-lr", type=float, help="sphere pretraining's (default: --lr)")
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--eval-every", type=int, default=0)
    p.add_argument("--resume", help="a checkpoint.pt of the same run")
    p.add_argument("--export", help="also write the weights alone here (as shipped)")
    p.set_defaults(run=_train)

    p = sub.add_parser("evaluate", help="score checkpoints on the test split")
    p.add_argument("checkpoint", nargs="*")
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--protocol", default="procedural")
    p.add_argument("--items", type=int, default=None, help="at most this many test shapes")
    p.add_argument("--sphere", action="store_true", help="also score the fitted sphere")
    p.set_defaults(run=_evaluate)

    p = sub.add_parser("reconstruct", help="image (+ mask) -> mesh")
    p.add_argument("image")
    p.add_argument("--mask")
    p.add_argument("--model", choices=sorted(SMALL_PRESETS), default="disn")
    p.add_argument("--checkpoint", help="default: the shipped checkpoint of --model")
    p.add_argument("--out", default="reconstruction.obj")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--azimuth", type=float, default=30.0, help="degrees (DISN's camera)")
    p.add_argument("--elevation", type=float, default=25.0, help="degrees")
    p.add_argument("--resolution", type=int, default=64)
    p.set_defaults(run=_reconstruct)

    p = sub.add_parser("demo", help="reconstruct held-out procedural shapes")
    p.add_argument("--out", default="demo_output")
    p.add_argument("--shapes", type=int, default=6)
    p.add_argument("--seed", type=int, default=12345)
    p.set_defaults(run=_demo)

    args = parser.parse_args(argv)
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
