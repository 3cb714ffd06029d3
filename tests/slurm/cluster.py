"""A single-node SLURM cluster on localhost for tests: Debian's slurmctld, slurmd and munge, no accounting.

The node declares the features thin and fat, one GPU through gres (File=/dev/null, so no device is
needed) and a reservation named 1g.10gb like the Berzelius MIG slices. Every daemon is started here and
stopped by the pid in its pid file. Settings that matter for snakemake-executor-plugin-slurm 2.8.0:

- Without slurmdbd, `sacct` fails, so Snakemake must run with `--slurm-status-command squeue`, and
  MinJobAge must be at least three times the plugin's first status delay, or the plugin falls back to
  sacct and waits forever.
- The plugin removes SLURM_CONF from the job's environment before its inner `srun`. The configuration
  must therefore also be at /etc/slurm/slurm.conf, where a symbolic link to it is created.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
SYSTEM_CONFIG = Path("/etc/slurm/slurm.conf")
RESERVATION = "1g.10gb"
PARTITION = "heterodiff"

# Scheduling bookkeeping only: with task/none and proctrack/linuxproc SLURM enforces neither CPUs nor
# memory, and config_overrides lets slurmd accept a node larger than the machine. The profile requests
# 2 CPUs and up to 3 x 16000 MB (third attempt), which must be schedulable on a 2-core CI machine.
NODE_CPUS = 4
NODE_MEMORY_MB = 64000

SLURM_CONF = """\
ClusterName=heterodiff-test
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={root}/munge/munge.socket
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default, a job with no --mem takes the whole node and jobs run one at a time.
DefMemPerCPU=500
ReturnToService=2
# Keep finished jobs visible to scontrol and squeue for 10 minutes (there is no accounting database).
MinJobAge=600
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
GresTypes=gpu
SlurmdParameters=config_overrides
NodeName=localhost CPUs={cpus} RealMemory={memory} Gres=gpu:1 Features=thin,fat State=UNKNOWN
PartitionName={partition} Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""

GRES_CONF = """\
AutoDetect=off
NodeName=localhost Name=gpu File=/dev/null
"""


class SlurmUnavailable(RuntimeError):
    """SLURM cannot be installed or started on this machine; the message gives the reason."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def install_packages() -> None:
    """Install the Debian packages with apt-get unless the daemons are already there."""
    if all(shutil.which(name) for name in ("slurmctld", "slurmd", "sbatch", "munged")):
        return
    if os.geteuid() != 0:
        raise SlurmUnavailable("installing SLURM needs root (apt-get); run the tests as root or install " + " ".join(PACKAGES))
    if shutil.which("apt-get") is None:
        raise SlurmUnavailable("apt-get not found: SLURM is installed from Debian packages " + " ".join(PACKAGES))
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES]):
        result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)
        if result.returncode != 0:
            raise SlurmUnavailable(f"{' '.join(command)} failed with exit code {result.returncode}:\n{result.stderr[-2000:]}")


class LocalCluster:
    """Start munged, slurmctld and slurmd on localhost with a private configuration folder."""

    def __init__(self):
        self.root: Path | None = None
        self.config: Path | None = None
        self.linked = False

    @property
    def environment(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.config)}

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(command, capture_output=True, text=True, env=self.environment, timeout=60)
        if check and result.returncode != 0:
            raise SlurmUnavailable(f"{' '.join(command)} failed with exit code {result.returncode}: {result.stderr.strip()}")
        return result

    def start(self) -> None:
        if SYSTEM_CONFIG.exists() or SYSTEM_CONFIG.is_symlink():
            raise SlurmUnavailable(f"{SYSTEM_CONFIG} exists: another SLURM installation or test cluster is configured here")
        # munged runs as the munge user, which must be able to reach its socket folder: no pytest tmp_path.
        self.root = Path(tempfile.mkdtemp(prefix="heterodiff-slurm-"))
        self.root.chmod(0o755)
        for name in ("state", "spool", "munge"):
            (self.root / name).mkdir()
        self.config = self.root / "slurm.conf"
        self.config.write_text(
            SLURM_CONF.format(
                root=self.root, ctld_port=_free_port(), slurmd_port=_free_port(), cpus=NODE_CPUS, memory=NODE_MEMORY_MB, partition=PARTITION
            )
        )
        (self.root / "gres.conf").write_text(GRES_CONF)
        self._start_munge()
        SYSTEM_CONFIG.parent.mkdir(parents=True, exist_ok=True)
        SYSTEM_CONFIG.symlink_to(self.config)
        self.linked = True
        self.run("/usr/sbin/slurmctld", "-i", "-f", str(self.config))
        self.run("/usr/sbin/slurmd", "-N", "localhost", "-f", str(self.config))
        self._wait_until_idle()
        self.run("scontrol", "create", "reservation", f"ReservationName={RESERVATION}", "Nodes=localhost", "StartTime=now", "Duration=infinite", "Users=root")

    def _start_munge(self) -> None:
        folder = self.root / "munge"
        key = folder / "munge.key"
        shutil.copy("/etc/munge/munge.key", key)
        shutil.chown(folder, "munge", "munge")
        shutil.chown(key, "munge", "munge")
        key.chmod(0o400)
        self.run(
            "runuser", "-u", "munge", "--", "/usr/sbin/munged",
            f"--socket={folder / 'munge.socket'}", f"--key-file={key}", f"--pid-file={folder / 'munged.pid'}",
            f"--log-file={folder / 'munged.log'}", f"--seed-file={folder / 'munged.seed'}",
        )  # fmt: skip

    def _wait_until_idle(self, limit_s: float = 60) -> None:
        deadline = time.monotonic() + limit_s
        state = ""
        while time.monotonic() < deadline:
            state = self.run("sinfo", "-h", "-o", "%t", check=False).stdout.strip()
            if state == "idle":
                return
            time.sleep(0.5)
        raise SlurmUnavailable(f"node localhost is {state or 'unknown'!r}, not idle, {limit_s:.0f} s after slurmd started; see {self.root}/slurmd.log")

    def jobs(self) -> list[dict[str, str]]:
        """Return every job that slurmctld still lists (finished ones for MinJobAge), as scontrol fields."""
        output = self.run("scontrol", "show", "job", "--oneliner").stdout
        records = []
        for line in output.splitlines():
            if not line.startswith("JobId="):
                continue
            fields = {}
            for item in line.split():
                key, _, value = item.partition("=")
                fields[key] = value
            records.append(fields)
        return records

    def stop(self) -> None:
        """Stop every daemon started here by its pid, then remove the link and the folder."""
        if self.root is not None:
            for pid_file in ("slurmd.pid", "slurmctld.pid", "munge/munged.pid"):
                _stop_by_pid_file(self.root / pid_file)
        if self.linked and SYSTEM_CONFIG.is_symlink() and SYSTEM_CONFIG.resolve() == self.config.resolve():
            SYSTEM_CONFIG.unlink()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)


def _stop_by_pid_file(path: Path, limit_s: float = 30) -> None:
    """Send SIGTERM to the pid in a pid file, wait for the process to exit, and SIGKILL it after limit_s."""
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if not _is_running(pid):
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)


def _is_running(pid: int) -> bool:
    """Return whether a process exists and is not a zombie (a container's init may never reap it)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"
