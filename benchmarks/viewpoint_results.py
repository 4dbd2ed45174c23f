"""Cat3D and ShapeClipper on the procedural set with no camera: train one
configuration and seed, then score it on the held-out shapes under the model's
protocol (view-centric with the estimated viewpoint) beside the fitted sphere, and its
azimuth error beside a constant-azimuth baseline.

    python benchmarks/viewpoint_results.py train --model cat3d --config full --seed 0
    python benchmarks/viewpoint_results.py table runs/cat3d_ablation   # mean +- std
    python benchmarks/viewpoint_results.py train --model shapeclipper --iterations 2000 \
        --out runs/shapeclipper --export svrecon/checkpoints/shapeclipper_procedural.pt

``--config`` (the paper's key ablation of each model, same data, steps, batch, seeds):

- Cat3D: ``full``; ``no_metric`` (category metric loss off); ``no_gan_vc`` (generator
  and view-consistency terms off; the discriminator still trains but nothing reads it).
- ShapeClipper: ``full``; ``no_ssc`` (the semantic shape consistency terms off);
  ``no_normal`` (the off-the-shelf normal loss off, in both the input view and the
  neighbour's).

ShapeClipper's neighbours come from :class:`svrecon.semantic.ThumbnailEmbedder` (16 x
16 thumbnails, not CLIP: no CLIP weights can be fetched here), top 5 by cosine over the
training set. The azimuth alignment (a rotation about the up axis and a reflection per
category, :func:`svrecon.metrics.fit_azimuth_alignment`) is fitted on the training
views and applied to the test views; the training views' azimuths are read only for
this score, never in training.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

import torch

CONFIGS = {
    "cat3d": {
        "full": {},
        "no_metric": {"metric": 0.0},
        "no_gan_vc": {"generator": 0.0, "view_consistency": 0.0},
        # the estimator's self-supervision (Eq. 8) at the paper's 0.03 and at 0.3 (the
        # cpu preset, "full", has 1.0)
        "vc_paper": {"view_consistency": 0.03},
        "vc_0.3": {"view_consistency": 0.3},
    },
    "shapeclipper": {
        "full": {},
        "no_ssc": {"ssc_rgb": 0.0, "ssc_mask": 0.0, "ssc_normal": 0.0},
        "no_normal": {"normal": 0.0, "ssc_normal": 0.0},
    },
}
#: Sphere pretraining steps of each model (ShapeClipper starts as a sphere by its
#: geometric initialisation and has no pretraining stage).
PRETRAIN = {"cat3d": 100, "shapeclipper": 0}


def azimuth_trig(model, batch) -> torch.Tensor:
    """The estimator's ``(cos, sin)`` of the azimuth ``[B, 2]``."""
    from svrecon.models import Cat3D

    if isinstance(model, Cat3D):  # its estimator reads the mask too
        return model.estimate_viewpoint(batch["image"], batch["mask"])[:, :2]
    return model.estimate_viewpoint(batch["image"])[0][:, :2]


def predicted_azimuths(model, dataset, indices) -> tuple[torch.Tensor, torch.Tensor, list]:
    """Predicted and true azimuths (degrees) and categories of ``indices``."""
    predicted, truth, groups = [], [], []
    with torch.no_grad():
        for start in range(0, len(indices), 32):
            items = [dataset[i] for i in indices[start : start + 32]]
            batch = torch.utils.data.default_collate(items)
            trig = azimuth_trig(model, batch)
            predicted.append(torch.rad2deg(torch.atan2(trig[:, 1], trig[:, 0])))
            truth.append(torch.rad2deg(batch["azimuth"]))
            groups += [dataset.categories[int(k)] for k in batch["label"]]
    return torch.cat(predicted).double(), torch.cat(truth).double(), groups


def score(model, data_root: str, protocol: str) -> dict:
    from svrecon.data import ProceduralDataset
    from svrecon.engine import evaluate_dataset
    from svrecon.metrics import azimuth_errors, fit_azimuth_alignment

    model.eval()
    train_set = ProceduralDataset(data_root, "train")
    test_set = ProceduralDataset(data_root, "test")
    report = evaluate_dataset(test_set, protocol, model=model, progress=True)
    fit_p, fit_t, fit_g = predicted_azimuths(model, train_set, train_set.evaluation_indices())
    p, t, g = predicted_azimuths(model, test_set, test_set.evaluation_indices())
    alignment = fit_azimuth_alignment(fit_p, fit_t, fit_g)
    errors = azimuth_errors(p, t, alignment, g)
    constant = torch.zeros_like(fit_p)
    base_fit = fit_azimuth_alignment(constant, fit_t, fit_g)
    base = azimuth_errors(torch.zeros_like(p), t, base_fit, g)
    return {
        **{k: v for k, v in report.summary.items()},
        "azimuth_median_deg": float(errors.median()),
        "azimuth_constant_median_deg": float(base.median()),
        "azimuth_per_category_deg": {
            c: float(errors[[i for i, x in enumerate(g) if x == c]].median()) for c in set(g)
        },
    }


def sphere_score(data_root: str, protocol: str, max_items: int | None = None) -> dict:
    """The fitted sphere's summary and radius; the radius is fitted on the first
    ``max_items`` training views (all of them when None)."""
    from svrecon.data import ProceduralDataset
    from svrecon.engine import evaluate_dataset, fit_sphere_baseline, sphere_mesh

    train_set = ProceduralDataset(data_root, "train")
    test_set = ProceduralDataset(data_root, "test")
    radius = fit_sphere_baseline(train_set, max_items=max_items)
    summary = evaluate_dataset(test_set, protocol, mesh=sphere_mesh(radius)).summary
    return {**summary, "radius": radius, "fitted_on": max_items or len(train_set)}


def training_set(model_name: str, data_root: str, out: Path):
    """The training views, with ShapeClipper's thumbnail neighbours attached."""
    from svrecon.data import ProceduralDataset

    train_set = ProceduralDataset(data_root, "train")
    if model_name != "shapeclipper":
        return train_set
    from svrecon.semantic import (
        ThumbnailEmbedder,
        WithNeighbours,
        embed_dataset,
        top_k_neighbours,
    )

    embeddings = embed_dataset(ThumbnailEmbedder(16), train_set, cache=out / "embeddings.pt")
    return WithNeighbours(train_set, top_k_neighbours(embeddings, k=5))


def run_train(args) -> None:
    from svrecon.engine import TrainConfig, export_weights, load_model, train
    from svrecon.models import get_model

    spec = get_model(args.model)
    kwargs = spec.preset("cpu")
    kwargs["loss_weights"] = {**kwargs.get("loss_weights", {}), **CONFIGS[args.model][args.config]}
    out = Path(args.out or f"runs/{args.model}_ablation") / f"{args.config}_seed{args.seed}"
    out.mkdir(parents=True, exist_ok=True)
    pretrain = args.pretrain_iterations
    if pretrain is None:
        pretrain = PRETRAIN[args.model]
    config = TrainConfig(
        model=args.model, model_kwargs=kwargs, data_root=args.data, out_dir=str(out),
        iterations=args.iterations, batch_size=args.batch_size, seed=args.seed,
        pretrain_iterations=pretrain, pretrain_lr=1e-3, checkpoint_every=100,
        protocol="procedural_view_centric",
    )  # fmt: skip
    resume = out / "checkpoint.pt"
    train(
        config,
        resume=resume if resume.exists() else None,
        train_set=training_set(args.model, args.data, out),
    )
    if args.export:
        print(f"weights: {export_weights(resume, args.export)}")
    result = {"model": args.model, "config": args.config, "seed": args.seed,
              "iterations": args.iterations,
              **score(load_model(resume), args.data, spec.protocol)}  # fmt: skip
    (out / "result.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


def run_table(args) -> None:
    from svrecon.models import get_model

    rows = [json.loads(p.read_text()) for p in sorted(Path(args.root).glob("*/result.json"))]
    if not rows:
        raise SystemExit(f"{args.root}: no */result.json")
    model = rows[0].get("model", "cat3d")
    protocol = get_model(model).protocol
    cached = Path(args.root) / "sphere.json"  # the fit reads every training shape: slow
    if not cached.exists():
        sphere = sphere_score(args.data, protocol, args.sphere_items)
        cached.write_text(json.dumps(sphere, indent=1))
    sphere = json.loads(cached.read_text())
    print("| configuration | seeds | Chamfer | F@0.05 | F@0.1 | azimuth median (deg) |")
    print("|---|---|---|---|---|---|")
    for name in CONFIGS[model]:
        mine = [r for r in rows if r["config"] == name]
        if not mine:
            continue

        def stat(key, digits=4, rows=mine):
            values = [r[key] for r in rows]
            spread = statistics.stdev(values) if len(values) > 1 else math.nan
            return f"{statistics.mean(values):.{digits}f} +- {spread:.{digits}f}"

        seeds = ",".join(str(r["seed"]) for r in mine)
        print(f"| {name} | {seeds} | {stat('chamfer')} | {stat('fscore@0.05', 3)} | "
              f"{stat('fscore@0.1', 3)} | {stat('azimuth_median_deg', 1)} |")  # fmt: skip
    constant = [r["azimuth_constant_median_deg"] for r in rows]
    print(f"| fitted sphere | - | {sphere['chamfer']:.4f} | {sphere['fscore@0.05']:.3f} | "
          f"{sphere['fscore@0.1']:.3f} | constant azimuth: "
          f"{statistics.mean(constant) if constant else math.nan:.1f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(required=True)
    t = sub.add_parser("train")
    t.add_argument("--model", choices=sorted(CONFIGS), default="cat3d")
    t.add_argument("--config", default="full")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--iterations", type=int, default=400)
    t.add_argument("--pretrain-iterations", type=int, default=None)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--data", default=".cache/procedural")
    t.add_argument("--out", default=None, help="default: runs/<model>_ablation")
    t.add_argument("--export", help="also write the weights alone here (as shipped)")
    t.set_defaults(run=run_train)
    s = sub.add_parser("table")
    s.add_argument("root")
    s.add_argument("--data", default=".cache/procedural")
    s.add_argument(
        "--sphere-items",
        type=int,
        default=None,
        help="fit the sphere on the first N training views (default: all)",
    )
    s.set_defaults(run=run_table)
    args = parser.parse_args()
    if args.run is run_train and args.config not in CONFIGS[args.model]:
        parser.error(f"--config: expected one of {sorted(CONFIGS[args.model])} for {args.model}")
    args.run(args)


if __name__ == "__main__":
    main()
