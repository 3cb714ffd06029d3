"""End-to-end Snakemake run of a tiny digits study: tables, classifier, figures, sample grids and reruns."""

import shutil

import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image
from test_workflow import REPOSITORY, planned_jobs, snakemake, write_config

from heterodiff import tables

pytestmark = pytest.mark.workflow

TINY_DIGITS = {
    "selected_studies": ["digits_tiny"],
    "studies": {
        "digits_tiny": {
            "seeds": [0],
            "grid": {"data.imbalance_ratio": [1, 8]},
            "data": {"kind": "images", "images": {"source": "digits", "rebalance": {"n_max": 40}}},
            "model": {"unet": {"block_channels": [16, 32]}},
            "diffusion": {"num_train_timesteps": 100, "clip_sample": True},
            "train": {"steps": 40, "batch_size": 32, "checkpoints": 2, "checkpoint_first": 10, "log_every": 10},
            "evaluate": {
                "n_samples": 48,
                "num_inference_steps": 5,
                "bootstrap_samples": 100,
                "images": {"grid_samples": 4, "classifier": {"epochs": 15}},
            },
        }
    },
}
RUNS = ["imbalance_ratio=1+seed=0", "imbalance_ratio=8+seed=0"]
FIGURES = ("memorisation", "class_share", "precision_recall", "frechet_distance", "loss")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """Copy the workflow into a fresh folder and run the tiny digits study to the end."""
    workdir = tmp_path_factory.mktemp("image_workflow")
    for name in ("Snakefile", "workflow", "config", "envs", "profiles"):
        source = REPOSITORY / name
        if source.is_dir():
            shutil.copytree(source, workdir / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, workdir / name)
    write_config(workdir, TINY_DIGITS)
    snakemake(workdir)
    return workdir


def test_image_tables_have_their_schemas(finished):
    folder = finished / "results" / "digits_tiny" / "tables"
    assert pq.read_schema(folder / "metrics.parquet").equals(tables.METRICS, check_metadata=False)
    assert pq.read_schema(folder / "runs.parquet").equals(tables.runs_schema(), check_metadata=False)


def test_image_runs_record_rebalanced_counts(finished):
    runs = pq.read_table(finished / "results/digits_tiny/tables/runs.parquet").to_pandas().set_index("run_id")
    assert sorted(runs.index) == RUNS
    assert runs.loc[RUNS[1], "class_counts_train"].tolist() == [40] * 5 + [5] * 5
    assert runs.loc[RUNS[0], "class_counts_train"].tolist() == [40] * 10
    assert runs.loc[RUNS[1], "data.kind"] == "images"


def test_image_metrics_cover_classes_and_checkpoints(finished):
    metrics = pq.read_table(finished / "results/digits_tiny/tables/metrics.parquet").to_pandas()
    assert sorted(metrics["step"].unique()) == [10, 40]
    expected = {"memorised_fraction", "memorised_fraction_heldout", "class_share", "precision", "recall", "frechet_distance"}
    assert expected <= set(metrics["metric"])
    share = metrics[metrics["metric"] == "class_share"].groupby(["run_id", "step"])["value"].sum()
    assert share.to_numpy() == pytest.approx(1.0)
    bounded = metrics[metrics["metric"].isin(["precision", "recall"])]["value"].dropna()
    assert len(bounded) > 0
    assert bounded.between(0.0, 1.0).all()


def test_classifier_trained_once_and_trusted(finished):
    classifiers = finished / "results/digits_tiny/classifiers"
    assert [path.name for path in classifiers.iterdir()] == ["digits"]
    spec = yaml.safe_load((classifiers / "digits" / "classifier.yaml").read_text())
    assert spec["accuracy"] >= 0.95
    assert spec["trusted"] is True
    evaluated = yaml.safe_load((finished / f"results/digits_tiny/runs/{RUNS[1]}/evaluate.yaml").read_text())
    assert evaluated["classifier"]["accuracy"] == spec["accuracy"]


def test_image_figures_and_sample_grids_are_images(finished):
    folder = finished / "results" / "digits_tiny" / "figures"
    paths = [folder / f"{name}.png" for name in FIGURES] + [folder / "samples" / f"{run_id}.png" for run_id in RUNS]
    for path in paths:
        with Image.open(path) as image:
            assert image.width > 300, path
            assert len(image.getcolors(maxcolors=1 << 20) or range(1000)) > 10, path  # not a blank canvas


def test_image_rerun_has_nothing_to_do(finished):
    assert planned_jobs(finished) == {}


def test_changing_classifier_keeps_diffusion_training(finished):
    changed = yaml.safe_load(yaml.safe_dump(TINY_DIGITS))
    changed["studies"]["digits_tiny"]["evaluate"]["images"]["classifier"]["epochs"] = 16
    write_config(finished, changed)
    try:
        jobs = planned_jobs(finished)
    finally:
        write_config(finished, TINY_DIGITS)
    assert jobs["train_classifier"] == 1
    assert jobs["evaluate"] == 2
    assert "train" not in jobs
    assert "make_dataset" not in jobs
