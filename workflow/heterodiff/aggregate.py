"""Study tables: per-run files concatenated, run parameters from each run's spec.yaml."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from heterodiff import tables, timescales


def read_spec(path: str | Path) -> dict:
    with open(path) as handle:
        spec = yaml.safe_load(handle)
    if not isinstance(spec, dict) or "run_id" not in spec or "params" not in spec:
        raise ValueError(f"run description {path} is incomplete (no run_id or params); rerun the train rule for it")
    return spec


def runs_frame(spec_paths: list[str | Path], evaluate_spec_paths: list[str | Path], timescale_settings: dict) -> pd.DataFrame:
    """Build runs.parquet rows from the spec.yaml and evaluate.yaml of every run."""
    evaluated = {}
    for path in evaluate_spec_paths:
        evaluate_spec = read_spec(path)
        evaluated[evaluate_spec["run_id"]] = evaluate_spec["params"]
    rows = []
    for path in spec_paths:
        spec = read_spec(path)
        if spec["run_id"] not in evaluated:
            raise ValueError(f"run {spec['run_id']} has a spec.yaml ({path}) but no evaluate.yaml")
        params = {**spec["params"], **evaluated[spec["run_id"]], "timescales": timescale_settings[spec["run_id"]]}
        rows.append(
            {
                "study": spec["study"],
                "run_id": spec["run_id"],
                "data_id": spec["data_id"],
                "seed": spec["seed"],
                "grid_axes": list(spec["grid_axes"]),
                "class_weights": spec["class_weights"],
                "class_counts_train": spec["class_counts_train"],
                "train_sha256": spec["train_sha256"],
                "n_parameters": spec.get("n_parameters"),
                "heterodiff_version": spec.get("heterodiff_version"),
                "git_commit": spec.get("git_commit"),
                "device": spec.get("device"),
                **tables.flatten_params(params),
            }
        )
    return pd.DataFrame(rows)


def timescales_frame(metrics: pd.DataFrame, samples_paths: list[str | Path], run_ids: list[str], timescale_settings: dict) -> pd.DataFrame:
    """Compute tau_gen and tau_mem of every run from its metrics and its bootstrap replicates."""
    rows = []
    for run_id, path in zip(run_ids, samples_paths):
        with np.load(path) as arrays:
            if "gen_ratio" not in arrays.files:
                continue  # image runs: time scales need the exact mixture's distances
            replicates = {name: arrays[name] for name in ("steps", "gen_ratio", "memorised")}
        rows += timescales.run_timescales(run_id, metrics[metrics["run_id"] == run_id], replicates, timescale_settings[run_id])
    return pd.DataFrame(rows, columns=tables.TIMESCALES.names)


def copies_frame(tracking: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for run_id, group in tracking.groupby("run_id", sort=False):
        wide = group.pivot(index="step", columns="sample")
        labels = dict(zip(group["nearest_train"], group["nearest_train_class"]))
        rows += timescales.copies_rows(
            run_id, wide.index.to_numpy(), wide["nearest_train"].to_numpy(), wide["memorised"].to_numpy(dtype=bool), labels
        )
    return pd.DataFrame(rows, columns=tables.COPIES.names)


def aggregate(inputs: dict, outputs: dict, timescale_settings: dict) -> None:
    """Write the study tables from the per-run files named in inputs."""
    run_ids = [Path(path).parent.name for path in inputs["specs"]]
    tables.write_table(runs_frame(inputs["specs"], inputs["evaluate_specs"], timescale_settings), tables.runs_schema(), outputs["runs"])
    metrics = tables.concat(inputs["metrics"], tables.METRICS)
    tables.write_table(metrics, tables.METRICS, outputs["metrics"])
    tables.write_table(tables.concat(inputs["train_logs"], tables.TRAIN_LOG), tables.TRAIN_LOG, outputs["train_log"])
    tracking = tables.concat(inputs["tracking"], tables.TRACKING)
    tables.write_table(tracking, tables.TRACKING, outputs["tracking"])
    tables.write_table(copies_frame(tracking.to_pandas()), tables.COPIES, outputs["copies"])
    tables.write_table(tables.concat(inputs["trajectories"], tables.TRAJECTORIES), tables.TRAJECTORIES, outputs["trajectories"])
    timescale_rows = timescales_frame(metrics.to_pandas(), inputs["samples"], run_ids, timescale_settings)
    tables.write_table(timescale_rows, tables.TIMESCALES, outputs["timescales"])
