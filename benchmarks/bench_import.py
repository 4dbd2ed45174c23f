"""Import time: ``import svrecon`` and ``svrecon --help`` against ``import torch``,
each in a fresh interpreter (median of ``--repeats``), as a ratio measured in the same
run.

    python benchmarks/bench_import.py
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def _time(code: str, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    _time("import svrecon", 1)  # warm the file cache
    torch_s = _time("import torch", args.repeats)
    svrecon_s = _time("import svrecon", args.repeats)
    help_s = _time("import sys; sys.argv = ['svrecon', '--help']\n"
                   "from svrecon.cli import main\ntry: main()\nexcept SystemExit: pass",
                   args.repeats)  # fmt: skip
    print(f"import torch    {torch_s:.2f} s")
    print(f"import svrecon  {svrecon_s:.2f} s  ({svrecon_s / torch_s:.2f}x torch)")
    print(f"svrecon --help  {help_s:.2f} s  ({help_s / torch_s:.2f}x torch)")


if __name__ == "__main__":
    main()
