"""Every benchmark (and, on CUDA, the CUDA tests) in one command, appending a dated
section (device, torch, commit, each command and its output) to ``RESULTS.md``.

    python benchmarks/run_suite.py --device cuda     # `make bench-gpu`
    python benchmarks/run_suite.py --device cpu --quick --out /tmp/x.md   # a dry run

Each step runs in its own process with a time limit; a failing step is recorded with
its exit status and the suite goes on.
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def steps(device: str, quick: bool) -> list[list[str]]:
    py = sys.executable
    out = []
    if device == "cuda":
        out.append([py, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider"])
    batch = "2" if quick else "16"
    for points in (256, 1024, 4096):
        size = str(points // 16 if quick else points)
        out.append([py, "benchmarks/bench_hyper_mlp.py", "--device", device, "--points", size,
                    "--batch", batch])  # fmt: skip
    resolution = "32" if quick else "128"
    out.append([py, "benchmarks/bench_extract_mesh.py", "--device", device, "--resolution",
                resolution])  # fmt: skip
    points = "5000" if quick else "100000"
    out.append([py, "benchmarks/bench_metrics.py", "--device", device, "--points", points])
    if not quick:
        out.append([py, "benchmarks/bench_import.py"])
        out.append([py, "benchmarks/bench_training.py", "--device", device])
    return out


def describe(device: str) -> tuple[str, str, str]:
    import torch

    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    return name, torch.__version__, commit or "unknown"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS.md"))
    parser.add_argument("--quick", action="store_true", help="small sizes (a dry run)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per step")
    args = parser.parse_args()
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("run_suite: --device cuda but torch sees no CUDA device", file=sys.stderr)
            return 2
    name, torch_version, commit = describe(args.device)
    today = datetime.date.today().isoformat()
    lines = [f"\n## Suite run {today}: {name}, torch {torch_version}, commit {commit}\n"]
    failures = 0
    for command in steps(args.device, args.quick):
        shown = " ".join(Path(c).name if c == sys.executable else c for c in command)
        print(f"$ {shown}", flush=True)
        try:
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                                  timeout=args.timeout)  # fmt: skip
            status, text = done.returncode, (done.stdout + done.stderr).strip()
        except subprocess.TimeoutExpired:
            status, text = "timeout", f"(no result within {args.timeout} s)"
        failures += status != 0
        tail = "\n".join(text.splitlines()[-25:])
        print(tail, flush=True)
        lines += [f"`{shown}` (exit {status})", "", "```", tail, "```", ""]
    with open(args.out, "a") as f:
        f.write("\n".join(lines) + "\n")
    print(f"appended to {args.out}; {failures} step(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
