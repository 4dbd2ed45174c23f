"""Mesh extraction at 128^3: hierarchical (and auto) vs dense marching cubes on a learned
field, and dense (hierarchical, auto) against a plain numpy grid + PyMCubes on a cheap analytic
field, all in the same run.

The learned field is a small SDF MLP (so evaluation cost is realistic) fitted to
nothing: its geometric initialisation is a sphere. Field evaluations are counted, wall
time measured.

    python benchmarks/bench_extract_mesh.py [--resolution 128] [--device cuda]
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._timing import header, measure, measure_pair  # noqa: E402
from svrecon.fields import SDFNetwork, field_from_function  # noqa: E402
from svrecon.mesh import extract_mesh  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--resolution", type=int, default=128)
    args = parser.parse_args()
    torch.manual_seed(0)
    net = SDFNetwork(
        latent_dim=0, hidden_dim=128, num_layers=4, skip_layers=(2,), sphere_radius=0.5
    )
    net = net.to(args.device)

    def field(points):
        return net(points)

    def run(method):
        return extract_mesh(
            field, args.resolution, (-1, 1), method=method, lipschitz=1.5, device=args.device
        )

    dense, fast, auto = run("dense"), run("hierarchical"), run("auto")
    t_dense = measure(lambda: run("dense"), args.device, repeats=3, warmup=1)
    t_fast = measure(lambda: run("hierarchical"), args.device, repeats=3, warmup=1)
    t_auto = measure(lambda: run("auto"), args.device, repeats=3, warmup=1)
    print(header(args.device))
    print(f"{args.resolution}^3 cells, SDF MLP 4 x 128 (geometric init, sphere r = 0.5)")
    print(
        f"  same mesh: {len(dense.vertices) == len(fast.vertices)} ({len(dense.vertices)} vertices)"
    )
    n_dense, n_fast = dense.metadata["field_evaluations"], fast.metadata["field_evaluations"]
    print(f"  evaluations: dense {n_dense}, hierarchical {n_fast} ({n_dense / n_fast:.1f}x fewer)")
    print(f"  dense       : {t_dense[0]:.3f} s (IQR {t_dense[1]:.3f})")
    print(f"  hierarchical: {t_fast[0]:.3f} s (IQR {t_fast[1]:.3f})")
    print(f"  speed-up    : {t_dense[0] / t_fast[0]:.2f}x")
    print(f"  auto        : {t_auto[0]:.3f} s, {t_dense[0] / t_auto[0]:.2f}x faster than dense "
          f"(ran {auto.metadata['extraction']}, same mesh: "
          f"{len(auto.vertices) == len(dense.vertices)})")  # fmt: skip

    # A cheap field: the analytic sphere, against the grid + PyMCubes peer.
    import mcubes
    import numpy as np

    sphere = field_from_function(lambda p: p.norm(dim=-1) - 0.5)
    res = args.resolution

    def peer():
        x = np.linspace(-0.6, 0.6, res + 1)
        grid = np.stack(np.meshgrid(x, x, x, indexing="ij"), -1)
        return mcubes.marching_cubes(-(np.linalg.norm(grid, axis=-1) - 0.5), 0.0)

    t_peer = measure(peer, "cpu", repeats=5, warmup=1)

    def cheap(method):
        return extract_mesh(sphere, res, method=method, device=args.device)

    t_cheap = measure(lambda: cheap("dense"), args.device, 5, 1)
    # interleaved pairs: each ratio is the median of back-to-back (dense, other) timings
    _, t_cheap_h, ratio_h = measure_pair(lambda: cheap("dense"), lambda: cheap("hierarchical"),
                                         args.device, repeats=9, warmup=1)  # fmt: skip
    _, t_cheap_a, ratio_a = measure_pair(lambda: cheap("dense"), lambda: cheap("auto"),
                                         args.device, repeats=9, warmup=1)  # fmt: skip
    print(f"analytic sphere, {res}^3")
    print(f"  grid + PyMCubes (peer): {t_peer[0]:.3f} s (IQR {t_peer[1]:.3f})")
    print(f"  dense        : {t_cheap[0]:.3f} s, {t_cheap[0] / t_peer[0]:.2f}x the peer")
    print(f"  hierarchical : {t_cheap_h[0]:.3f} s, {ratio_h:.2f}x dense (interleaved pairs)")
    print(f"  auto         : {t_cheap_a[0]:.3f} s, {ratio_a:.2f}x dense (interleaved pairs, "
          f"ran {cheap('auto').metadata['extraction']})")  # fmt: skip


if __name__ == "__main__":
    main()
