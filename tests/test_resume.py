"""Resume after a kill or a preemption, with real training processes.

Each test waits for the training state file to appear, never for a time. The runs train for 2000 steps
and write their state every 10 steps, so the state file exists for almost the whole run (about 5 s on
2 CPU cores) and a kill always lands mid-training. A test that finds its process already finished
fails with that message, because it then checked nothing.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import tiny_run
from safetensors.torch import load_file
from tiny_workflow import REPOSITORY, SNAKEMAKE, copy_workflow, tiny_config

from heterodiff import training
from heterodiff.evaluation import list_checkpoints

pytestmark = pytest.mark.workflow

STEPS = 2000
STATE_EVERY = 10

# One training process, outside Snakemake: the arguments are a JSON file of run parameters, the run
# folder and the log file. One thread, so that two runs compute bit for bit the same on the CPU.
TRAIN_PROCESS = """
import json, sys
from pathlib import Path
import torch
from heterodiff import runtime, training
from heterodiff.data import make_mixture

torch.set_num_threads(1)
params = json.loads(Path(sys.argv[1]).read_text())
run_dir = Path(sys.argv[2])
runtime.setup_logging(sys.argv[3])
training.train_run(params, make_mixture(params["data"]), run_dir, run_dir / "checkpoints", run_dir / "train_log.parquet")
"""


@pytest.fixture(scope="module")
def params_file(tmp_path_factory):
    run = tiny_run(train={"steps": STEPS, "state_every": STATE_EVERY, "checkpoints": 4, "checkpoint_first": 10})
    path = tmp_path_factory.mktemp("params") / "params.json"
    path.write_text(json.dumps(run.params))
    return path


def start_training(params_file: Path, run_dir: Path) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY / "workflow")}
    command = [sys.executable, "-c", TRAIN_PROCESS, str(params_file), str(run_dir), str(run_dir.parent / f"{run_dir.name}.log")]
    return subprocess.Popen(command, env=environment)


def state_file(run_dir: Path) -> Path:
    return run_dir / training.STATE_DIR / "state.pt"


def wait_for_state(process: subprocess.Popen, run_dir: Path, limit_s: float = 300) -> None:
    """Poll until the process has written its first state; fail if it exits before that."""
    deadline = time.monotonic() + limit_s
    while not state_file(run_dir).exists():
        assert process.poll() is None, f"training exited with {process.returncode} before writing {state_file(run_dir)}"
        assert time.monotonic() < deadline, f"no state file {state_file(run_dir)} after {limit_s} s"
        time.sleep(0.001)


def saved_step(run_dir: Path) -> int:
    return torch.load(state_file(run_dir), map_location="cpu", weights_only=False)["step"]


def checkpoint_weights(checkpoints: Path) -> dict:
    return {
        step: {kind: load_file(folder / kind / "diffusion_pytorch_model.safetensors") for kind in ("model", "ema") if (folder / kind).exists()}
        for step, folder in list_checkpoints(checkpoints)
    }


@pytest.fixture(scope="module")
def uninterrupted(params_file, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    process = start_training(params_file, run_dir)
    assert process.wait(timeout=600) == 0
    return run_dir


def assert_same_checkpoints(run_dir: Path, reference: Path) -> None:
    resumed, expected = checkpoint_weights(run_dir / "checkpoints"), checkpoint_weights(reference / "checkpoints")
    assert sorted(resumed) == sorted(expected)
    assert len(expected) == 4
    for step in expected:
        for kind in expected[step]:
            for name, tensor in expected[step][kind].items():
                assert torch.equal(resumed[step][kind][name], tensor), (step, kind, name)
    assert (run_dir / "train_log.parquet").read_bytes() == (reference / "train_log.parquet").read_bytes()


def test_sigkill_then_rerun_equals_uninterrupted(params_file, uninterrupted, tmp_path):
    run_dir = tmp_path / "run"
    process = start_training(params_file, run_dir)
    wait_for_state(process, run_dir)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL
    step = saved_step(run_dir)
    assert 0 < step < STEPS
    assert not (run_dir / "checkpoints").exists()

    rerun = start_training(params_file, run_dir)
    assert rerun.wait(timeout=600) == 0
    log = (tmp_path / "run.log").read_text()
    assert f"resuming from step {step} " in log
    assert_same_checkpoints(run_dir, uninterrupted)
    assert not (run_dir / training.STATE_DIR).exists()


def test_sigterm_writes_state_and_exits_nonzero(params_file, uninterrupted, tmp_path):
    run_dir = tmp_path / "run"
    process = start_training(params_file, run_dir)
    wait_for_state(process, run_dir)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 1
    log = (tmp_path / "run.log").read_text()
    step = saved_step(run_dir)
    assert f"SIGTERM at step {step}: state written to {state_file(run_dir)}" in log
    assert not (run_dir / "checkpoints").exists()
    assert not (run_dir / "train_log.parquet").exists()

    rerun = start_training(params_file, run_dir)
    assert rerun.wait(timeout=600) == 0
    assert f"resuming from step {step} " in (tmp_path / "run.log").read_text()
    assert_same_checkpoints(run_dir, uninterrupted)


def training_processes(session: int) -> list[int]:
    """Return the pids of Snakemake's train scripts in a process session (from /proc, Linux only)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if os.getsid(int(entry.name)) == session and ".train.py" in command:
                pids.append(int(entry.name))
        except (OSError, ProcessLookupError):
            continue  # the process exited while it was read
    return pids


def test_killed_job_retried_by_snakemake_resumes(tmp_path):
    """Kill the train job's process; Snakemake's clean-up must keep the state and its retry resume."""
    config = tiny_config(
        **{"grid.data.imbalance_ratio": [3], "train.steps": STEPS, "train.state_every": STATE_EVERY, "train.checkpoint_first": 10}
    )
    workdir = copy_workflow(tmp_path / "workflow", config)
    run_dir = workdir / "results" / "tiny" / "runs" / "imbalance_ratio=3+n_train=24+seed=0"
    command = [*SNAKEMAKE, "--profile", "profiles/local", "--configfile", "tiny.yaml", "--retries", "1", str(run_dir.relative_to(workdir) / "spec.yaml")]
    snakemake = subprocess.Popen(command, cwd=workdir, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_state(snakemake, run_dir)
        pids = training_processes(snakemake.pid)
        assert len(pids) == 1, f"expected one train process in Snakemake's session, found {pids}"
        os.kill(pids[0], signal.SIGKILL)
        output, _ = snakemake.communicate(timeout=600)
    finally:
        if snakemake.poll() is None:
            os.killpg(snakemake.pid, signal.SIGKILL)
    assert snakemake.returncode == 0, output
    assert "Error in rule train" in output
    log = (workdir / "results" / "tiny" / "logs" / "train" / f"{run_dir.name}.log").read_text()
    resumed = re.search(r"resuming from step (\d+) ", log)
    assert resumed, log
    assert 0 < int(resumed.group(1)) < STEPS
    assert (run_dir / "checkpoints" / f"step_{STEPS:09d}").is_dir()
    assert not (run_dir / training.STATE_DIR).exists()
