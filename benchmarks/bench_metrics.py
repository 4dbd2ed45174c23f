"""Chamfer + F-score (3 thresholds) between two 100k-point clouds: svrecon's one pass
(``cloud_distances``: nearest neighbours once each way) against KD-tree peers doing the
same work in the same run, and Chamfer alone; float64, median of ``--repeats``.

    python benchmarks/bench_metrics.py [--points 100000] [--device cuda]

Peers (CPU): pykdtree (OpenMP) and scipy's cKDTree with ``workers=-1``. On CUDA the
baseline is a plain ``torch.cdist`` (matrix-multiply form) in chunks, which is what
svrecon's exact chunked search is measured against.
"""

from __future__ import annotations

import argparse
import resource
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._timing import header, measure  # noqa: E402
from svrecon.metrics import chamfer_distance, cloud_distances  # noqa: E402

THRESHOLDS = (0.01, 0.02, 0.05)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, args.points, 3))
    ta = torch.from_numpy(a)[None].to(args.device)
    tb = torch.from_numpy(b)[None].to(args.device)

    def ours():
        d = cloud_distances(ta, tb)
        return d.chamfer().chamfer, d.f_score(THRESHOLDS).fscore

    rows = {"svrecon chamfer + f-score": measure(ours, args.device, args.repeats, 1),
            "svrecon chamfer alone": measure(lambda: chamfer_distance(ta, tb), args.device,
                                             args.repeats, 1)}  # fmt: skip
    if args.device == "cpu":
        from pykdtree.kdtree import KDTree
        from scipy.spatial import cKDTree

        def peer(tree, **kw):
            d1 = tree(b).query(a, k=1, **kw)[0]
            d2 = tree(a).query(b, k=1, **kw)[0]
            f = [((d1 < t).mean(), (d2 < t).mean()) for t in THRESHOLDS]
            return (d1.mean() + d2.mean()) / 2, f

        rows["pykdtree (peer)"] = measure(lambda: peer(KDTree), "cpu", args.repeats, 1)
        rows["cKDTree workers=-1 (peer)"] = measure(lambda: peer(cKDTree, workers=-1), "cpu",
                                                    args.repeats, 1)  # fmt: skip
        fastest = min(v[0] for k, v in rows.items() if "peer" in k)
    else:

        def mm():
            for q, r in ((ta, tb), (tb, ta)):
                for s in range(0, args.points, 4096):
                    torch.cdist(q[:, s : s + 4096], r).min(-1)

        rows["torch.cdist, mm form (baseline)"] = measure(mm, args.device, args.repeats, 1)
        fastest = rows["torch.cdist, mm form (baseline)"][0]
    print(header(args.device))
    print(f"{args.points} x {args.points} points, float64, median of {args.repeats}")
    for name, (median, iqr) in rows.items():
        print(f"  {name:32s} {median:.3f} s (IQR {iqr:.3f})  {median / fastest:.2f}x fastest peer")
    print(f"  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")


if __name__ == "__main__":
    main()
