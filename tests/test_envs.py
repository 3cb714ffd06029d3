"""The conda environments under envs/ pin the same packages and versions as pyproject.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

REPOSITORY = Path(__file__).resolve().parents[1]
ENVIRONMENTS = sorted((REPOSITORY / "envs").glob("*.yaml"))
# conda-forge names that differ from the PyPI names in pyproject.toml.
CONDA_TO_PYPI = {"pytorch": "torch"}
# Packages of Snakemake's own process, which runs outside the rule environments.
SNAKEMAKE_SIDE = {"snakemake", "snakemake-executor-plugin-slurm"}
# Conda packages that are the environment's interpreter and installer rather than dependencies.
TOOLING = {"python", "pip"}


def project_pins() -> dict[str, str]:
    """Return {canonical name: exact version} of the runtime dependencies in pyproject.toml."""
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]
    pins = {}
    for line in project["dependencies"]:
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"pyproject.toml: {line!r} is not an exact pin"
        pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def environment_pins(path: Path) -> tuple[dict[str, str], str]:
    """Return {canonical PyPI name: version} of a conda environment file, and its python version."""
    environment = yaml.safe_load(path.read_text())
    pins, python = {}, None
    for entry in environment["dependencies"]:
        if isinstance(entry, dict):
            for line in entry["pip"]:
                requirement = Requirement(line)
                (specifier,) = requirement.specifier
                pins[canonicalize_name(requirement.name)] = specifier.version
            continue
        name, _, version = entry.partition("=")
        if name == "python":
            python = version
        if name in TOOLING:
            continue
        assert version, f"{path.name}: {entry!r} has no version"
        assert "=" not in version, f"{path.name}: {entry!r} is not an exact pin"
        assert "*" not in version, f"{path.name}: {entry!r} is not an exact pin"
        pins[canonicalize_name(CONDA_TO_PYPI.get(name, name))] = version
    return pins, python


@pytest.mark.parametrize("path", ENVIRONMENTS, ids=lambda path: path.name)
def test_environment_matches_pyproject(path):
    pins, _ = environment_pins(path)
    expected = {name: version for name, version in project_pins().items() if name not in SNAKEMAKE_SIDE}
    assert pins == expected


@pytest.mark.parametrize("path", ENVIRONMENTS, ids=lambda path: path.name)
def test_environment_python_allowed(path):
    _, python = environment_pins(path)
    requires = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]["requires-python"]
    assert python is not None, f"{path.name} pins no python"
    assert python in SpecifierSet(requires)


@pytest.mark.parametrize("path", ENVIRONMENTS, ids=lambda path: path.name)
def test_environment_channels(path):
    environment = yaml.safe_load(path.read_text())
    assert environment["channels"] == ["conda-forge", "nodefaults"]


def test_every_rule_environment_exists():
    rules = (REPOSITORY / "workflow" / "rules").glob("*.smk")
    named = {line.strip().strip('"') for rule in rules for line in rule.read_text().splitlines() if "../../envs/" in line}
    assert named == {f"../../envs/{path.name}" for path in ENVIRONMENTS}
