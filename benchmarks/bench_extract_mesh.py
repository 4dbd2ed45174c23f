"""Hierarchical vs dense marching cubes at 128^3 (issue: >= 5x fewer field evaluations).

The field is a small SDF MLP (so evaluation cost is realistic) fitted to nothing: its
geometric initialisation is a sphere. Field evaluations are counted, wall time measured.
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._timing import header, measure  # noqa: E402
from svrecon.fields import SDFNetwork  # noqa: E402
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

    dense, fast = run("dense"), run("hierarchical")
    t_dense = measure(lambda: run("dense"), args.device, repeats=3, warmup=1)
    t_fast = measure(lambda: run("hierarchical"), args.device, repeats=3, warmup=1)
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


if __name__ == "__main__":
    main()
