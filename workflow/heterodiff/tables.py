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
    ],
    metadata={"description": "Tidy evaluation metrics per run, checkpoint step and class."},
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
    missing = [name for name in schema.names if name not in frame.columns]
    if missing:
        raise ValueError(f"table is missing columns {missing} of its schema")
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)


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
