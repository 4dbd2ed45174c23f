"""Training throughput of every registered model: steps per second (forward, backward
and an Adam step on a batch) and peak memory, for each preset (and each stage of a
model trained in stages), each in its own process.

    python benchmarks/bench_training.py [--presets cpu paper] [--batch 4] [--steps 3]
    python benchmarks/bench_training.py --presets cpu --compile   # eager vs compiled

``--compile`` also times each step with ``model.losses`` under ``torch.compile``
(inductor) and prints the ratio; a model whose losses differentiate twice (eikonal,
normal terms) is recorded as failing there (compiled autograd has no double backward).

The batch comes from a small procedural dataset written to ``--data`` (64 x 64).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
import torch
from svrecon.data import ProceduralDataset
from svrecon.models import get_model
name, preset, data, batch_size, steps, device, stage, compiled = sys.argv[1:9]
batch_size, steps = int(batch_size), int(steps)
torch.manual_seed(0)
model = get_model(name).build(preset).to(device)
model.set_stage(stage or None)  # a staged model (MSU) is timed stage by stage
optimizer = torch.optim.Adam(model.optimizer_groups()["model"]["params"], lr=1e-4)
ds = model.stage_dataset(ProceduralDataset(data, "train"))
batch = torch.utils.data.default_collate([ds[i] for i in range(batch_size)])
batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
losses_of = torch.compile(model.losses) if compiled == "1" else model.losses
def step():
    losses = losses_of(batch)
    optimizer.zero_grad()
    losses["total"].backward()
    optimizer.step()
step()  # warm-up
if device == "cuda":
    torch.cuda.synchronize()
start = time.perf_counter()
for _ in range(steps):
    step()
if device == "cuda":
    torch.cuda.synchronize()
elapsed = time.perf_counter() - start
peak = (torch.cuda.max_memory_allocated() / 1e9 if device == "cuda"
        else int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1e6)
params = sum(p.numel() for p in model.parameters())
print(json.dumps({"steps_per_s": steps / elapsed, "peak_gb": peak, "params": params}))
"""


def run_child(args, name: str, preset: str, stage: str, compiled: str) -> dict:
    cmd = [sys.executable, "-c", CHILD, name, preset, args.data, str(args.batch),
           str(args.steps), args.device, stage, compiled]  # fmt: skip
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"failed": f"no result within {args.timeout} s"}
    if done.returncode:
        lines = done.stderr.strip().splitlines() or ["(no output)"]
        # the exception's own line, not a trailing hint such as dynamo's "Set ...=1"
        errors = [line for line in lines if "Error:" in line or "Exception:" in line]
        return {"failed": (errors or lines)[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presets", nargs="+", default=["cpu", "paper"])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data", default=".cache/bench_training")
    parser.add_argument("--compile", action="store_true", help="also time compiled steps")
    parser.add_argument("--models", nargs="+", default=None, help="default: every registered")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per measurement")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import torch

    from svrecon.data import generate_procedural_dataset
    from svrecon.models import MODELS

    unknown = sorted(set(args.models or ()) - set(MODELS))
    if unknown:
        parser.error(f"--models: {unknown} are not registered ({sorted(MODELS)})")
    generate_procedural_dataset(args.data, {"train": 1, "test": 1}, {"train": 1, "test": 1},
                                image_size=64, progress=False)  # fmt: skip
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()},"
          f" batch {args.batch}, {args.steps} steps after a warm-up")  # fmt: skip
    extra = " compiled steps/s |" if args.compile else ""
    print("| model | preset | parameters | steps/s | peak memory |" + extra)
    print("|---|---|---|---|---|" + ("---|" if args.compile else ""))
    for name in args.models or sorted(MODELS):
        for preset in args.presets:
            if preset not in MODELS[name].presets:
                continue
            for stage in MODELS[name].cls.stages or ("",):
                label = f"{name} ({stage})" if stage else name
                runs = [run_child(args, name, preset, stage, "0")]
                if args.compile:
                    runs.append(run_child(args, name, preset, stage, "1"))
                r = runs[0]
                if "failed" in r:
                    print(f"| {label} | {preset} | - | failed: {r['failed']} | - |")
                    continue
                row = (f"| {label} | {preset} | {r['params'] / 1e6:.1f} M | "
                       f"{r['steps_per_s']:.2f} | {r['peak_gb']:.2f} GB |")  # fmt: skip
                if args.compile:
                    c = runs[1]
                    if "failed" in c:
                        row += f" failed: {c['failed'][:80]} |"
                    else:
                        ratio = c["steps_per_s"] / r["steps_per_s"]
                        row += f" {c['steps_per_s']:.2f} ({ratio:.2f}x) |"
                print(row)


if __name__ == "__main__":
    main()
