"""Timing helper shared by the benchmark scripts."""

import statistics
import time

import torch


def timed(fn, device: str) -> float:
    """Seconds of one ``fn()`` (with the device's queue drained on both sides)."""
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def median_and_iqr(times) -> tuple[float, float]:
    q = statistics.quantiles(times, n=4)
    return statistics.median(times), q[2] - q[0]


def measure(fn, device: str, repeats: int = 10, warmup: int = 2) -> tuple[float, float]:
    """Median and inter-quartile range, in seconds, of ``fn()``."""
    for _ in range(warmup):
        fn()
    return median_and_iqr([timed(fn, device) for _ in range(repeats)])


def measure_pair(
    fn_a, fn_b, device: str, repeats: int = 15, warmup: int = 2
) -> tuple[tuple[float, float], tuple[float, float], float]:
    """Time ``fn_a`` and ``fn_b`` interleaved (a, b, a, b, ...): the median and IQR of
    each, and the median of the per-pair ratios ``time_b / time_a``. On a shared
    machine whose load drifts, a ratio of back-to-back pairs is steadier than the ratio
    of two medians timed one after the other."""
    for _ in range(warmup):
        fn_a()
        fn_b()

    a, b = [], []
    for i in range(repeats):  # alternate which goes first, so neither always warms the other
        if i % 2:
            b.append(timed(fn_b, device))
            a.append(timed(fn_a, device))
        else:
            a.append(timed(fn_a, device))
            b.append(timed(fn_b, device))
    ratio = statistics.median(tb / ta for ta, tb in zip(a, b, strict=True))
    return median_and_iqr(a), median_and_iqr(b), ratio


def header(device: str) -> str:
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    return f"torch {torch.__version__}, device {name}, threads {torch.get_num_threads()}"
