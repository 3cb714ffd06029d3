"""The Parquet tables, each with one explicit pyarrow schema so files from different runs concatenate."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from heterodiff.config import SECTIONS, load_schema

TRAIN_LOG = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("step", pa.int64(), nullable=False),
        pa.field("bucket", pa.int32()),  # null: all timesteps
        pa.field("t_min", pa.int32(), nullable=False),
        pa.field("t_max", pa.int32(), nullable=False),
        pa.field("loss", pa.float64()),
        pa.field("count", pa.int64(), nullable=False),
    ],
    metadata={"description": "Training loss per logged step, overall (bucket null) and per timestep bucket."},
)

METRICS = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("step", pa.int64(), nullable=False),
        pa.field("class", pa.int32()),  # null: all classes
        pa.field("metric", pa.string(), nullable=False),
        pa.field("value", pa.float64()),
        pa.field("ci_low", pa.float64()),
        pa.field("ci_high", pa.float64()),
        pa.field("timestep", pa.int32()),  # null unless the metric is measured at one diffusion timestep
    ],
    metadata={"description": "Tidy evaluation metrics per run, checkpoint step and class."},
)

TIMESCALES = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("class", pa.int32(), nullable=False),
        pa.field("tau_gen", pa.int64()),  # null: not reached by the last checkpoint
        pa.field("tau_gen_ci_low", pa.int64()),
        pa.field("tau_gen_ci_high", pa.int64()),  # null: not reached in the upper tail of the bootstrap
        pa.field("tau_gen_reached_share", pa.float64()),
        pa.field("tau_mem", pa.int64()),
        pa.field("tau_mem_ci_low", pa.int64()),
        pa.field("tau_mem_ci_high", pa.int64()),
        pa.field("tau_mem_reached_share", pa.float64()),
        pa.field("gen_factor", pa.float64(), nullable=False),
        pa.field("mem_threshold", pa.float64(), nullable=False),
        pa.field("confidence_level", pa.float64(), nullable=False),
        pa.field("bootstrap_samples", pa.int64(), nullable=False),
    ],
    metadata={"description": "Per run and class: first checkpoint of generalisation (tau_gen) and of memorisation (tau_mem)."},
)

TRAJECTORIES = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("step", pa.int64(), nullable=False),  # checkpoint whose network ran the reverse process
        pa.field("process", pa.string(), nullable=False),  # network, population or empirical
        pa.field("class", pa.int32(), nullable=False),
        pa.field("quantity", pa.string(), nullable=False),  # speciation or collapse
        pa.field("timestep", pa.int32()),  # null: the agreement never stays above the threshold
        pa.field("alpha_bar", pa.float64()),
        pa.field("threshold", pa.float64(), nullable=False),
        pa.field("n_trajectories", pa.int64(), nullable=False),
    ],
    metadata={"description": "Speciation and collapse times of reverse trajectories, per class and process."},
)

TRACKING = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("step", pa.int64(), nullable=False),
        pa.field("sample", pa.int32(), nullable=False),  # index of the initial noise, the same at every checkpoint
        pa.field("assigned_class", pa.int32(), nullable=False),  # exact posterior argmax
        pa.field("nearest_train", pa.int32(), nullable=False),
        pa.field("nearest_train_class", pa.int32(), nullable=False),
        pa.field("distance_ratio", pa.float64(), nullable=False),  # d1 / d2
        pa.field("memorised", pa.bool_(), nullable=False),
    ],
    metadata={"description": "Every generated sample at every checkpoint: class and nearest training point."},
)

COPIES = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("train_index", pa.int32(), nullable=False),
        pa.field("train_class", pa.int32(), nullable=False),
        pa.field("first_step", pa.int64(), nullable=False),  # first checkpoint at which a sample copies it
        pa.field("stable_from_step", pa.int64()),  # from here on one sample copies it at every checkpoint
        pa.field("copied_by", pa.list_(pa.int32()), nullable=False),  # samples that copy it at some checkpoint
    ],
    metadata={"description": "Training points copied by generated samples (d1/d2 below the memorisation ratio)."},
)

_ARROW_TYPES = {"integer": pa.int64(), "number": pa.float64(), "string": pa.string(), "boolean": pa.bool_()}


def _leaf_type(schema: dict) -> pa.DataType:
    """Map a JSON schema leaf to an arrow type; lists and alternatives are stored as JSON text."""
    declared = schema.get("type")
    if "enum" in schema:
        return pa.string()
    types = [t for t in (declared if isinstance(declared, list) else [declared]) if t != "null"]
    if len(types) == 1 and types[0] in _ARROW_TYPES:
        return _ARROW_TYPES[types[0]]
    return pa.string()


def parameter_columns() -> dict[str, pa.DataType]:
    """Return every resolved parameter as a dotted column name with its arrow type, in schema order."""
    schema = load_schema()
    columns = {}
    for section in SECTIONS:
        for key, leaf in schema["$defs"][section]["properties"].items():
            columns[f"{section}.{key}"] = _leaf_type(leaf)
    return columns


def runs_schema() -> pa.Schema:
    fields = [
        pa.field("study", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("data_id", pa.string(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("grid_axes", pa.list_(pa.string()), nullable=False),
        pa.field("class_weights", pa.list_(pa.float64()), nullable=False),
        pa.field("class_counts_train", pa.list_(pa.int64()), nullable=False),
        pa.field("train_sha256", pa.string(), nullable=False),
        pa.field("n_parameters", pa.int64()),
        pa.field("heterodiff_version", pa.string()),
        pa.field("git_commit", pa.string()),
        pa.field("device", pa.string()),
    ]
    fields += [pa.field(name, arrow_type) for name, arrow_type in parameter_columns().items()]
    return pa.schema(fields, metadata={"description": "One row per run: identity, derived data facts and every parameter."})


def flatten_params(params: dict) -> dict:
    """Flatten resolved parameters to dotted columns; lists and alternatives become JSON text."""
    columns = parameter_columns()
    row = {}
    for name, arrow_type in columns.items():
        section, key = name.split(".", 1)
        value = params[section].get(key)
        if arrow_type == pa.string() and value is not None and not isinstance(value, str):
            value = json.dumps(value)
        row[name] = value
    return row


def to_arrow(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """Convert a frame to its schema; nullable columns it lacks are filled with nulls."""
    missing = [name for name in schema.names if name not in frame.columns and not schema.field(name).nullable]
    if missing:
        raise ValueError(f"table is missing columns {missing} of its schema")
    frame = frame.reindex(columns=schema.names)
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


def write_table(frame: pd.DataFrame | pa.Table, schema: pa.Schema, path: str | Path) -> None:
    """Write a table with its explicit schema, through a temporary file renamed into place."""
    table = frame if isinstance(frame, pa.Table) else to_arrow(frame, schema)
    table = table.cast(schema)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    pq.write_table(table, temporary)
    os.replace(temporary, path)


def concat(paths: list[str | Path], schema: pa.Schema) -> pa.Table:
    """Read per-run tables and concatenate them under one schema."""
    tables = [pq.read_table(path).select(schema.names).cast(schema) for path in paths]
    return pa.concat_tables(tables) if tables else schema.empty_table()
