"""Results copied into a fresh clone: checked against the config, marked complete, merged, never recomputed.

Collaborator A computed imbalance_ratio 1 and collaborator B imbalance_ratio 3 of the same tiny study.
Their results folders are copied into fresh clones as a user would, with and without timestamps.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from tiny_workflow import RUN_IDS, TINY, copy_workflow, nothing_to_do, read_tables, snakemake, tiny_config

pytestmark = pytest.mark.workflow

CONFIG_A = tiny_config(**{"grid.data.imbalance_ratio": [1]})
CONFIG_B = tiny_config(**{"grid.data.imbalance_ratio": [3]})


@pytest.fixture(scope="module")
def collaborator_a(tmp_path_factory):
    workdir = copy_workflow(tmp_path_factory.mktemp("collaborator_a"), CONFIG_A)
    snakemake(workdir)
    return workdir


@pytest.fixture(scope="module")
def collaborator_b(tmp_path_factory):
    workdir = copy_workflow(tmp_path_factory.mktemp("collaborator_b"), CONFIG_B)
    snakemake(workdir)
    return workdir


def copy_results(source: Path, clone: Path, keep_timestamps: bool = True) -> None:
    """Copy a results folder as `cp -a` (timestamps kept, like rsync -a) or `cp -r` (timestamps lost)."""
    flags = "-a" if keep_timestamps else "-r"
    subprocess.run(["cp", flags, f"{source / 'results'}/.", str(clone / "results")], check=True)


def check_and_mark(clone: Path) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(clone / "workflow")}
    command = [sys.executable, "-m", "heterodiff.share", "check-and-mark", "--configfile", "tiny.yaml"]
    return subprocess.run(command, cwd=clone, env=environment, capture_output=True, text=True, timeout=600)


def planned_jobs(workdir: Path) -> dict[str, int]:
    output = snakemake(workdir, "--dry-run").stdout
    if "Nothing to be done" in output:
        return {}
    table = output.split("Job stats:")[1].split("total")[0]
    return {name: int(count) for name, count in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_copy_keeping_timestamps_marked(collaborator_a, tmp_path):
    clone = copy_workflow(tmp_path / "clone", CONFIG_A)
    copy_results(collaborator_a, clone)

    marked = check_and_mark(clone)

    assert marked.returncode == 0, marked.stdout + marked.stderr
    assert "1 runs checked and marked complete" in marked.stdout
    assert nothing_to_do(clone)
    assert file_bytes(clone / "results" / "tiny" / "runs") == file_bytes(collaborator_a / "results" / "tiny" / "runs")


def test_copy_losing_timestamps_marked(collaborator_a, tmp_path):
    clone = copy_workflow(tmp_path / "clone", CONFIG_A)
    copy_results(collaborator_a, clone, keep_timestamps=False)
    for dataset in (clone / "results" / "tiny" / "datasets").iterdir():
        dataset.touch()  # the dataset now looks newer than everything computed from it

    marked = check_and_mark(clone)

    assert marked.returncode == 0, marked.stdout + marked.stderr
    assert nothing_to_do(clone)
    assert file_bytes(clone / "results" / "tiny" / "tables") == file_bytes(collaborator_a / "results" / "tiny" / "tables")


def test_marked_runs_rerun_on_param_change(collaborator_a, tmp_path):
    clone = copy_workflow(tmp_path / "clone", CONFIG_A)
    copy_results(collaborator_a, clone)
    assert check_and_mark(clone).returncode == 0

    (clone / "tiny.yaml").write_text((clone / "tiny.yaml").read_text().replace("width: 32", "width: 48"))

    assert planned_jobs(clone) == {"train": 1, "evaluate": 1, "aggregate": 1, "figures": 1, "all": 1}


def test_copy_with_other_params_not_marked(collaborator_a, tmp_path):
    other = tiny_config(**{"grid.data.imbalance_ratio": [1], "model.width": 48})
    clone = copy_workflow(tmp_path / "clone", other)
    copy_results(collaborator_a, clone)

    marked = check_and_mark(clone)

    assert marked.returncode == 1
    assert f"runs/{RUN_IDS[0]}/spec.yaml params.model.width: 32 differs from the config's 48" in marked.stderr
    assert "0 runs checked and marked complete" in marked.stdout
    assert not list((clone / ".snakemake" / "metadata").glob("*"))


def test_merge_two_collaborators(collaborator_a, collaborator_b, tmp_path):
    clone = copy_workflow(tmp_path / "clone", TINY)
    copy_results(collaborator_a, clone)
    copy_results(collaborator_b, clone)  # B's tables, which cover only B's run, replace A's

    marked = check_and_mark(clone)

    assert marked.returncode == 0, marked.stdout + marked.stderr
    assert "2 runs checked and marked complete" in marked.stdout
    assert planned_jobs(clone) == {"aggregate": 1, "figures": 1, "all": 1}
    snakemake(clone)
    merged = read_tables(clone)
    assert merged["runs"]["run_id"].tolist() == list(RUN_IDS)
    for name in ("metrics", "train_log"):
        union = pd.concat([read_tables(collaborator_a)[name], read_tables(collaborator_b)[name]])
        pd.testing.assert_frame_equal(merged[name], union.reset_index(drop=True), check_exact=True, obj=name)
    assert nothing_to_do(clone)


def test_absent_runs_left_to_snakemake(collaborator_a, tmp_path):
    clone = copy_workflow(tmp_path / "clone", TINY)
    copy_results(collaborator_a, clone)
    shutil.rmtree(clone / "results" / "tiny" / "runs" / RUN_IDS[0] / "checkpoints")

    marked = check_and_mark(clone)

    assert marked.returncode == 1
    assert "incomplete, missing checkpoints" in marked.stderr
    assert "1 configured runs not present" in marked.stdout
    assert planned_jobs(clone)["train"] == 2


def test_spec_describes_how_run_was_computed(collaborator_a):
    spec = yaml.safe_load((collaborator_a / "results" / "tiny" / "runs" / RUN_IDS[0] / "spec.yaml").read_text())
    for key in ("params", "heterodiff_version", "git_commit", "libraries", "python", "device", "host", "train_sha256"):
        assert key in spec
    assert spec["started_at"] <= spec["finished_at"]
    assert spec["slurm_job_id"] is None
    assert spec["libraries"]["snakemake"] == "9.27.1"
