"""Write config/README.md from the config schema: `python -m heterodiff.docs > config/README.md`."""

from __future__ import annotations

import json

from heterodiff.config import SECTIONS, load_schema

HEADER = """# Configuration keys

Generated from `workflow/schemas/config.schema.yaml` by `python -m heterodiff.docs > config/README.md`;
a test fails when the two disagree. A configuration holds named studies:

```yaml
selected_studies: [my_study]       # studies that `rule all` builds
studies:
  my_study:
    description: free text
    seeds: [0, 1]                  # training seeds
    grid:                          # dotted keys of this study -> values; every combination is a run
      data.imbalance_ratio: [1, 4, 16]
      data.n_train: [64, 512]
    data: {...}                    # the sections below; keys left out take their defaults
    model: {...}
    diffusion: {...}
    train: {...}
    evaluate: {...}
```

An unknown key, a wrong type, an out-of-range value or an inconsistent combination (for example both
`data.weights` and `data.imbalance_ratio`) stops Snakemake before any job starts, naming the key, the
value and what is allowed. Numbers may be written `1e-5`: the loader reads them as numbers.
"""


def _allowed(schema: dict) -> str:
    if "$ref" in schema:
        return f"a mapping, see `{schema['$ref'].rsplit('/', 1)[-1]}` below"
    if "enum" in schema:
        return ", ".join(f"`{value}`" for value in schema["enum"])
    if "oneOf" in schema:
        return " or ".join(_allowed(option) for option in schema["oneOf"])
    declared = schema.get("type")
    parts = [" or ".join(declared) if isinstance(declared, list) else str(declared)]
    bounds = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
    parts += [f"{sign} {schema[key]}" for key, sign in bounds.items() if key in schema]
    if "items" in schema and isinstance(schema["items"], dict) and "type" in schema["items"]:
        parts.append(f"items: {_allowed(schema['items'])}")
    return ", ".join(parts)


def render() -> str:
    schema = load_schema()
    lines = [HEADER]
    study = schema["$defs"]["study"]["properties"]
    lines += ["## Study keys", "", "| key | meaning | default | allowed |", "|---|---|---|---|"]
    for key in ("description", "seeds", "grid"):
        entry = study[key]
        lines.append(f"| `{key}` | {' '.join(entry['description'].split())} | `{json.dumps(entry['default'])}` | {_allowed(entry)} |")
    nested = []
    for section in SECTIONS:
        nested += _render_section(schema, section, section, lines)
    # Sub-sections such as data.images, in the order they are first referenced.
    while nested:
        prefix, name = nested.pop(0)
        nested += _render_section(schema, name, prefix, lines)
    return "\n".join(lines) + "\n"


def _render_section(schema: dict, name: str, prefix: str, lines: list[str]) -> list[tuple[str, str]]:
    """Append the table of one schema definition; return the sub-sections it references."""
    definition = schema["$defs"][name]
    title = f"`{prefix}`" if prefix == name else f"`{prefix}` (`{name}`)"
    lines += ["", f"## {title}", "", " ".join(definition["description"].split()), ""]
    lines += ["| key | meaning | default | allowed |", "|---|---|---|---|"]
    nested = []
    for key, entry in definition["properties"].items():
        description = " ".join(entry["description"].split()).replace("|", "\\|")
        lines.append(f"| `{prefix}.{key}` | {description} | `{json.dumps(entry.get('default'))}` | {_allowed(entry)} |")
        if "$ref" in entry:
            nested.append((f"{prefix}.{key}", entry["$ref"].rsplit("/", 1)[-1]))
    return nested


if __name__ == "__main__":
    print(render(), end="")
