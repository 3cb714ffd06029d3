"""Helpers for end-to-end tests: a copy of the workflow in a fresh folder and a study that runs in seconds."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

REPOSITORY = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
WORKFLOW_FILES = ("Snakefile", "workflow", "config", "envs", "profiles")
RUN_IDS = ("imbalance_ratio=1+n_train=24+seed=0", "imbalance_ratio=3+n_train=24+seed=0")
TINY = {
    "selected_studies": ["tiny"],
    "studies": {
        "tiny": {
            "seeds": [0],
            "grid": {"data.imbalance_ratio": [1, 3], "data.n_train": [24]},
            "data": {"dim": 4},
            "model": {"width": 32, "depth": 2, "time_embedding_dim": 16},
            "diffusion": {"num_train_timesteps": 100},
            "train": {"steps": 60, "batch_size": 16, "checkpoints": 3, "checkpoint_first": 10, "log_every": 20},
            "evaluate": {"n_samples": 64, "num_inference_steps": 10, "bootstrap_samples": 100},
        }
    },
}


def tiny_config(**changes) -> dict:
    """Return the tiny study with keys replaced, e.g. tiny_config(seeds=[0, 1], **{"grid.data.n_train": [24]})."""
    config = copy.deepcopy(TINY)
    study = config["studies"]["tiny"]
    for dotted, value in changes.items():
        section, _, key = dotted.partition(".")
        if key:
            study[section][key] = value
        else:
            study[section] = value
    return config


def copy_workflow(workdir: Path, config: dict = TINY) -> Path:
    """Copy the workflow files into workdir (a fresh clone, without results) and write tiny.yaml."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        source = REPOSITORY / name
        if source.is_dir():
            # New timestamps, as in a fresh git clone (copytree would keep them by default).
            shutil.copytree(source, workdir / name, ignore=shutil.ignore_patterns("__pycache__"), copy_function=shutil.copy)
        else:
            shutil.copy(source, workdir / name)
    write_config(workdir, config)
    return workdir


def write_config(workdir: Path, config: dict) -> None:
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(config))


def snakemake(workdir: Path, *arguments: str, profile: str = "profiles/local", check: bool = True, timeout: int = 900):
    """Run Snakemake on the tiny study in workdir and return the completed process."""
    result = subprocess.run(
        [*SNAKEMAKE, "--profile", profile, "--configfile", "tiny.yaml", *arguments],
        cwd=workdir, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(arguments)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def nothing_to_do(workdir: Path) -> bool:
    output = snakemake(workdir, "--dry-run").stdout
    return "Nothing to be done" in output


def read_tables(workdir: Path, study: str = "tiny") -> dict[str, pd.DataFrame]:
    """Read the study tables, rows sorted so that two runs of the same study compare equal."""
    folder = workdir / "results" / study / "tables"
    keys = {"runs": ["run_id"], "metrics": ["run_id", "step", "class", "metric"], "train_log": ["run_id", "step", "bucket"]}
    return {
        name: pd.read_parquet(folder / f"{name}.parquet").sort_values(columns, na_position="first").reset_index(drop=True)
        for name, columns in keys.items()
    }
