"""The subcommands of ``svrecon``: each is an ``add_*`` that declares its arguments
and a ``run_*`` that does the work (imports are deferred, so ``svrecon --help`` stays
fast)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from ..metrics import PROTOCOLS
from ..models import MODELS, get_model
from .errors import UsageError, at_least, positive_float

DEFAULT_DATA = ".cache/procedural"


def add_data(sub) -> None:
    p = sub.add_parser("data", help="write the procedural dataset, or a mesh collection's")
    p.add_argument("--root", help=f"default {DEFAULT_DATA}; .cache/meshes/<name> for meshes")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--meshes", help="a folder of OBJ/OFF/PLY/GLB meshes, one sub-folder "
                        "per category (svrecon.data.mesh_collection)")  # fmt: skip
    source.add_argument("--furniture", help="the CC0 furniture collection (its index.csv)")
    p.add_argument("--convention", choices=("nmr", "r2n2"), default="nmr", help="meshes' views")
    p.add_argument("--up", choices=("y", "z"), default="y", help="the meshes' up axis")
    p.add_argument("--workers", type=at_least(1), help="processes (default: the CPUs)")
    p.add_argument("--train-shapes", type=at_least(1), default=120, help="per category")
    p.add_argument("--test-shapes", type=at_least(1), default=8, help="per category")
    p.add_argument("--train-views", type=at_least(1), default=1)
    p.add_argument("--test-views", type=at_least(1), default=2)
    p.add_argument("--size", type=at_least(8), default=64)
    p.add_argument("--seed", type=at_least(0), default=0)
    p.set_defaults(run=run_data)


def run_data(args) -> None:
    from ..data import generate_procedural_dataset

    if args.meshes or args.furniture:
        from ..data.furniture import furniture_meshes
        from ..data.mesh_collection import generate_mesh_dataset, meshes_in

        folder = Path(args.meshes or args.furniture)
        if not folder.is_dir():
            raise UsageError(f"--{'meshes' if args.meshes else 'furniture'}: no folder {folder}")
        try:
            entries = meshes_in(folder) if args.meshes else furniture_meshes(folder)
        except (FileNotFoundError, ValueError) as exc:
            raise UsageError(str(exc)) from None
        root = args.root or f".cache/meshes/{'furniture' if args.furniture else folder.name}"
        path = generate_mesh_dataset(
            entries, root, {"train": args.train_views, "test": args.test_views},
            image_size=args.size, convention=args.convention, up=args.up, seed=args.seed,
            workers=args.workers,
        )  # fmt: skip
        summary = json.loads(path.read_text()).get("summary", {})
        print(f"dataset: {path} ({summary.get('shapes')} shapes in "
              f"{summary.get('seconds', 0):.0f} s; sign untrusted for "
              f"{100 * summary.get('sign_untrusted_fraction', 0):.1f}%)")  # fmt: skip
        return
    path = generate_procedural_dataset(
        args.root or DEFAULT_DATA,
        {"train": args.train_shapes, "test": args.test_shapes},
        {"train": args.train_views, "test": args.test_views},
        image_size=args.size,
        seed=args.seed,
    )
    print(f"dataset: {path}")


def _procedural_protocol(classes) -> str:
    """The procedural protocol for these model classes: view-centric when one of them
    estimates the viewpoint (its canonical frame is its own)."""
    return (
        "procedural_view_centric" if any(c.estimates_viewpoint for c in classes) else "procedural"
    )


def add_train(sub) -> None:
    p = sub.add_parser("train", help="train a registered model (torchrun-aware)")
    p.add_argument("--model", choices=sorted(MODELS), required=True)
    p.add_argument("--preset", default="cpu", help="a preset of the model (cpu, paper, ...)")
    p.add_argument("--model-kwargs", help="JSON overrides of the model's arguments")
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--out", default="runs/default")
    p.add_argument("--iterations", type=at_least(1), default=2000)
    p.add_argument("--batch-size", type=at_least(1), default=16)
    p.add_argument("--lr", type=positive_float, default=1e-4)
    p.add_argument("--seed", type=at_least(0), default=0)
    p.add_argument(
        "--pretrain-iterations",
        "--sphere-iterations",
        type=at_least(0),
        default=0,
        help="steps of the model's pretraining stage (SDF-SRN: the sphere)",
    )
    p.add_argument("--pretrain-lr", "--sphere-lr", type=positive_float,
                   help="the pretraining stage's learning rate (default: --lr)")  # fmt: skip
    p.add_argument("--checkpoint-every", type=at_least(1), default=500)
    p.add_argument("--eval-every", type=at_least(0), default=0)
    p.add_argument("--protocol", choices=sorted(PROTOCOLS), default=None,
                   help="the protocol of the periodic evaluation (default: procedural, or "
                   "procedural_view_centric for a model that estimates the viewpoint)")  # fmt: skip
    p.add_argument("--stage", help="the stage to train, for a model trained in stages (MSU)")
    p.add_argument("--stage-options", help="JSON options of the stage's data (MSU: "
                   '\'{"resolution": 32}\')')  # fmt: skip
    p.add_argument("--init-from", help="start from this checkpoint's weights (the previous stage)")
    p.add_argument("--resume", help="a checkpoint.pt of the same run")
    p.add_argument("--export", help="also write the weights alone here (as shipped)")
    p.set_defaults(run=run_train)


def run_train(args) -> None:
    from ..data import ProceduralDataset
    from ..engine import TrainConfig, export_weights, train

    spec = get_model(args.model)
    if args.preset not in spec.presets:
        raise UsageError(f"--preset: {args.model} has {sorted(spec.presets)}, not {args.preset!r}")
    try:
        overrides = json.loads(args.model_kwargs or "{}")
    except json.JSONDecodeError as exc:
        raise UsageError(f"--model-kwargs: not valid JSON ({exc})") from None
    if not isinstance(overrides, dict):
        raise UsageError("--model-kwargs: expected a JSON object")
    kwargs = spec.preset(args.preset, **overrides)
    try:
        spec.cls(**kwargs)  # a bad argument is the user's, reported before any work
    except TypeError as exc:
        raise UsageError(f"--model-kwargs: {exc}") from None
    try:
        spec.cls.check_stage(args.stage)
    except ValueError as exc:
        raise UsageError(f"--{exc}") from None
    try:
        stage_options = json.loads(args.stage_options) if args.stage_options else None
    except json.JSONDecodeError as exc:
        raise UsageError(f"--stage-options: not valid JSON ({exc})") from None
    if stage_options is not None and not isinstance(stage_options, dict):
        raise UsageError("--stage-options: expected a JSON object")
    if args.init_from is not None and not Path(args.init_from).is_file():
        raise UsageError(f"--init-from: {args.init_from} does not exist")
    dataset = ProceduralDataset(args.data, "train")
    if len(dataset) < args.batch_size:
        raise UsageError(f"--batch-size: {args.batch_size} exceeds the {len(dataset)} items")
    config = TrainConfig(
        model=args.model, model_kwargs=kwargs, data_root=args.data, out_dir=args.out,
        iterations=args.iterations, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
        pretrain_iterations=args.pretrain_iterations, pretrain_lr=args.pretrain_lr,
        checkpoint_every=args.checkpoint_every, eval_every=args.eval_every,
        protocol=args.protocol or _procedural_protocol([spec.cls]),
        stage=args.stage, stage_options=stage_options, init_from=args.init_from,
    )  # fmt: skip
    train(config, resume=args.resume, train_set=dataset)
    checkpoint = Path(args.out) / "checkpoint.pt"
    print(f"checkpoint: {checkpoint}")
    if args.export:
        print(f"weights: {export_weights(checkpoint, args.export)}")


def add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="score checkpoints on the test split")
    p.add_argument("checkpoint", nargs="*")
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--protocol", choices=sorted(PROTOCOLS), default=None,
                   help="default: procedural, or procedural_view_centric when a model "
                   "estimates the viewpoint")  # fmt: skip
    p.add_argument("--items", type=at_least(1), default=None, help="at most this many shapes")
    p.add_argument("--sphere", action="store_true", help="also score the fitted sphere")
    p.add_argument("--table", help="also write per-item rows here (.csv or .json)")
    p.set_defaults(run=run_evaluate)


def run_evaluate(args) -> None:
    from ..data import ProceduralDataset
    from ..engine import (
        EvaluationReport,
        evaluate_dataset,
        fit_sphere_baseline,
        load_model,
        sphere_mesh,
    )

    if not args.checkpoint and not args.sphere:
        raise UsageError("evaluate: give checkpoints to score, or --sphere")
    if args.table and Path(args.table).suffix not in (".csv", ".json"):
        raise UsageError(f"--table: expected a .csv or .json path, got {args.table}")
    test = ProceduralDataset(args.data, "test")
    models = [(str(path), load_model(path)) for path in args.checkpoint]
    args.protocol = args.protocol or _procedural_protocol([type(m) for _, m in models])
    reports = {}
    if args.sphere:
        radius = fit_sphere_baseline(ProceduralDataset(args.data, "train"))
        name = f"sphere (r={radius:.3f})"
        reports[name] = evaluate_dataset(
            test, args.protocol, mesh=sphere_mesh(radius), max_items=args.items
        )
    for name, model in models:
        reports[name] = evaluate_dataset(test, args.protocol, model=model, max_items=args.items)
    print(json.dumps({name: r.summary for name, r in reports.items()}, indent=1))
    if args.table:
        rows = [{"prediction": name, **row} for name, r in reports.items() for row in r.rows]
        table = EvaluationReport(args.protocol, rows)
        path = (
            table.to_csv(args.table) if args.table.endswith(".csv") else table.to_json(args.table)
        )
        print(f"table: {path}")


def add_reconstruct(sub) -> None:
    p = sub.add_parser("reconstruct", help="image (+ mask) -> mesh and a picture")
    p.add_argument("image")
    p.add_argument("--mask", help="default: the image's alpha channel, else non-white pixels")
    p.add_argument("--model", choices=sorted(MODELS), default=None,
                   help="default: the checkpoint's model, or disn")  # fmt: skip
    p.add_argument("--checkpoint", help="default: the shipped checkpoint of --model")
    p.add_argument("--out", default="reconstruction.obj")
    p.add_argument("--picture", help="default: --out with .png")
    p.add_argument("--size", type=at_least(8), default=64)
    p.add_argument("--azimuth", type=float, default=30.0, help="degrees (the input's camera)")
    p.add_argument("--elevation", type=float, default=25.0, help="degrees")
    p.add_argument("--resolution", type=at_least(8), default=64)
    p.set_defaults(run=run_reconstruct)


def run_reconstruct(args) -> None:
    import torch

    from ..data import view_camera
    from ..engine import load_model, shipped_checkpoint
    from ..mesh import export_mesh
    from ..viz import novel_cameras, reconstruction_row, save_panel
    from .images import load_image

    if not (math.isfinite(args.azimuth) and math.isfinite(args.elevation)):
        raise UsageError("--azimuth, --elevation: expected finite angles")
    if abs(args.elevation) >= 90:
        raise UsageError(f"--elevation: expected within (-90, 90) degrees, got {args.elevation}")
    out = Path(args.out)
    if out.suffix.lower() not in (".obj", ".ply", ".off", ".stl", ".glb"):
        raise UsageError(f"--out: expected a mesh file (.obj .ply .off .stl .glb), got {out}")
    picture = Path(args.picture) if args.picture else out.with_suffix(".png")
    inputs = {Path(p).resolve() for p in (args.image, args.mask) if p is not None}
    for flag, path in (("--out", out), ("--picture", picture)):
        if path.resolve() in inputs:
            raise UsageError(f"{flag}: {path} is an input file; writing there would overwrite it")
    if picture.suffix.lower() not in (".png", ".jpg", ".jpeg", ".pdf", ".svg"):
        raise UsageError(f"--picture: expected a .png, .jpg, .pdf or .svg file, got {picture}")
    if args.checkpoint is None:
        model = load_model(shipped_checkpoint(args.model or "disn"))
    else:
        model = load_model(args.checkpoint, expect=args.model)
    image, mask = load_image(args.image, args.mask, args.size)
    camera = view_camera(
        torch.tensor([math.radians(args.azimuth)]), torch.tensor([math.radians(args.elevation)]),
        args.size,
    )  # fmt: skip
    (mesh,) = model.reconstruct(image, camera, resolution=args.resolution, masks=mask)
    export_mesh(mesh, out)
    print(f"mesh: {out} ({len(mesh.vertices)} vertices, {len(mesh.faces)} faces)")
    row = reconstruction_row(image[0], mesh, camera, novel_cameras(args.size))
    save_panel([row], picture, ["input", "input view", "novel 1", "novel 2", "novel 3"])
    print(f"picture: {picture}")


def add_demo(sub) -> None:
    p = sub.add_parser("demo", help="reconstruct held-out procedural shapes")
    p.add_argument("--out", default="demo_output")
    p.add_argument("--shapes", type=at_least(1), default=6)
    p.add_argument("--seed", type=at_least(0), default=12345)
    p.set_defaults(run=run_demo)


def run_demo(args) -> None:
    from ..engine.demo import run_demo as demo

    start = time.time()
    demo(Path(args.out), shapes=args.shapes, seed=args.seed)
    print(f"demo finished in {time.time() - start:.0f} s; outputs in {args.out}")


COMMANDS = (add_data, add_train, add_evaluate, add_reconstruct, add_demo)
