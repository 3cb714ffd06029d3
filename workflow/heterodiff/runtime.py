"""Device choice, seeding, file writes that never leave half a file, and the run's self-description."""

from __future__ import annotations

import datetime
import logging
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch
import yaml

import heterodiff

LIBRARIES = ("torch", "diffusers", "numpy", "pandas", "pyarrow", "scipy", "snakemake", "datasets", "seaborn", "scikit-learn")


def select_device(name: str) -> torch.device:
    """Return the torch device for a config value: auto picks cuda, then mps, then cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested (train.device or evaluate.device) but CUDA is not available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError("device 'mps' was requested (train.device or evaluate.device) but MPS is not available")
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return device.type


def atomic_write_bytes(path: str | Path, payload: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_bytes(payload)
    os.replace(temporary, path)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def git_commit() -> str | None:
    """Return the commit of the checkout that contains the package, with "-dirty" for local changes."""
    root = Path(heterodiff.__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def run_spec(params: dict, identity: dict, device: torch.device, extra: dict | None = None) -> dict:
    """Assemble spec.yaml: the resolved parameters and everything needed to say how they were computed."""
    return {
        **identity,
        "params": params,
        "heterodiff_version": heterodiff.__version__,
        "git_commit": git_commit(),
        "libraries": library_versions(),
        "python": platform.python_version(),
        "device": describe_device(device),
        "host": socket.gethostname(),
        # Set inside a SLURM job: the job id leads to the job's SLURM log and accounting record.
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "finished_at": utc_now(),
        **(extra or {}),
    }


def write_yaml(path: str | Path, content: dict) -> None:
    atomic_write_text(path, yaml.safe_dump(content, sort_keys=False))


def setup_logging(log_path: str | Path | None) -> logging.Logger:
    """Route stderr (warnings, tracebacks) and the package's log records to the rule's log file."""
    if log_path:
        sys.stderr = open(log_path, "a", buffering=1)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    logger = logging.getLogger("heterodiff")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger
