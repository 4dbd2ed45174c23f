"""MSU on the procedural set: run the three training stages of one configuration and
seed through the engine, then score the model on the held-out shapes: Chamfer under
the ``msu`` protocol (canonical frame; the camera is the model's own estimate) beside
the fitted sphere, PSNR of its render of the input, the intrinsic decomposition
against the generator's albedo and shading, part segmentation against the height
bands (semantic parts, and primitives), and the render time per image.

    python benchmarks/msu_results.py train --config full --seed 0
    python benchmarks/msu_results.py table runs/msu_ablation      # mean +- std
    python benchmarks/msu_results.py diagnose runs/msu_ablation/full_seed0/decoders32/checkpoint.pt
    python benchmarks/msu_results.py searches svrecon/checkpoints/msu_procedural.pt \
        > runs/msu_ablation/searches_seed0.json   # read by `table` too
    python benchmarks/msu_results.py train --config no_finetune --seed 0 \
        --export svrecon/checkpoints/msu_procedural.pt      # as shipped: stages 1-2

``--config`` (the paper's key ablations; same data, steps, batch and seeds):
``full``; ``linear`` (linear search instead of linear-binary, in training and
scoring); ``no_category`` (no category code: ``category_dim=0``); ``no_finetune``
(stages 1-2 only, no image-only fine-tuning: it scores the ``full`` run's stage-2
checkpoint of the same seed, training those stages first if they are missing, so the
two differ in nothing but stage 3). Stages 1-2 render nothing, so ``linear`` shares
them with ``full`` too and trains only its own stage 3. Stage-1 branch regularisers:
``no_colours`` (the cpu preset without its ``branch_colours``, as every run recorded
before 2026-12-07), ``branch_l1`` and ``balance`` (without ``branch_colours``).

Each stage is one engine run in ``<out>/<config>_seed<N>/<stage>`` starting from the
previous stage's checkpoint; a stopped run resumes where it stopped (rerun the same
command).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from pathlib import Path

import torch

CONFIGS = {
    "full": {},
    "linear": {"search": "linear"},
    "no_category": {"category_dim": 0},
    "no_finetune": {},
    # the cpu preset before it separated the branches by albedo (every row recorded
    # before 2026-12-07, the ablations among them: add --loss-weights branch_colours=0)
    "no_colours": {"loss_weights": {"branch_colours": 0.0}},
    # BAE-NET's L1 on the branch layer (its --L1reg, 1e-6 on a mean over 8192 points:
    # about 4e-3 on stage 1's sum over 4096), ten times that for a 1/100 of its steps
    "branch_l1": {"loss_weights": {"branch_colours": 0.0, "branch_l1": 0.04}},
    "balance": {"loss_weights": {"branch_colours": 0.0, "branch_balance": 10.0}},
}
#: (run name, stage, stage options, steps, learning rate) of the CPU schedule.
#: One resolution: at 16^3 the procedural shapes fill 3% of the voxels (thin parts
#: fall between centres) and 400 steps there learned no surface at all.
SCHEDULE = (
    ("decoders32", "decoders", {"resolution": 32}, 2500, 2e-3),
    ("image_encoder", "image_encoder", {"resolution": 32}, 2000, 3e-4),
    ("finetune", "finetune", {}, 400, 1e-4),
)
RUN_NAMES = [run for run, *_ in SCHEDULE]


class RunLock:
    """Refuse to train a stage that another process is training (``no_finetune``
    shares ``full``'s directories)."""

    def __init__(self, run: Path) -> None:
        self.path = run / "training.lock"

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            raise SystemExit(
                f"{self.path.parent}: another process is training it (delete "
                f"{self.path} if none is)"
            ) from None
        return self

    def __exit__(self, *exc) -> None:
        self.path.unlink(missing_ok=True)


#: Configurations that differ from ``full`` in stage 3 only: they start from the
#: ``full`` run's stage-2 checkpoint of the same seed instead of training it again.
SHARE_STAGES_1_2 = ("linear", "no_finetune")


def run_stages(args, root: Path) -> Path:
    """Run (or resume) every stage of ``args.config``'s schedule under ``root``; the
    last stage's checkpoint."""
    from svrecon.engine import TrainConfig, load_checkpoint, train
    from svrecon.models import get_model

    previous = Path(args.init_from) if args.init_from else None
    scale = args.steps_scale
    for name, stage, options, steps, lr in SCHEDULE:
        if stage == "finetune" and args.config == "no_finetune":
            continue
        owner = args.config
        if owner in SHARE_STAGES_1_2 and stage != "finetune":
            owner = "full"
        out = root / f"{owner}_seed{args.seed}"
        kwargs = get_model("msu").preset("cpu")
        config = CONFIGS[owner]
        kwargs.update({k: v for k, v in config.items() if k != "loss_weights"})
        kwargs["loss_weights"] = {  # the preset's, the configuration's, the command's
            **kwargs.get("loss_weights", {}), **config.get("loss_weights", {}),
            **args.loss_weights,
        }  # fmt: skip
        if stage == "decoders" and args.inside_fraction is not None:
            options = {**options, "inside_fraction": args.inside_fraction}
        steps = max(1, round(args.stage_steps.get(name, steps) * scale))
        lr = args.stage_lr.get(name, lr)
        run = out / name
        checkpoint = run / "checkpoint.pt"
        config = TrainConfig(
            model="msu", model_kwargs=kwargs, data_root=args.data, out_dir=str(run),
            iterations=steps, batch_size=args.batch_size, lr=lr, seed=args.seed,
            checkpoint_every=100, protocol=None, stage=stage, stage_options=options,
            init_from=None if previous is None else str(previous),
        )  # fmt: skip
        step = load_checkpoint(checkpoint)["step"] if checkpoint.exists() else 0
        if step > steps:
            raise SystemExit(f"{checkpoint}: trained {step} steps, this schedule asks {steps}")
        if step < steps:
            with RunLock(run):
                started = time.time()
                train(config, resume=checkpoint if checkpoint.exists() else None)
                (run / "seconds.txt").write_text(f"{time.time() - started:.0f}\n")
        previous = checkpoint
        if name == args.only:
            break
    return previous


@torch.no_grad()
def intrinsic_scores(model, test_set) -> dict:
    """PSNR of the render (whole image, white background) and scale-invariant MSE of
    albedo and shading on the pixels inside both masks, means over the test views;
    with the render time per image."""
    from svrecon.data import true_shading
    from svrecon.metrics import psnr, scale_invariant_mse

    indices = test_set.evaluation_indices()
    scores = {"psnr": [], "albedo_si_mse": [], "shading_si_mse": []}
    seconds = 0.0
    for start in range(0, len(indices), 16):
        batch = torch.utils.data.default_collate([test_set[i] for i in indices[start : start + 16]])
        size = batch["image"].shape[-1]
        began = time.perf_counter()
        render = model.render(batch["image"], size=size)
        seconds += time.perf_counter() - began
        mask = render.image("mask") & batch["mask"].bool()
        scores["psnr"] += psnr(render.image("rgb"), batch["image"]).tolist()
        both = mask.flatten(1).any(1)  # the decomposition is scored where both masks meet
        if both.any():
            albedo = render.image("albedo")[both], batch["albedo"][both]
            shading = render.image("shading")[both], true_shading(batch)[both]
            scores["albedo_si_mse"] += scale_invariant_mse(*albedo, mask[both]).tolist()
            scores["shading_si_mse"] += scale_invariant_mse(*shading, mask[both]).tolist()
    out = {k: statistics.mean(v) if v else math.nan for k, v in scores.items()}
    out["render_seconds_per_image"] = seconds / len(indices)
    return out


def score(model, data_root: str) -> dict:
    from svrecon.data import ProceduralDataset
    from svrecon.engine import evaluate_dataset, evaluate_part_segmentation

    model.eval()
    test_set = ProceduralDataset(data_root, "test")
    report = evaluate_dataset(test_set, "msu", model=model, progress=True)
    scores = {**report.summary, **intrinsic_scores(model, test_set)}
    for parts, suffix in (("semantic", ""), ("primitive", "_primitive")):
        segmentation = evaluate_part_segmentation(test_set, model=model, parts=parts)
        scores[f"part_iou{suffix}"] = segmentation.summary["iou"]
        scores[f"height_bands_iou{suffix}"] = segmentation.summary["height_bands"]
        scores[f"part_iou{suffix}_per_category"] = segmentation.per_category
    return scores


def sphere_score(data_root: str, max_items: int | None) -> dict:
    from svrecon.data import ProceduralDataset
    from svrecon.engine import evaluate_dataset, fit_sphere_baseline, sphere_mesh

    train_set = ProceduralDataset(data_root, "train")
    test_set = ProceduralDataset(data_root, "test")
    radius = fit_sphere_baseline(train_set, max_items=max_items)
    summary = evaluate_dataset(test_set, "msu", mesh=sphere_mesh(radius)).summary
    return {**summary, "radius": radius, "fitted_on": max_items or len(train_set)}


def run_train(args) -> None:
    from svrecon.engine import export_weights, load_model

    root = Path(args.out or "runs/msu_ablation")
    out = root / f"{args.config}_seed{args.seed}"
    out.mkdir(parents=True, exist_ok=True)
    last = run_stages(args, root)
    if args.export:
        print(f"weights: {export_weights(last, args.export)}")
    if args.no_score:
        return
    result = {"config": args.config, "seed": args.seed, "steps_scale": args.steps_scale,
              "stage_steps": args.stage_steps, "stage_lr": args.stage_lr,
              "inside_fraction": args.inside_fraction,
              "checkpoint": str(last), **score(load_model(last), args.data)}  # fmt: skip
    (out / "result.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


@torch.no_grad()
def diagnose(
    model, data_root: str, items: int = 24, resolution: int = 32, chamfer_items: int = 0
) -> dict:
    """What each stage learned, on ``items`` test shapes (their first views): voxel
    IoU and albedo L1 (on the voxels occupied in both) at every voxel of a
    ``resolution^3`` grid, decoded from ``E'``'s codes of the voxels and from the image
    encoder's codes of the image; the share of the predicted surface voxels each branch
    holds; and the estimated camera against the true one (viewing-direction error in
    degrees, overall and per category; distance to the origin). With
    ``chamfer_items``: the ``msu`` protocol's Chamfer of the first of them decoded from
    either code."""
    from svrecon.data import ProceduralDataset, WithColouredVoxels

    model.eval()
    test_set = WithColouredVoxels(
        ProceduralDataset(data_root, "test"), resolution=resolution, num_points=None
    )
    chosen = test_set.evaluation_indices()  # one view per shape, categories in turn
    batch = torch.utils.data.default_collate([test_set[i] for i in chosen[:items]])
    occupied = batch["voxel_occupancy"] > 0.5
    image_codes = model.encode(batch["image"])[0]
    out = {}
    for name, codes in (("voxel_codes", model.encode_voxels(batch["voxels"])),
                        ("image_codes", image_codes)):  # fmt: skip
        field = model.field_of(codes)(batch["voxel_points"])
        pred = field.occupancy > model.surface_level
        iou = (pred & occupied).sum(1) / (pred | occupied).sum(1).clamp_min(1)
        albedo = (field.albedo - batch["voxel_albedo"]).abs().mean(-1)
        share = torch.bincount(field.branch_index[pred], minlength=model.num_part_labels)
        out[name] = {
            "voxel_iou": iou.mean().item(),
            "predicted_share": pred.float().mean().item(),
            "albedo_l1_inside": albedo[occupied & pred].mean().item(),
            "branch_share": [round(v, 3) for v in (share / share.sum().clamp_min(1)).tolist()],
        }
    out["true_share"] = occupied.float().mean().item()
    if chamfer_items:  # the msu protocol's Chamfer of E''s shapes: what stage 2 can reach
        from svrecon.engine import evaluate_dataset
        from svrecon.engine.evaluation import Prediction

        def from_voxels(item):
            codes = model.encode_voxels(item["voxels"][None])
            return Prediction(model.field_of(codes), level=model.surface_level)

        indices = chosen[:chamfer_items]
        out["voxel_codes_chamfer"] = evaluate_dataset(
            test_set, "msu", predict=from_voxels, indices=indices
        ).summary["chamfer"]
        out["image_codes_chamfer"] = evaluate_dataset(
            test_set, "msu", model=model, indices=indices
        ).summary["chamfer"]
    estimated = image_codes["camera"].camera_center
    true = -(batch["pose"][..., :3].transpose(1, 2) @ batch["pose"][..., 3:])[..., 0]
    cosine = torch.nn.functional.cosine_similarity(estimated, true, dim=-1)
    error = torch.rad2deg(cosine.clamp(-1, 1).acos())
    out["camera_direction_error_deg"] = error.median().item()
    names = test_set.categories
    out["camera_direction_error_deg_per_category"] = {
        names[c]: round(error[batch["label"] == c].median().item(), 1)
        for c in batch["label"].unique().tolist()
    }
    out["camera_distance_median"] = estimated.norm(dim=-1).median().item()
    out["true_distance_median"] = true.norm(dim=-1).median().item()
    return out


@torch.no_grad()
def voxel_code_parts(model, data_root: str, resolution: int = 32, parts: str = "semantic"):
    """Part segmentation of the shapes decoded from ``E'``'s codes of the test shapes'
    voxels (stage 1 alone: no image encoder, no camera), beside the height bands:
    what the branches of the decoder can segment before the images enter."""
    from svrecon.data import ProceduralDataset, WithColouredVoxels
    from svrecon.engine import evaluate_part_segmentation

    model.eval()
    test_set = WithColouredVoxels(
        ProceduralDataset(data_root, "test"), resolution=resolution, num_points=1
    )

    def predict(item, points):
        codes = model.encode_voxels(item["voxels"][None])
        return model.shape_field_of(codes)(points[None]).branch_index[0]

    return evaluate_part_segmentation(
        test_set, predict=predict, num_labels=model.num_part_labels, parts=parts
    )


def run_parts(args) -> None:
    from svrecon.engine import load_model

    report = voxel_code_parts(load_model(args.checkpoint), args.data, args.resolution, args.parts)
    out = {"checkpoint": args.checkpoint, "parts": args.parts, **report.summary,
           "per_category": report.per_category}  # fmt: skip
    print(json.dumps(out, indent=1))


def run_diagnose(args) -> None:
    from svrecon.engine import load_model

    model = load_model(args.checkpoint)
    report = diagnose(model, args.data, args.items, args.resolution, args.chamfer_items)
    print(json.dumps(report, indent=1))


@torch.no_grad()
def search_comparison(model, data_root: str, samples: int, items: int) -> dict:
    """The trained model rendered with either search (the paper's ablation at
    inference; not a model trained with each): linear-binary with ``samples`` and the
    model's refinements, linear with ``samples`` (the same sample count) and linear
    with ``samples`` plus the refinements (``linear_same_budget``: the same number of
    field evaluations per ray, the paper's comparison). Per search: PSNR of the
    render, IoU of its hit mask against a dense reference search's (512 samples, 12
    refinements) and against the true mask, the mean distance error on rays both
    hit, and the seconds per image (64 x 64 rays). One image at a time."""
    from svrecon.data import ProceduralDataset
    from svrecon.metrics import psnr
    from svrecon.renderers import LinearBinarySearch, LinearSearch

    model.eval()
    test_set = ProceduralDataset(data_root, "test")
    level = model.surface_level
    refine = getattr(model.search, "num_refine", 8)
    searches = {"linear_binary": LinearBinarySearch(samples, refine, level=level),
                "linear": LinearSearch(samples, level=level),
                "linear_same_budget": LinearSearch(samples + refine, level=level)}  # fmt: skip
    reference = LinearBinarySearch(512, 12, level=level)
    rows = {name: [] for name in searches}
    saved = model.search

    def iou(a, b):
        return ((a & b).sum() / (a | b).sum().clamp_min(1)).item()

    try:
        for i in test_set.evaluation_indices()[:items]:
            item = test_set[i]
            image, truth = item["image"][None], item["mask"].flatten()[None].bool()
            size = image.shape[-1]
            codes, _ = model.encode(image)
            field = model.field_of(codes)
            pixels = model.render_pixels(size, (size, size), codes["shape"])[None]
            rays, _ = codes["camera"].rays_at(pixels).intersect_sphere(model.bounding_radius)
            dense = reference(field, rays, normals=False)
            for name, search in searches.items():
                model.search = search
                began = time.perf_counter()
                render = model.render_codes(codes, (size, size), size)
                seconds = time.perf_counter() - began
                hits = search(field, rays, normals=False)
                both = hits.mask & dense.mask
                error = (hits.distance - dense.distance).abs()[both]
                rows[name].append((
                    psnr(render.image("rgb"), image).item(), iou(hits.mask, dense.mask),
                    iou(hits.mask, truth), error.mean().item() if error.numel() else math.nan,
                    seconds,
                ))  # fmt: skip
    finally:
        model.search = saved
    keys = ("psnr", "mask_iou_vs_reference", "mask_iou_vs_truth", "distance_error",
            "seconds_per_image")  # fmt: skip
    out = {}
    for name, values in rows.items():
        columns = list(zip(*values, strict=True))
        out[name] = {k: statistics.mean(v for v in col if math.isfinite(v))
                     for k, col in zip(keys, columns, strict=True)}  # fmt: skip
    return {"samples": samples, "items": len(rows["linear"]), **out}


def run_searches(args) -> None:
    from svrecon.engine import load_model

    model = load_model(args.checkpoint)
    report = search_comparison(model, args.data, args.samples, args.items)
    print(json.dumps(report, indent=1))


def run_table(args) -> None:
    rows = [json.loads(p.read_text()) for p in sorted(Path(args.root).glob("*/result.json"))]
    if not rows:
        raise SystemExit(f"{args.root}: no */result.json")
    cached = Path(args.root) / "sphere.json"
    if not cached.exists():
        cached.write_text(json.dumps(sphere_score(args.data, args.sphere_items), indent=1))
    sphere = json.loads(cached.read_text())
    keys = [("chamfer", 4), ("fscore@0.0001", 3), ("psnr", 2), ("albedo_si_mse", 4),
            ("shading_si_mse", 4), ("part_iou", 3), ("part_iou_primitive", 3),
            ("render_seconds_per_image", 3)]  # fmt: skip
    print("| configuration | seeds | " + " | ".join(k for k, _ in keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for name in CONFIGS:
        mine = [r for r in rows if r["config"] == name]
        if not mine:
            continue
        cells = []
        for key, digits in keys:
            values = [r[key] for r in mine if key in r]  # older results lack some keys
            if not values:
                cells.append("-")
                continue
            spread = statistics.stdev(values) if len(values) > 1 else math.nan
            cells.append(f"{statistics.mean(values):.{digits}f} +- {spread:.{digits}f}")
        seeds = ",".join(str(r["seed"]) for r in mine)
        print(f"| {name} | {seeds} | " + " | ".join(cells) + " |")
    bands = [statistics.mean(r[k] for r in rows if k in r) if any(k in r for r in rows)
             else math.nan for k in ("height_bands_iou", "height_bands_iou_primitive")]  # fmt: skip
    print(f"| fitted sphere (r {sphere['radius']:.2f}) | - | {sphere['chamfer']:.4f} | "
          f"{sphere['fscore@0.0001']:.3f} | - | - | - | height bands {bands[0]:.3f} "
          f"| height bands {bands[1]:.3f} | - |")  # fmt: skip
    searches = [json.loads(p.read_text()) for p in sorted(Path(args.root).glob("searches*.json"))]
    if searches:  # `searches` reports of the seeds' models, saved as searches_seed<N>.json
        keys = ("psnr", "mask_iou_vs_reference", "distance_error", "seconds_per_image")
        print(f"\n| search ({len(searches)} models, {searches[0]['samples']} samples) | "
              + " | ".join(keys) + " |")  # fmt: skip
        print("|---|" + "---|" * len(keys))
        for name in ("linear_binary", "linear", "linear_same_budget"):
            cells = []
            for key in keys:
                values = [r[name][key] for r in searches if name in r]
                spread = statistics.stdev(values) if len(values) > 1 else math.nan
                cells.append(f"{statistics.mean(values):.4f} +- {spread:.4f}" if values else "-")
            print(f"| {name} | " + " | ".join(cells) + " |")


def assignments(names, kind):
    """An argparse type: ``"a=1,b=2"`` -> ``{"a": kind("1"), ...}``, names among ``names``
    (a list, or a callable giving it, read when parsing)."""

    def parse(text: str) -> dict:
        allowed = sorted(names() if callable(names) else names)
        out = {}
        for part in filter(None, text.split(",")):
            name, _, value = part.partition("=")
            if name not in allowed:
                raise argparse.ArgumentTypeError(f"{name!r}: expected one of {allowed}")
            out[name] = kind(value)
        return out

    return parse


def msu_terms() -> list[str]:
    from svrecon.models.msu import MSU_WEIGHTS

    return list(MSU_WEIGHTS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(required=True)
    t = sub.add_parser("train")
    t.add_argument("--config", choices=sorted(CONFIGS), default="full")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--steps-scale", type=float, default=1.0,
                   help="multiply every stage's steps (a quick run: 0.1)")  # fmt: skip
    t.add_argument(
        "--stage-steps",
        type=assignments(RUN_NAMES, int),
        default={},
        metavar="RUN=N,...",
        help="steps of named runs of the schedule, e.g. image_encoder=2000",
    )
    t.add_argument(
        "--stage-lr",
        type=assignments(RUN_NAMES, float),
        default={},
        metavar="RUN=LR,...",
        help="learning rates of named runs, e.g. image_encoder=1e-3",
    )
    t.add_argument("--inside-fraction", type=float, default=None,
                   help="occupied share of stage 1's samples (default 0.5)")  # fmt: skip
    t.add_argument("--loss-weights", type=assignments(msu_terms, float), default={},
                   metavar="TERM=W,...",
                   help="override the configuration's loss weights (every stage)")  # fmt: skip
    t.add_argument("--only", choices=RUN_NAMES, default=None,
                   help="stop after this run of the schedule (scored as the last)")  # fmt: skip
    t.add_argument("--init-from", default=None, metavar="CKPT",
                   help="start the schedule's first run from these weights (a stage "
                        "trained in two legs, e.g. with a loss term, then without)")  # fmt: skip
    t.add_argument("--out", default=None, help="default: runs/msu_ablation")
    t.add_argument("--export", help="also write the last stage's weights here (as shipped)")
    t.add_argument("--no-score", action="store_true",
                   help="train only (score later by rerunning without it)")  # fmt: skip
    t.set_defaults(run=run_train)
    s = sub.add_parser("table")
    s.add_argument("root")
    s.add_argument("--sphere-items", type=int, default=240,
                   help="fit the sphere on the first N training views")  # fmt: skip
    s.set_defaults(run=run_table)
    d = sub.add_parser("diagnose", help="what each stage learned (codes, branches, camera)")
    d.add_argument("checkpoint")
    d.add_argument("--items", type=int, default=24)
    d.add_argument("--resolution", type=int, default=32)
    d.add_argument("--chamfer-items", type=int, default=0,
                   help="also the msu protocol's Chamfer of the first N items")  # fmt: skip
    d.set_defaults(run=run_diagnose)
    p = sub.add_parser("parts", help="part IoU of the shapes of E''s voxel codes (stage 1)")
    p.add_argument("checkpoint")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--parts", choices=("semantic", "primitive"), default="semantic")
    p.set_defaults(run=run_parts)
    c = sub.add_parser("searches", help="linear vs linear-binary search on a trained model")
    c.add_argument("checkpoint")
    c.add_argument("--samples", type=int, default=32)
    c.add_argument("--items", type=int, default=48)
    c.set_defaults(run=run_searches)
    for command in (t, s, d, p, c):
        command.add_argument("--data", default=".cache/procedural")
    args = parser.parse_args()
    if args.run is run_train and not args.steps_scale > 0:
        parser.error(f"--steps-scale: expected > 0, got {args.steps_scale}")
    args.run(args)


if __name__ == "__main__":
    main()
