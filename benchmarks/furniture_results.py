"""The real-shapes benchmark: every registered model on the held-out pieces of the CC0
furniture collection, beside the sphere fitted to its training pieces.

    python -m svrecon data --furniture ../shared/data/cc0-furniture     # .cache/meshes/furniture
    python benchmarks/furniture_results.py train --model disn --iterations 1000
    python benchmarks/furniture_results.py train --model sdf_srn --iterations 600
    python benchmarks/furniture_results.py table --pictures benchmarks/pictures
    python benchmarks/furniture_results.py table --only msu   # add one model's row

``train`` fine-tunes the shipped procedural checkpoint of a model on the furniture
training pieces (its settings, the data's known cameras; ``--scratch`` starts from
random weights instead, with SDF-SRN's sphere pretraining). ``table`` scores, under
the ``procedural`` protocol (``procedural_view_centric`` for the models that estimate
their viewpoint), the shipped checkpoints as they are (trained on procedural shapes
only) and every ``runs/furniture/*/checkpoint.pt``, on the first view of each test
piece, and saves a preview panel per furniture-trained run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DATA = ".cache/meshes/furniture"


def run_train(args) -> None:
    from svrecon.engine import TrainConfig, export_weights, load_checkpoint, train
    from svrecon.models import get_model

    spec = get_model(args.model)
    shipped = spec.checkpoint_path()
    if shipped is None:
        raise SystemExit(f"{args.model}: no shipped checkpoint to start from or copy settings of")
    kwargs = load_checkpoint(shipped)["model_config"]
    name = f"{args.model}{'_scratch' if args.scratch else ''}_seed{args.seed}"
    out = Path(args.out) / name
    scratch_pretrain = 300 if args.scratch and args.model == "sdf_srn" else 0
    config = TrainConfig(
        model=args.model, model_kwargs=kwargs, data_root=args.data, out_dir=str(out),
        iterations=args.iterations, batch_size=args.batch_size, seed=args.seed,
        checkpoint_every=100, init_from=None if args.scratch else str(shipped),
        pretrain_iterations=scratch_pretrain, pretrain_lr=1e-3,
    )  # fmt: skip
    resume = out / "checkpoint.pt"
    train(config, resume=resume if resume.exists() else None)
    if args.export:
        print(f"weights: {export_weights(resume, args.export)}")


def run_table(args) -> None:
    from svrecon.data import ProceduralDataset
    from svrecon.engine import evaluate_dataset, fit_sphere_baseline, load_model, sphere_mesh
    from svrecon.models import MODELS

    train_set, test = ProceduralDataset(args.data, "train"), ProceduralDataset(args.data, "test")
    runs = [(f"{name}, shipped (procedural only)", spec.checkpoint_path(), False)
            for name, spec in MODELS.items() if spec.checkpoint_path() is not None]  # fmt: skip
    runs += [(f"{p.parent.name} (furniture)", p, True)
             for p in sorted(Path(args.out).glob("*/checkpoint.pt"))]  # fmt: skip
    previous = Path(args.out) / "table.json"
    if args.only:
        runs = [r for r in runs if r[0].split(",")[0] in args.only]
        if not runs:
            raise SystemExit(f"--only: no shipped checkpoint among {args.only}")
    if args.only and previous.exists():  # the other rows as the last full table had them
        rows = json.loads(previous.read_text())
    else:
        radius = fit_sphere_baseline(train_set)
        rows = {f"fitted sphere (r = {radius:.2f})": evaluate_dataset(
            test, "procedural", mesh=sphere_mesh(radius)).summary}  # fmt: skip
    for label, path, own in runs:
        model = load_model(path)
        protocol = "procedural_view_centric" if model.estimates_viewpoint else "procedural"
        rows[label] = {**evaluate_dataset(test, protocol, model=model).summary,
                       "protocol": protocol}  # fmt: skip
        if own and args.pictures:
            from svrecon.viz import save_preview

            picture = Path(args.pictures) / f"furniture_{path.parent.name}.png"
            picture.parent.mkdir(parents=True, exist_ok=True)
            save_preview(model, test, picture, items=4)
            rows[label]["picture"] = str(picture)
    missing = [name for name, spec in MODELS.items() if spec.checkpoint_path() is None]
    base = rows[next(iter(rows))]["chamfer"]
    print(f"furniture test split: {len(test.evaluation_indices())} pieces; "
          f"not scored (no checkpoint): {', '.join(missing) or 'none'}")  # fmt: skip
    print("| model | Chamfer | vs sphere | F@0.02 | F@0.05 | F@0.1 | protocol |")
    print("|---|---|---|---|---|---|---|")
    for label, r in rows.items():
        print(f"| {label} | {r['chamfer']:.4f} | {100 * (1 - r['chamfer'] / base):+.0f}% "
              f"| {r['fscore@0.02']:.3f} | {r['fscore@0.05']:.3f} | {r['fscore@0.1']:.3f} "
              f"| {r.get('protocol', 'procedural')} |")  # fmt: skip
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "table.json").write_text(json.dumps(rows, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("--model", choices=("disn", "sdf_srn"), required=True)
    t.add_argument("--iterations", type=int, default=1000)
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--scratch", action="store_true", help="random weights, not the shipped ones")
    t.add_argument("--export", help="also write the weights alone here")
    s = sub.add_parser("table")
    s.add_argument("--pictures", help="folder for the preview panels")
    s.add_argument("--only", nargs="+", metavar="MODEL",
                   help="score only these shipped models; the other rows are read from "
                   "the previous table.json (without one: beside the sphere alone)")  # fmt: skip
    for p in (t, s):
        p.add_argument("--data", default=DATA)
        p.add_argument("--out", default="runs/furniture")
    args = parser.parse_args()
    (run_train if args.command == "train" else run_table)(args)


if __name__ == "__main__":
    main()
