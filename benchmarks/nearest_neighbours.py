"""Blocked nearest-neighbour search against the full distance matrix: time and peak memory ratios.

    python benchmarks/nearest_neighbours.py [n_queries] [n_reference] [dim]

Both run in this process on the same data. The output is the ratio blocked / full, so the numbers
compare the two methods on the machine at hand rather than measure the machine.
"""

import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from heterodiff.metrics import nearest_two  # noqa: E402


def full_matrix(queries, reference):
    squared = ((queries[:, None, :] - reference[None]) ** 2).sum(-1)
    order = np.argsort(squared, axis=1)[:, :2]
    return np.take_along_axis(squared, order, axis=1)


def measure(function):
    tracemalloc.start()
    started = time.perf_counter()
    function()
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return elapsed, peak


def main():
    n_queries, n_reference, dim = (int(a) for a in (sys.argv[1:] + ["2048", "4096", "64"][len(sys.argv) - 1 :])[:3])
    rng = np.random.default_rng(0)
    queries, reference = rng.standard_normal((n_queries, dim)), rng.standard_normal((n_reference, dim))
    blocked_time, blocked_peak = measure(lambda: nearest_two(queries, reference, block_size=256))
    full_time, full_peak = measure(lambda: full_matrix(queries, reference))
    print(f"queries {n_queries}, reference {n_reference}, dim {dim}")
    print(f"blocked: {blocked_time:.3f} s, peak {blocked_peak / 2**20:.1f} MiB (numpy allocations traced)")
    print(f"full:    {full_time:.3f} s, peak {full_peak / 2**20:.1f} MiB")
    print(f"ratio blocked / full: time {blocked_time / full_time:.2f}, peak memory {blocked_peak / full_peak:.3f}")


if __name__ == "__main__":
    main()
