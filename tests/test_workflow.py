"""End-to-end Snakemake runs on a tiny study: outputs, schemas, reruns, lint and report."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

from heterodiff import tables

pytestmark = pytest.mark.workflow

REPOSITORY = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
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
            "diagnostics": {"score_samples": 64, "bootstrap_samples": 20},
            "trajectories": {"n_trajectories": 16, "clones": 4, "restart_points": 4, "num_inference_steps": 10},
        }
    },
}


def snakemake(workdir, *arguments, check=True):
    result = subprocess.run(
        [*SNAKEMAKE, "--profile", "profiles/local", "--configfile", "tiny.yaml", *arguments],
        cwd=workdir, capture_output=True, text=True, timeout=900,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(arguments)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def write_config(workdir, config):
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(config))


def planned_jobs(workdir) -> dict[str, int]:
    """Return the job counts of a dry-run, by rule."""
    output = snakemake(workdir, "--dry-run").stdout
    if "Nothing to be done" in output:
        return {}
    table = output.split("Job stats:")[1].split("total")[0]
    return {match[0]: int(match[1]) for match in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """Copy the workflow into a fresh folder and run the tiny study to the end."""
    workdir = tmp_path_factory.mktemp("workflow")
    for name in ("Snakefile", "workflow", "config", "envs", "profiles"):
        source = REPOSITORY / name
        if source.is_dir():
            shutil.copytree(source, workdir / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, workdir / name)
    write_config(workdir, TINY)
    snakemake(workdir)
    return workdir


@pytest.mark.parametrize(
    ("name", "schema"),
    [
        ("metrics", tables.METRICS),
        ("train_log", tables.TRAIN_LOG),
        ("runs", tables.runs_schema()),
        ("timescales", tables.TIMESCALES),
        ("trajectories", tables.TRAJECTORIES),
        ("tracking", tables.TRACKING),
        ("copies", tables.COPIES),
    ],
)
def test_tables_have_their_schemas(finished, name, schema):
    path = finished / "results" / "tiny" / "tables" / f"{name}.parquet"
    assert pq.read_schema(path).equals(schema, check_metadata=False)


def test_dynamics_tables_cover_every_run_and_class(finished):
    folder = finished / "results" / "tiny" / "tables"
    timescales = pq.read_table(folder / "timescales.parquet").to_pandas()
    assert len(timescales) == 4  # two runs, two classes
    assert set(timescales["mem_threshold"]) == {0.1}
    trajectories = pq.read_table(folder / "trajectories.parquet").to_pandas()
    assert set(trajectories["process"]) == {"network", "population", "empirical"}
    assert set(trajectories["step"]) == {60}  # trajectories.checkpoints defaults to the last checkpoint
    assert len(trajectories) == 2 * 3 * 2 * 2  # runs x processes x classes x (speciation, collapse)
    tracking = pq.read_table(folder / "tracking.parquet").to_pandas()
    assert len(tracking) == 2 * 3 * 64  # runs x checkpoints x samples
    metrics = pq.read_table(folder / "metrics.parquet").to_pandas()
    scores = metrics[metrics["metric"] == "score_error_ratio"]
    assert sorted(scores["timestep"].unique()) == [1, 3, 8, 22, 60]  # log-spaced between T/100 and 3T/5


def test_tables_cover_every_run_and_checkpoint(finished):
    folder = finished / "results" / "tiny" / "tables"
    runs = pq.read_table(folder / "runs.parquet").to_pandas()
    metrics = pq.read_table(folder / "metrics.parquet").to_pandas()
    assert sorted(runs["run_id"]) == ["imbalance_ratio=1+n_train=24+seed=0", "imbalance_ratio=3+n_train=24+seed=0"]
    assert runs.set_index("run_id").loc["imbalance_ratio=3+n_train=24+seed=0", "class_counts_train"].tolist() == [18, 6]
    assert sorted(metrics["step"].unique()) == [10, 24, 60]
    expected = {"memorised_fraction", "memorised_fraction_heldout", "class_share", "mean_error"}
    assert expected <= set(metrics["metric"])
    share = metrics[(metrics["metric"] == "class_share")].groupby(["run_id", "step"])["value"].sum()
    assert share.to_numpy() == pytest.approx(1.0)


def test_figures_are_images(finished):
    names = ("memorisation", "class_share", "mean_error", "loss", "timescales", "tau_mem_vs_n", "learning_order")
    for name in (*names, "score_errors", "reverse_times", "copy_order"):
        path = finished / "results" / "tiny" / "figures" / f"{name}.png"
        with Image.open(path) as image:
            assert image.width > 300
            assert image.height > 150  # a figure that only states why it is empty is about 190 px high
            assert len(image.getcolors(maxcolors=1 << 20) or range(1000)) > 10  # not a blank canvas


def test_run_spec_is_self_describing(finished):
    spec = yaml.safe_load((finished / "results/tiny/runs/imbalance_ratio=3+n_train=24+seed=0/spec.yaml").read_text())
    assert spec["params"]["data"]["imbalance_ratio"] == 3
    assert spec["libraries"]["torch"].startswith("2.")
    assert spec["device"].startswith("cpu")
    assert len(spec["train_sha256"]) == 64


def test_second_dry_run_has_nothing_to_do(finished):
    assert planned_jobs(finished) == {}


def test_changing_one_axis_value_schedules_only_its_runs(finished):
    changed = yaml.safe_load(yaml.safe_dump(TINY))
    changed["studies"]["tiny"]["grid"]["data.imbalance_ratio"] = [1, 5]
    write_config(finished, changed)
    try:
        jobs = planned_jobs(finished)
    finally:
        write_config(finished, TINY)
    assert jobs == {"make_dataset": 1, "train": 1, "evaluate": 1, "aggregate": 1, "figures": 1, "all": 1}


def test_changing_model_key_keeps_data(finished):
    changed = yaml.safe_load(yaml.safe_dump(TINY))
    changed["studies"]["tiny"]["model"]["width"] = 48
    write_config(finished, changed)
    try:
        jobs = planned_jobs(finished)
    finally:
        write_config(finished, TINY)
    assert "make_dataset" not in jobs
    assert jobs["train"] == 2
    assert jobs["evaluate"] == 2


def test_changing_evaluation_keeps_training(finished):
    changed = yaml.safe_load(yaml.safe_dump(TINY))
    changed["studies"]["tiny"]["evaluate"]["n_samples"] = 32
    write_config(finished, changed)
    try:
        jobs = planned_jobs(finished)
    finally:
        write_config(finished, TINY)
    assert "train" not in jobs
    assert jobs["evaluate"] == 2


def test_invalid_config_stops_before_any_job(finished, tmp_path):
    bad = yaml.safe_load(yaml.safe_dump(TINY))
    bad["studies"]["tiny"]["data"]["imbalance_ratio"] = 0.5
    bad["studies"]["tiny"]["train"]["stepz"] = 10
    write_config(finished, bad)
    try:
        result = snakemake(finished, "--dry-run", check=False)
    finally:
        write_config(finished, TINY)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "studies.tiny.data.imbalance_ratio = 0.5 is invalid: expected a value >= 1" in output
    assert "unknown key(s) 'stepz' in studies.tiny.train" in output


def test_report_contains_figures(finished):
    snakemake(finished, "--report", "report.html")
    html = (finished / "report.html").read_text(errors="replace")
    for name in ("memorisation.png", "class_share.png", "loss.png"):
        assert name in html


def test_lint_reports_nothing():
    result = subprocess.run([*SNAKEMAKE, "--lint"], cwd=REPOSITORY, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


def test_snakefmt_finds_nothing_to_change():
    files = ["Snakefile", *map(str, sorted((REPOSITORY / "workflow" / "rules").glob("*.smk")))]
    result = subprocess.run([sys.executable, "-m", "snakefmt", "--check", *files], cwd=REPOSITORY, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
