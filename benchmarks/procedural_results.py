"""Held-out results of the shipped checkpoints on the procedural dataset, against the
origin-centred sphere fitted to the training shapes (issue 7's baseline).

    python -m svrecon data                      # the dataset the checkpoints trained on
    python benchmarks/procedural_results.py     # prints a Markdown table

Every model and the sphere are scored by the same code (``svrecon.engine.evaluate_dataset``) under
the ``procedural`` protocol on the first view of every test shape.
"""

from __future__ import annotations

import argparse
import json

from svrecon.data import ProceduralDataset
from svrecon.engine import evaluate_dataset, fit_sphere_baseline, load_model, sphere_mesh
from svrecon.models import MODELS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=".cache/procedural")
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("--train-items", type=int, help="fit the sphere on this many shapes")
    args = parser.parse_args()
    train, test = ProceduralDataset(args.data, "train"), ProceduralDataset(args.data, "test")
    radius = fit_sphere_baseline(train, max_items=args.train_items)
    sphere = evaluate_dataset(test, "procedural", mesh=sphere_mesh(radius))
    rows = {f"sphere (r = {radius:.2f})": sphere.summary}
    for name, spec in MODELS.items():
        if spec.checkpoint_path() is not None:  # only the checkpoints that ship
            model = load_model(spec.checkpoint_path())
            rows[name] = evaluate_dataset(test, "procedural", model=model).summary
    base = rows[next(iter(rows))]["chamfer"]
    print("| model | Chamfer | vs sphere | F@0.02 | F@0.05 | F@0.1 | shapes |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['chamfer']:.4f} | {100 * (1 - r['chamfer'] / base):+.0f}% "
            f"| {r['fscore@0.02']:.3f} | {r['fscore@0.05']:.3f} | {r['fscore@0.1']:.3f} "
            f"| {int(r['items'])} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
