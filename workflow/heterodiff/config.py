"""Configuration: schema validation, defaults, grid expansion and canonical run ids."""

from __future__ import annotations

import copy
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from heterodiff import image_config

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"
SECTIONS = ("data", "model", "diffusion", "train", "evaluate", "diagnostics", "trajectories", "timescales")
_FLOAT_STRING = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_FORBIDDEN_IN_ID = re.compile(r"[,+=/\s]")


class ConfigError(ValueError):
    """An invalid configuration: names the key, the value and what is allowed."""


@cache
def load_schema() -> dict:
    with open(SCHEMA_PATH) as handle:
        return yaml.safe_load(handle)


def _resolve(schema: dict, root: dict) -> dict:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    target = root
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return _resolve(merged, root)


def _allows(schema: dict, type_name: str, root: dict) -> bool:
    schema = _resolve(schema, root)
    declared = schema.get("type")
    if declared is not None:
        return type_name in (declared if isinstance(declared, list) else [declared])
    return any(_allows(option, type_name, root) for option in schema.get("oneOf", []))


def _prepare(instance: Any, schema: dict, root: dict) -> Any:
    """Fill defaults and turn numeric strings into numbers where the schema expects a number.

    PyYAML reads `1e-5` (no dot in the mantissa) as a string, a frequent surprise in learning rates.
    """
    schema = _resolve(schema, root)
    if isinstance(instance, str) and _FLOAT_STRING.match(instance) and _allows(schema, "number", root):
        return float(instance)
    if isinstance(instance, list):
        items = schema.get("items")
        if items is None:
            options = [_resolve(o, root) for o in schema.get("oneOf", [])]
            items = next((o["items"] for o in options if "items" in o), None)
        if items is not None:
            return [_prepare(item, items, root) for item in instance]
        return instance
    if not isinstance(instance, dict):
        return instance
    prepared = dict(instance)
    properties = schema.get("properties", {})
    for key, sub_schema in properties.items():
        sub_schema = _resolve(sub_schema, root)
        if key not in prepared and "default" in sub_schema:
            prepared[key] = copy.deepcopy(sub_schema["default"])
        if key in prepared:
            prepared[key] = _prepare(prepared[key], sub_schema, root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in prepared.keys() - properties.keys():
            prepared[key] = _prepare(prepared[key], extra, root)
    return prepared


def _dotted(path) -> str:
    parts = []
    for part in path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts) or "(top level)"


def _expected(error: jsonschema.ValidationError) -> str:
    """Say in words what a failed schema keyword allows."""
    bound = error.validator_value
    if error.validator == "enum":
        return "one of " + ", ".join(json.dumps(v) for v in bound)
    if error.validator == "oneOf":
        return "a single positive number or a list of positive numbers"
    if error.validator == "required":
        return f"the key(s) {bound}"
    templates = {
        "minimum": "a value >= {}",
        "maximum": "a value <= {}",
        "exclusiveMinimum": "a value > {}",
        "exclusiveMaximum": "a value < {}",
        "type": "type {}",
        "minItems": "at least {} item(s)",
        "maxItems": "at most {} item(s)",
        "multipleOf": "a multiple of {}",
        "uniqueItems": "no repeated items",
        "minProperties": "at least {} entry",
    }
    return templates[error.validator].format(bound) if error.validator in templates else error.message


def _describe(error: jsonschema.ValidationError, prefix: str) -> str:
    key = prefix + _dotted(error.absolute_path) if prefix else _dotted(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        where = key if error.absolute_path else "the top level"
        return f"unknown key(s) {', '.join(repr(u) for u in unknown)} in {where}; allowed keys: {', '.join(allowed)}"
    if error.validator == "propertyNames":
        return f"invalid key {error.instance!r} in {key}: must match {error.validator_value}"
    value = json.dumps(error.instance) if not isinstance(error.instance, dict) else "(a mapping)"
    allowed = _expected(error)
    description = schema.get("description", "")
    hint = f" ({description.strip()})" if description and error.validator != "required" else ""
    return f"{key} = {value} is invalid: expected {allowed}{hint}"


def _check(instance: dict, schema: dict, prefix: str = "") -> None:
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    if errors:
        lines = "\n".join(f"  - {_describe(error, prefix)}" for error in errors)
        raise ConfigError(f"invalid configuration:\n{lines}")


def _set_dotted(target: dict, dotted_key: str, value: Any) -> None:
    *parents, leaf = dotted_key.split(".")
    for part in parents:
        target = target[part]
    target[leaf] = value


def _get_dotted(target: dict, dotted_key: str) -> Any:
    for part in dotted_key.split("."):
        target = target[part]
    return target


def canonical_value(value: Any) -> str:
    """Spell a grid value one way only: 0.1 and 0.10 give "0.1"; 1e-5 and 0.00001 give "1e-05"; 1e30 gives "1e30"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        number = float(value)
        if not math.isfinite(number):
            raise ConfigError(f"grid value {value!r} is not finite")
        if number.is_integer() and abs(number) < 1e15:
            return str(int(number))
        # repr writes 1e+30; the '+' would read as a separator between run id pairs.
        return repr(number).replace("e+", "e")
    if isinstance(value, str):
        if _FORBIDDEN_IN_ID.search(value) or not value:
            raise ConfigError(f"grid value {value!r} cannot be part of a run id: use no comma, '+', '=', '/' or space")
        return value
    if isinstance(value, list):
        return ";".join(canonical_value(item) for item in value)
    raise ConfigError(f"grid value {value!r} cannot be part of a run id: use numbers, strings, booleans or lists of them")


@dataclass(frozen=True)
class Run:
    """One grid point and one training seed of a study, with its fully resolved parameters."""

    study: str
    run_id: str
    data_id: str
    seed: int
    axes: dict[str, Any]
    params: dict[str, Any] = field(repr=False)

    def section(self, name: str) -> dict:
        return self.params[name]


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    axes: dict[str, list]
    seeds: list[int]
    runs: dict[str, Run]

    def data_ids(self) -> list[str]:
        return sorted({run.data_id for run in self.runs.values()})

    def data_params(self, data_id: str) -> dict:
        return next(run.params["data"] for run in self.runs.values() if run.data_id == data_id)


def _axis_labels(axes: list[str]) -> dict[str, str]:
    """Label each axis by its last key part, or by the full dotted key where that part is not unique."""
    leaves = [axis.split(".")[-1] for axis in axes]
    taken = leaves + ["seed"]  # the training seed is always part of the run id
    return {axis: leaf if taken.count(leaf) == 1 else axis for axis, leaf in zip(axes, leaves)}


def make_id(pairs: dict[str, Any], labels: dict[str, str]) -> str:
    # NOTE: no comma between pairs. Snakemake 9.27 passes wildcards to cluster jobs as
    # `--target-jobs rule:key=value,key=value` and splits that list at every comma, quoted or not,
    # so a run id with a comma fails on every remote executor (SLURM included).
    return "+".join(f"{labels[key]}={canonical_value(value)}" for key, value in sorted(pairs.items(), key=lambda kv: labels[kv[0]]))


def _data_problems(name: str, data: dict) -> list[str]:
    """Return the inconsistencies between data keys."""
    k, dim = data["n_classes"], data["dim"]
    prefix = f"studies.{name}.data"
    problems = []
    if isinstance(data["variance"], list) and len(data["variance"]) not in (1, k):
        problems.append(f"{prefix}.variance has {len(data['variance'])} values; expected 1 or n_classes = {k}")

    if data["geometry"] == "explicit":
        means = data["means"]
        if means is None:
            problems.append(f"{prefix}.means is missing; geometry explicit needs n_classes = {k} means of dim = {dim}")
        elif len(means) != k or any(len(m) != dim for m in means):
            problems.append(f"{prefix}.means must be {k} lists of {dim} numbers (n_classes x dim)")
    elif data["means"] is not None:
        problems.append(f"{prefix}.means is set but geometry is {data['geometry']!r}; set geometry: explicit")
    if data["geometry"] == "simplex" and dim < k - 1:
        problems.append(f"{prefix}.geometry simplex needs dim >= n_classes - 1 = {k - 1}, got dim = {dim}")
    if data["geometry"] == "orthogonal" and dim < k:
        problems.append(f"{prefix}.geometry orthogonal needs dim >= n_classes = {k}, got dim = {dim}")

    if data["weights"] is not None:
        if len(data["weights"]) != k:
            problems.append(f"{prefix}.weights has {len(data['weights'])} values; expected n_classes = {k}")
        if data["imbalance_ratio"] != 1:
            problems.append(f"{prefix}: set either weights or imbalance_ratio (= {data['imbalance_ratio']}), not both")
    if data["n_train"] < k:
        problems.append(f"{prefix}.n_train = {data['n_train']} is smaller than n_classes = {k}")
    return problems


def _schedule_problems(name: str, params: dict) -> list[str]:
    """Return the inconsistencies between checkpoint, timestep and sampling keys."""
    problems = []
    train = params["train"]
    if train["checkpoint_steps"] is not None and max(train["checkpoint_steps"]) > train["steps"]:
        problems.append(f"studies.{name}.train.checkpoint_steps go beyond train.steps = {train['steps']}")
    if train["checkpoint_steps"] is None and train["checkpoint_first"] > train["steps"]:
        problems.append(
            f"studies.{name}.train.checkpoint_first = {train['checkpoint_first']} is beyond train.steps = {train['steps']}"
        )

    timesteps = params["diffusion"]["num_train_timesteps"]
    too_late = [t for t in params["diagnostics"]["score_timesteps"] or [] if t >= timesteps]
    if too_late:
        problems.append(f"studies.{name}.diagnostics.score_timesteps {too_late} must be below diffusion.num_train_timesteps = {timesteps}")
    for section in ("trajectories", "evaluate"):
        inference = params[section]["num_inference_steps"]
        if inference > timesteps:
            problems.append(
                f"studies.{name}.{section}.num_inference_steps = {inference} exceeds diffusion.num_train_timesteps = {timesteps}"
            )
    return problems


def _check_study_semantics(name: str, params: dict, where: str) -> None:
    """Check the constraints between keys that a JSON schema cannot express."""
    problems = image_config.problems(name, params, load_schema())
    problems += _data_problems(name, params["data"])
    problems += _schedule_problems(name, params)
    if problems:
        raise ConfigError(f"invalid configuration{where}:\n" + "\n".join(f"  - {p}" for p in problems))


def _expand_study(name: str, study: dict, schema: dict) -> Study:
    base = {section: study[section] for section in SECTIONS}
    axes = study["grid"]
    study_schema = {**_resolve(schema["$defs"]["study"], schema), "$defs": schema["$defs"]}

    for axis in axes:
        try:
            current = _get_dotted(base, axis)
        except (KeyError, TypeError):
            raise ConfigError(
                f"studies.{name}.grid: unknown axis {axis!r}; an axis must be a dotted key of the study "
                f"such as data.imbalance_ratio"
            ) from None
        if isinstance(current, dict):
            raise ConfigError(f"studies.{name}.grid: axis {axis!r} is a section, not a key")
    labels = _axis_labels(list(axes))
    data_axes = [axis for axis in axes if axis.startswith("data.")]

    runs: dict[str, Run] = {}
    for combination in itertools.product(*axes.values()):
        values = dict(zip(axes, combination))
        params = copy.deepcopy(base)
        for axis, value in values.items():
            _set_dotted(params, axis, value)
        candidate = _prepare({**params, "seeds": study["seeds"]}, study_schema, schema)
        candidate = image_config.fill_defaults(candidate, schema, _prepare)
        where = ", ".join(f"{axis}={canonical_value(v)}" for axis, v in values.items())
        _check(candidate, study_schema, prefix=f"studies.{name}.")
        _check_study_semantics(name, candidate, f" at grid point {where}" if where else "")
        params = {section: candidate[section] for section in SECTIONS}
        values = {axis: _get_dotted(params, axis) for axis in axes}
        data_id = make_id({a: values[a] for a in data_axes}, labels) or "base"
        for seed in study["seeds"]:
            run_id = make_id({**values, "seed": seed}, {**labels, "seed": "seed"})
            if run_id in runs:
                raise ConfigError(f"studies.{name}.grid: two grid points give the run id {run_id!r}; remove repeated values")
            runs[run_id] = Run(name, run_id, data_id, seed, values, {**params, "seed": seed})
    return Study(name, study["description"], dict(axes), list(study["seeds"]), runs)


def validate(config: dict) -> dict:
    """Validate a configuration, fill in defaults and return the result; raise ConfigError on bad input."""
    schema = load_schema()
    if not isinstance(config, dict):
        raise ConfigError(f"the configuration must be a mapping, got {type(config).__name__}")
    prepared = _prepare(config, schema, schema)
    _check(prepared, schema)
    selected = prepared.get("selected_studies") or list(prepared["studies"])
    missing = [name for name in selected if name not in prepared["studies"]]
    if missing:
        raise ConfigError(
            f"selected_studies names unknown studies {missing}; defined studies: {', '.join(prepared['studies'])}"
        )
    prepared["selected_studies"] = selected
    return prepared


def expand(config: dict) -> dict[str, Study]:
    """Expand every selected study of a validated configuration into its runs."""
    schema = load_schema()
    return {name: _expand_study(name, config["studies"][name], schema) for name in config["selected_studies"]}


def load(path: str | Path) -> dict:
    with open(path) as handle:
        return validate(yaml.safe_load(handle))
