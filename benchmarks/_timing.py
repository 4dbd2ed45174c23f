"""Timing helper shared by the benchmark scripts."""

import statistics
import time

import torch


def measure(fn, device: str, repeats: int = 10, warmup: int = 2) -> tuple[float, float]:
    """Median and inter-quartile range, in seconds, of ``fn()``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    q = statistics.quantiles(times, n=4)
    return statistics.median(times), q[2] - q[0]


def header(device: str) -> str:
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    return f"torch {torch.__version__}, device {name}, threads {torch.get_num_threads()}"
