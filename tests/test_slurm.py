"""The Berzelius profile on a real SLURM controller: a single-node cluster on localhost.

The tiny study runs with profiles/berzelius itself. The test overrides only what a user sets on a new
cluster: the account (HETERODIFF_SLURM_ACCOUNT) and, because this cluster has no accounting database,
the plugin's status command. One train job is preempted: once its state file exists, its training
process gets SIGTERM, as SLURM sends before a time limit or a preemption, and Snakemake must retry it
with the second attempt's resources and resume. It needs root and apt-get to install Debian's SLURM
packages; elsewhere it is skipped, except under CI=true, where a missing cluster is a failure.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from slurm.cluster import RESERVATION, LocalCluster, SlurmUnavailable, install_packages
from tiny_workflow import REPOSITORY, RUN_IDS, SNAKEMAKE, copy_workflow, nothing_to_do, read_tables, snakemake, tiny_config

pytestmark = pytest.mark.slurm

ACCOUNT = "heterodiff-test-account"
GPU_RULES = ("train", "evaluate")
LOCAL_RULES = ("make_dataset", "aggregate", "figures", "all")
# The SLURM run of the tiny study took 1 to 3 minutes on 2 busy CPU cores; this limit bounds a hang.
RUN_LIMIT_S = 600
# The state file exists from step 10 to the end of a train job, so the SIGTERM lands mid-run.
CONFIG = tiny_config(**{"train.steps": 500, "train.state_every": 10})
PREEMPTED = RUN_IDS[1]


def unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"SLURM test cannot run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def cluster():
    try:
        install_packages()
    except SlurmUnavailable as error:
        unavailable(str(error))
    local_cluster = LocalCluster()
    try:
        try:
            local_cluster.start()
        except SlurmUnavailable as error:
            unavailable(str(error))
        yield local_cluster
    finally:
        local_cluster.stop()


@pytest.fixture(scope="module")
def profile():
    return yaml.safe_load((REPOSITORY / "profiles" / "berzelius" / "config.yaml").read_text())


def train_process(workdir: Path) -> int | None:
    """Return the pid of the train script running in workdir (from /proc, Linux only), or None."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            if b".train.py" in command and Path(os.readlink(entry / "cwd")) == workdir:
                return int(entry.name)
        except OSError:
            continue  # the process exited while it was read
    return None


def preempt(snakemake: subprocess.Popen, workdir: Path) -> None:
    """Send SIGTERM to the PREEMPTED run's training process once its state file exists."""
    state = workdir / "results" / "tiny" / "runs" / PREEMPTED / ".train_state" / "state.pt"
    while not state.exists():
        assert snakemake.poll() is None, f"snakemake exited before {state} was written"
        time.sleep(0.01)
    pid = train_process(workdir)
    assert pid is not None, f"{state} exists but no train process runs in {workdir}"
    os.kill(pid, signal.SIGTERM)


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory):
    """Run the tiny study through SLURM with the Berzelius profile; return the folder and the job records."""
    workdir = copy_workflow(tmp_path_factory.mktemp("slurm"), CONFIG)
    command = [
        "timeout", "-s", "KILL", str(RUN_LIMIT_S),
        *SNAKEMAKE, "--profile", "profiles/berzelius", "--configfile", "tiny.yaml",
        "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "5",
    ]  # fmt: skip
    environment = {key: value for key, value in os.environ.items() if key != "SLURM_CONF"}
    environment["HETERODIFF_SLURM_ACCOUNT"] = ACCOUNT
    output_path = workdir / "snakemake.out"
    with open(output_path, "w") as output_file:
        snakemake = subprocess.Popen(command, cwd=workdir, env=environment, stdout=output_file, stderr=subprocess.STDOUT)
        try:
            preempt(snakemake, workdir)
            snakemake.wait(timeout=RUN_LIMIT_S + 60)
        finally:
            if snakemake.poll() is None:
                snakemake.kill()
    output = output_path.read_text()
    if snakemake.returncode != 0:
        raise AssertionError(
            f"snakemake with profiles/berzelius failed (exit code {snakemake.returncode}; -9 or 137 means "
            f"it ran past {RUN_LIMIT_S} s):\n{shlex.join(command)}\n{output[-15000:]}"
        )
    return workdir, cluster.jobs()


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, profile):
    """Run the same study with the local profile and the Berzelius profile's threads per rule."""
    workdir = copy_workflow(tmp_path_factory.mktemp("local"), CONFIG)
    threads = [f"{rule}={count}" for rule, count in profile["set-threads"].items()]
    snakemake(workdir, "--set-threads", *threads)
    return workdir


def rule_of(job: dict) -> str:
    """Return the rule of a job from the comment the plugin writes: rule_<name>_wildcards_<values>."""
    match = re.match(r"rule_(\w+?)_wildcards_", job.get("Comment", ""))
    return match.group(1) if match else job.get("Comment", "")


def run_of(job: dict) -> str:
    return job["Comment"].split("_wildcards_tiny_", 1)[1]


def first_attempts(jobs: list[dict]) -> list[dict]:
    """Return the first job of every rule and run, dropping retries."""
    first = {}
    for job in sorted(jobs, key=lambda job: int(job["JobId"])):
        first.setdefault((rule_of(job), run_of(job)), job)
    return list(first.values())


def test_gpu_rules_went_through_sbatch(slurm_run):
    _, jobs = slurm_run
    submitted = sorted((rule_of(job), run_of(job)) for job in jobs)
    expected = sorted([(rule, run_id) for rule in GPU_RULES for run_id in RUN_IDS] + [("train", PREEMPTED)])
    assert submitted == expected
    preempted = min((job for job in jobs if (rule_of(job), run_of(job)) == ("train", PREEMPTED)), key=lambda job: int(job["JobId"]))
    for job in jobs:
        if job is preempted:
            continue  # checked by test_preempted_job_retried_with_more
        assert job["JobState"] == "COMPLETED", job
        assert job["ExitCode"] == "0:0", job


def test_preempted_job_retried_with_more(slurm_run, profile):
    workdir, jobs = slurm_run
    attempts = sorted((job for job in jobs if (rule_of(job), run_of(job)) == ("train", PREEMPTED)), key=lambda job: int(job["JobId"]))
    resources = profile["set-resources"]["train"]
    assert [job["JobState"] for job in attempts] == ["FAILED", "COMPLETED"]
    assert attempts[0]["ExitCode"] == "1:0"
    for attempt, job in enumerate(attempts, start=1):
        minutes = _evaluate(resources["runtime"], attempt)
        assert job["TimeLimit"] == f"{minutes // 60:02d}:{minutes % 60:02d}:00"
        assert job["MinMemoryNode"] == f"{_evaluate(resources['mem_mb'], attempt)}M"
    # Snakemake replaces the failed attempt's rule log; show-failed-logs copied it into Snakemake's output.
    step = re.search(r"SIGTERM at step (\d+): state written", (workdir / "snakemake.out").read_text())
    assert step
    log = (workdir / "results" / "tiny" / "logs" / "train" / f"{PREEMPTED}.log").read_text()
    assert f"resuming from step {step.group(1)} " in log


def test_local_rules_not_submitted(slurm_run):
    workdir, jobs = slurm_run
    submitted = {rule_of(job) for job in jobs}
    for rule in LOCAL_RULES:
        assert rule not in submitted
    assert (workdir / "results" / "tiny" / "logs" / "aggregate.log").exists()
    assert (workdir / "results" / "tiny" / "figures" / "loss.png").exists()


def test_jobs_request_what_profile_asks(slurm_run, profile):
    _, jobs = slurm_run
    for job in jobs:
        resources = profile["set-resources"][rule_of(job)]
        assert job["Account"] == ACCOUNT
        assert job["TresPerJob"] == f"gres:gpu:{resources['gpu']}"
        extra = resources.get("slurm_extra", "")
        reservation = re.search(r"--reservation=([\w.]+)", extra)
        assert job["Reservation"] == (reservation.group(1) if reservation else "(null)")
        assert job["Features"] == resources.get("constraint", "(null)")
        assert job["NumCPUs"] == str(profile["set-threads"][rule_of(job)])


def test_first_attempt_resources(slurm_run, profile):
    _, jobs = slurm_run
    for job in first_attempts(jobs):
        resources = profile["set-resources"][rule_of(job)]
        minutes = _evaluate(resources["runtime"], attempt=1)
        assert job["TimeLimit"] == f"{minutes // 60:02d}:{minutes % 60:02d}:00"
        assert job["MinMemoryNode"] == f"{_evaluate(resources['mem_mb'], attempt=1)}M"


def test_profile_reservation_exists_on_cluster(profile):
    # The local cluster names its reservation after the profile's, so a renamed profile value shows here.
    for rule in GPU_RULES:
        assert f"--reservation={RESERVATION}" in profile["set-resources"][rule]["slurm_extra"]


def test_tables_equal_local_run(slurm_run, local_run):
    on_slurm, local = read_tables(slurm_run[0]), read_tables(local_run)
    for name in ("metrics", "train_log"):
        pd.testing.assert_frame_equal(on_slurm[name], local[name], check_exact=True, obj=name)
    pd.testing.assert_frame_equal(on_slurm["runs"], local["runs"], check_exact=True, obj="runs")


def test_second_dry_run_has_nothing_to_do(slurm_run):
    assert nothing_to_do(slurm_run[0])


def _evaluate(expression, attempt: int) -> int:
    """Evaluate a resource expression of the profile as Snakemake does, with `attempt` bound."""
    return int(eval(str(expression), {"attempt": attempt}))  # noqa: S307 - the project's own profile


@pytest.mark.parametrize("rule", GPU_RULES)
def test_retries_grow_runtime_and_memory(profile, rule):
    resources = profile["set-resources"][rule]
    attempts = range(1, profile["retries"] + 2)
    runtimes = [_evaluate(resources["runtime"], attempt) for attempt in attempts]
    memories = [_evaluate(resources["mem_mb"], attempt) for attempt in attempts]
    assert runtimes == sorted(set(runtimes)), runtimes
    assert memories == sorted(set(memories)), memories
    assert max(runtimes) <= 3 * 24 * 60  # the longest Berzelius job is 3 days


def test_spec_records_slurm_job(slurm_run):
    workdir, jobs = slurm_run
    train_jobs = {job["JobId"] for job in jobs if rule_of(job) == "train"}
    for run_id in RUN_IDS:
        spec = yaml.safe_load((workdir / "results" / "tiny" / "runs" / run_id / "spec.yaml").read_text())
        assert spec["slurm_job_id"] in train_jobs


def test_missing_account_stops_before_submitting(tmp_path):
    workdir = copy_workflow(tmp_path, CONFIG)
    environment = {key: value for key, value in os.environ.items() if key != "HETERODIFF_SLURM_ACCOUNT"}
    command = [*SNAKEMAKE, "--profile", "profiles/berzelius", "--configfile", "tiny.yaml", "--dry-run"]
    result = subprocess.run(command, cwd=workdir, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "KeyError: 'HETERODIFF_SLURM_ACCOUNT'" in result.stdout + result.stderr
