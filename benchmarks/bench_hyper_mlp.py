"""HyperMLP vs a Python loop over instances (the reference in tests/reference).

    python benchmarks/bench_hyper_mlp.py --points 4096 [--strategy auto|batched|per_instance]

``auto`` (the default) evaluates per instance on the CPU above 512 points per instance
or when torch uses one thread, and batched otherwise; the issue asks for >= 1.0x the
loop at 16 x {256, 1024, 4096} on the CPU and >= 5x on a GPU.
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._timing import header, measure, measure_pair  # noqa: E402
from svrecon.fields import HyperNetwork, PositionalEncoding  # noqa: E402
from tests.reference.hyper_loop import hyper_mlp_loop  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--points", type=int, default=4096)
    parser.add_argument("--strategy", default="auto")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.manual_seed(0)
    enc = PositionalEncoding(5, "sdf_srn")
    # SDF-SRN's ShapeNet trunk: 33 -> 4 x 128, LayerNorm + ReLU, encoding re-concatenated.
    hyper = HyperNetwork(512, [33, 128, 128, 128, 128], (512,) * 4, (1, 2, 3), 33, True, True)
    hyper = hyper.to(args.device)
    mlp = hyper(torch.randn(args.batch, 512, device=args.device))
    mlp.strategy = args.strategy
    x = enc(torch.rand(args.batch, args.points, 3, device=args.device) * 2 - 1)
    with torch.no_grad():  # interleaved: the ratio is the median of back-to-back pairs
        batched, loop, ratio = measure_pair(
            lambda: mlp(x, x),
            lambda: hyper_mlp_loop(mlp.weights, mlp.biases, x, x, (1, 2, 3), True, True),
            args.device,
            repeats=args.repeats,
        )
    print(header(args.device))
    print(f"batch {args.batch} x {args.points} points, SDF-SRN trunk (4 x 128)")
    print(f"  HyperMLP ({args.strategy}): {batched[0] * 1e3:8.2f} ms (IQR {batched[1] * 1e3:.2f})")
    print(f"  python loop      : {loop[0] * 1e3:8.2f} ms (IQR {loop[1] * 1e3:.2f})")
    print(f"  speed-up         : {ratio:.2f}x (median of {args.repeats} interleaved pairs)")
    # Roofline: the trunk's multiply-adds against one dense GEMM of the widest layer's
    # shape, the fastest this device multiplies such matrices. If the loop already runs
    # near it, no batching can beat the loop by much.
    flops = 2 * args.batch * args.points * sum(w.shape[1] * w.shape[2] for w in mlp.weights)
    k_in, k_out = max((w.shape[1], w.shape[2]) for w in mlp.weights)
    a = torch.randn(args.batch * args.points, k_in, device=args.device)
    b = torch.randn(k_in, k_out, device=args.device)
    gemm = measure(lambda: a @ b, args.device)[0]
    peak = 2 * a.shape[0] * k_in * k_out / gemm
    print(f"  trunk            : {flops / 1e9:.2f} GFLOP; GEMM ceiling {peak / 1e9:.1f} GFLOP/s")
    print(
        f"  batched / loop   : {flops / batched[0] / 1e9:.1f} / {flops / loop[0] / 1e9:.1f} GFLOP/s"
    )
    print(f"  best possible speed-up over the loop: {loop[0] / (flops / peak):.2f}x")


if __name__ == "__main__":
    main()
