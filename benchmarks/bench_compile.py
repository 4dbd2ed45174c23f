"""Rendering forward + backward, eager against ``torch.compile`` (inductor) and
against ``torch.autocast`` (bfloat16 on CPU, float16 on CUDA), measured in one run:

    python benchmarks/bench_compile.py [--device cpu] [--repeats 5]

SRN marcher 12 x 1024 rays, VolSDF 12 x 512 rays x 64 samples, linear-binary search
12 x 1024 rays, each of a 4 x 128 SDF MLP (geometric init) through a photometric-style
loss on distance, opacity and SH-shaded features. ``create_graph=False``: compiled
autograd does not support double backward (docs/reliability.md). The compile time of
the first call is reported beside the steady-state medians.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._timing import header, measure  # noqa: E402
from svrecon.data import view_camera  # noqa: E402
from svrecon.fields import SDFNetwork  # noqa: E402
from svrecon.renderers import (  # noqa: E402
    LaplaceDensity,
    LinearBinarySearch,
    SRNRayMarcher,
    VolumeRenderer,
    sh_shading,
)


def rays_of(batch: int, count: int, device: str):
    side = int(count**0.5)
    azimuth = torch.linspace(0, 6.0, batch)
    camera = view_camera(azimuth, torch.full((batch,), 0.4), side).to(device=device)
    return camera.rays(side, side).intersect_sphere(1.0)[0]


def cases(device: str):
    field = SDFNetwork(0, 128, 4, (), 16).to(device)
    marcher = SRNRayMarcher(feature_dim=16).to(device)
    volume = VolumeRenderer(LaplaceDensity(0.05), num_samples=64).to(device)
    search = LinearBinarySearch()
    return {
        "SRN marcher 12 x 1024": (
            lambda r: marcher(field, r, normals=True), rays_of(12, 1024, device),
            [*field.parameters(), *marcher.parameters()],
        ),
        "VolSDF 12 x 512 x 64": (
            lambda r: volume(field, r), rays_of(12, 512, device),
            [*field.parameters(), *volume.parameters()],
        ),
        "linear-binary 12 x 1024": (
            lambda r: search(field, r), rays_of(12, 1024, device), list(field.parameters()),
        ),
    }  # fmt: skip


def loss_of(render, rays):
    out = render(rays)
    lighting = torch.linspace(-0.5, 1.0, 27, device=rays.origins.device).view(1, 3, 9)
    shading = sh_shading(out.normals, lighting.expand(len(out.distance), 3, 9))
    return out.distance.sum() + out.opacity.sum() + (shading * out.features[..., :3]).sum()


def row(name, render, rays, params, device, half, repeats) -> str:
    def step(fn=render):
        return torch.autograd.grad(loss_of(fn, rays), params, allow_unused=True)

    def mixed():
        with torch.autocast(device, dtype=half):
            return step()

    eager = measure(step, device, repeats, 1)
    autocast = measure(mixed, device, repeats, 1)
    mixed_cell = f"{autocast[0] * 1e3:.1f} ms ({eager[0] / autocast[0]:.2f}x)"
    torch._dynamo.reset()
    compiled_render = torch.compile(render)
    began = time.perf_counter()
    try:
        step(compiled_render)
    except Exception as exc:  # recorded, not hidden: the row says why
        failed = f"failed: {type(exc).__name__}"
        return f"| {name} | {eager[0] * 1e3:.1f} ms | {failed} | - | {mixed_cell} |"
    compile_s = time.perf_counter() - began
    compiled = measure(lambda: step(compiled_render), device, repeats, 1)
    return (
        f"| {name} | {eager[0] * 1e3:.1f} ms (IQR {eager[1] * 1e3:.1f}) | "
        f"{compiled[0] * 1e3:.1f} ms ({eager[0] / compiled[0]:.2f}x) | {compile_s:.0f} s | "
        f"{mixed_cell} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    half = torch.bfloat16 if args.device == "cpu" else torch.float16
    print(header(args.device))
    print("forward + backward, median of", args.repeats, "(IQR); ratios against eager")
    print("| work | eager | compiled | compile time | autocast " + str(half).split(".")[1] + " |")
    print("|---|---|---|---|---|")
    for name, (render, rays, params) in cases(args.device).items():
        print(row(name, render, rays, params, args.device, half, args.repeats))


if __name__ == "__main__":
    main()
