"""Time to validate a configuration and expand it into runs, per run, against Snakemake's own DAG cost.

    python benchmarks/config_expansion.py [n_runs]

Snakemake builds a DAG in about 0.5 ms per job; the pipeline's own expansion should stay well below that.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from heterodiff.config import expand, validate  # noqa: E402


def main():
    n_runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15000
    seeds = list(range(10))
    sizes = list(range(16, 16 + n_runs // len(seeds)))
    config = {"studies": {"bench": {"seeds": seeds, "grid": {"data.n_train": sizes}}}}
    started = time.perf_counter()
    studies = expand(validate(config))
    elapsed = time.perf_counter() - started
    runs = len(studies["bench"].runs)
    print(f"{runs} runs expanded in {elapsed:.2f} s: {1000 * elapsed / runs:.3f} ms per run")


if __name__ == "__main__":
    main()
