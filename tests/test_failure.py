"""A run that fails inside Snakemake leaves every other run and every dataset file as it was."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from tiny_workflow import copy_workflow, snakemake, tiny_config, write_config

from heterodiff.data import MixtureDataset

pytestmark = pytest.mark.workflow

# Class means 1e30 apart overflow float32 in the forward process, so the loss is NaN at the first log row.
DIVERGING = 1e30


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Return the SHA-256 and the modification time (ns) of every file under folder."""
    return {
        str(path.relative_to(folder)): (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_diverged_run_leaves_others_untouched(tmp_path):
    config = tiny_config(**{"grid.data.centroid_distance": [4], "grid.data.imbalance_ratio": [3], "seeds": [0, 1]})
    workdir = copy_workflow(tmp_path, config)
    snakemake(workdir, "--until", "evaluate")
    results = workdir / "results" / "tiny"
    before = {name: snapshot(results / name) for name in ("runs", "datasets")}
    assert len(before["runs"]) > 10
    assert len(before["datasets"]) == 1

    config["studies"]["tiny"]["grid"]["data.centroid_distance"] = [4, DIVERGING]
    write_config(workdir, config)
    failed = snakemake(workdir, "--until", "evaluate", check=False)
    output = failed.stdout + failed.stderr

    assert failed.returncode != 0
    assert "Error in rule train" in output
    for name, files in before.items():
        after = snapshot(results / name)
        for path, fingerprint in files.items():
            assert after.get(path) == fingerprint, f"{name}/{path} changed or disappeared"

    for seed in (0, 1):
        run_id = f"centroid_distance=1e30+imbalance_ratio=3+n_train=24+seed={seed}"
        log = (results / "logs" / "train" / f"{run_id}.log").read_text()
        assert "loss is nan at step 10 (mean over steps 1 to 10)" in log
        assert "last good checkpoint: none" in log
        for output_name in ("checkpoints", "train_log.parquet", "spec.yaml"):
            assert not (results / "runs" / run_id / output_name).exists()
    diverging_dataset = results / "datasets" / "centroid_distance=1e30+imbalance_ratio=3+n_train=24.npz"
    assert MixtureDataset.load(diverging_dataset).x_train.shape == (24, 4)
