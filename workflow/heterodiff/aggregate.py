"""Study tables: per-run files concatenated, run parameters from each run's spec.yaml."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from heterodiff import tables


def read_spec(path: str | Path) -> dict:
    with open(path) as handle:
        spec = yaml.safe_load(handle)
    if not isinstance(spec, dict) or "run_id" not in spec or "params" not in spec:
        raise ValueError(f"run description {path} is incomplete (no run_id or params); rerun the train rule for it")
    return spec


def runs_frame(spec_paths: list[str | Path], evaluate_spec_paths: list[str | Path]) -> pd.DataFrame:
    """Build runs.parquet rows from the spec.yaml and evaluate.yaml of every run."""
    evaluated = {}
    for path in evaluate_spec_paths:
        evaluate_spec = read_spec(path)
        evaluated[evaluate_spec["run_id"]] = evaluate_spec["params"]["evaluate"]
    rows = []
    for path in spec_paths:
        spec = read_spec(path)
        if spec["run_id"] not in evaluated:
            raise ValueError(f"run {spec['run_id']} has a spec.yaml ({path}) but no evaluate.yaml")
        params = {**spec["params"], "evaluate": evaluated[spec["run_id"]]}
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


def aggregate(spec_paths, evaluate_spec_paths, metrics_paths, train_log_paths, runs_out, metrics_out, train_log_out) -> None:
    """Write the three study tables."""
    tables.write_table(runs_frame(spec_paths, evaluate_spec_paths), tables.runs_schema(), runs_out)
    tables.write_table(tables.concat(metrics_paths, tables.METRICS), tables.METRICS, metrics_out)
    tables.write_table(tables.concat(train_log_paths, tables.TRAIN_LOG), tables.TRAIN_LOG, train_log_out)
