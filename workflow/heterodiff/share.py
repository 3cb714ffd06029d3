"""Check results copied from a collaborator against the current config, and mark them complete in Snakemake.

After a copy into a fresh clone, Snakemake cannot tell that the copied files are up to date. It reruns
a script rule whose outputs are older than its script, and a fresh clone has new scripts (Snakemake
9.27, `Job.outputs_older_than_script_or_notebook`). Without the metadata in .snakemake/ it also cannot
see a later change of parameters. Run from the repository root, with the same --configfile as the study:

    python -m heterodiff.share check-and-mark --configfile config/studies/my_study.yaml

Every run found under results/ is checked against its spec.yaml and evaluate.yaml, its dataset against
the configured data parameters, and its outputs for completeness. The runs that pass are then marked
with `snakemake --touch --forceall` on their targets, which sets their timestamps in workflow order and
records Snakemake's metadata, so a later change of the config reruns them as usual. Nothing is
recomputed. A run that does not match is reported and left alone, and the command exits with 1.
Study tables that do not cover exactly the configured runs (after merging two collaborators' results)
are deleted, so that Snakemake aggregates the union again.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from heterodiff.config import ConfigError, Run, Study, expand, validate
from heterodiff import images
from heterodiff.data import MixtureDataset, make_mixture
from heterodiff.layout import EVALUATE_OUTPUTS, EVALUATION_SECTIONS, STUDY_FIGURES, STUDY_TABLES, TRAIN_OUTPUTS, TRAINING_SECTIONS

DEFAULT_CONFIG = Path("config/config.yaml")
TABLES, FIGURES = STUDY_TABLES, STUDY_FIGURES
# Tables with rows for every run; copies and trajectories may rightly have none for some runs.
COVERING_TABLES = ("runs", "metrics", "train_log", "timescales", "tracking")


@dataclass
class Report:
    """The outcome of the checks: complete runs and studies, and the problems found."""

    complete_runs: list[Run] = field(default_factory=list)
    complete_studies: list[str] = field(default_factory=list)
    absent_runs: int = 0
    problems: list[str] = field(default_factory=list)
    stale_tables: list[Path] = field(default_factory=list)


def load_config(configfiles: list[Path]) -> dict:
    """Merge config/config.yaml and the given config files as Snakemake does, then validate."""
    # NOTE: snakemake's --config KEY=VALUE overrides are not read here; put them in a config file.
    from snakemake.utils import update_config

    config: dict = {}
    for path in [DEFAULT_CONFIG, *configfiles]:
        if not path.exists():
            raise ConfigError(f"config file {path} not found; run from the repository root")
        update_config(config, yaml.safe_load(path.read_text()) or {})
    return validate(config)


def _normalised(value):
    """Return a value as it reads back from spec.yaml, so that tuples and lists compare equal."""
    return yaml.safe_load(yaml.safe_dump(value, sort_keys=False))


def run_folder(results: Path, run: Run) -> Path:
    return results / run.study / "runs" / run.run_id


def dataset_path(results: Path, run: Run) -> Path:
    return results / run.study / "datasets" / f"{run.data_id}.npz"


class Checker:
    """Check copied runs against the config; datasets are regenerated once per data_id for comparison."""

    def __init__(self, results: Path):
        self.results = results
        self.expected_hashes: dict[tuple[str, str], str] = {}

    def expected_train_sha256(self, run: Run) -> str:
        key = (run.study, run.data_id)
        if key not in self.expected_hashes:
            data = run.params["data"]
            dataset = images.make_image_dataset(data) if data["kind"] == "images" else make_mixture(data)
            self.expected_hashes[key] = dataset.train_sha256()
        return self.expected_hashes[key]

    def check_run(self, run: Run) -> list[str]:
        """Return the problems of one copied run; an empty list means complete and matching the config."""
        folder = run_folder(self.results, run)
        missing = [name for name in (*TRAIN_OUTPUTS, *EVALUATE_OUTPUTS) if not (folder / name).exists()]
        if missing:
            return [f"{folder}: incomplete, missing {', '.join(missing)}"]

        problems = []
        spec = yaml.safe_load((folder / "spec.yaml").read_text()) or {}
        identity = {"study": run.study, "run_id": run.run_id, "data_id": run.data_id, "seed": run.seed}
        for key, expected in identity.items():
            if spec.get(key) != expected:
                problems.append(f"{folder}/spec.yaml: {key} is {spec.get(key)!r}, the config gives {expected!r}")
        expected_params = _normalised({key: run.params[key] for key in TRAINING_SECTIONS})
        problems += _compare(f"{folder}/spec.yaml params", spec.get("params"), expected_params)

        evaluate_spec = yaml.safe_load((folder / "evaluate.yaml").read_text()) or {}
        expected_evaluation = _normalised({key: run.params[key] for key in EVALUATION_SECTIONS})
        problems += _compare(f"{folder}/evaluate.yaml params", evaluate_spec.get("params"), expected_evaluation)

        problems += self._check_dataset(run, spec)
        problems += _check_outputs(folder, run, spec)
        return problems

    def _check_dataset(self, run: Run, spec: dict) -> list[str]:
        path = dataset_path(self.results, run)
        if not path.exists():
            return [f"{path}: missing; copy the datasets folder of the study too"]
        try:
            dataset_class = images.ImageDataset if run.params["data"]["kind"] == "images" else MixtureDataset
            copied = dataset_class.load(path).train_sha256()
        except ValueError as error:
            return [str(error)]
        expected = self.expected_train_sha256(run)
        problems = []
        if copied != expected:
            problems.append(f"{path}: training set differs from the one the configured data parameters draw")
        if spec.get("train_sha256") != copied:
            problems.append(f"{run_folder(self.results, run)}/spec.yaml: train_sha256 does not match {path}")
        return problems


def _compare(where: str, recorded, expected) -> list[str]:
    """Return one line per key whose recorded value differs from the configured one."""
    if not isinstance(recorded, dict) or not isinstance(expected, dict):
        return [] if recorded == expected else [f"{where}: {recorded!r} differs from the config's {expected!r}"]
    problems = []
    for key in sorted(set(recorded) | set(expected)):
        if recorded.get(key) != expected.get(key):
            problems += _compare(f"{where}.{key}", recorded.get(key), expected.get(key))
    return problems


def _check_outputs(folder: Path, run: Run, spec: dict) -> list[str]:
    """Check that the checkpoints named in spec.yaml exist and that the run's tables belong to it."""
    problems = []
    steps = spec.get("checkpoint_steps") or []
    if not steps:
        problems.append(f"{folder}/spec.yaml: no checkpoint_steps recorded")
    for step in steps:
        weights = folder / "checkpoints" / f"step_{step:09d}" / "model" / "diffusion_pytorch_model.safetensors"
        if not weights.exists():
            problems.append(f"{weights}: missing")
    for name in ("metrics.parquet", "train_log.parquet"):
        try:
            run_ids = set(pd.read_parquet(folder / name, columns=["run_id"])["run_id"])
        except (OSError, ValueError) as error:
            problems.append(f"{folder / name}: unreadable ({error})")
            continue
        if run_ids != {run.run_id}:
            problems.append(f"{folder / name}: rows of runs {sorted(run_ids)}, expected only {run.run_id}")
    return problems


def check(results: Path, studies: dict[str, Study]) -> Report:
    """Check every configured run that has files under results/, and every study's tables."""
    report = Report()
    checker = Checker(results)
    for name, study in studies.items():
        complete = []
        for run in study.runs.values():
            folder = run_folder(results, run)
            if not folder.exists():
                report.absent_runs += 1
                continue
            problems = checker.check_run(run)
            if problems:
                report.problems += problems
            else:
                complete.append(run)
        report.complete_runs += complete
        derived = [results / name / "tables" / f"{table}.parquet" for table in TABLES]
        derived += [results / name / "figures" / f"{figure}.png" for figure in FIGURES]
        if len(complete) == len(study.runs) and all(path.exists() for path in derived):
            report.complete_studies.append(name)
        report.stale_tables += _stale_tables(results / name, set(study.runs))
    return report


def _stale_tables(study_folder: Path, run_ids: set[str]) -> list[Path]:
    """Return the study's tables and figures when a table does not cover exactly the configured runs."""
    tables = study_folder / "tables"
    for name in COVERING_TABLES:
        path = tables / f"{name}.parquet"
        if not path.exists():
            continue
        try:
            covered = set(pd.read_parquet(path, columns=["run_id"])["run_id"])
        except (OSError, ValueError):
            covered = set()
        if covered != run_ids:
            derived = [tables / f"{table}.parquet" for table in TABLES]
            derived += [study_folder / "figures" / f"{figure}.png" for figure in FIGURES]
            return [path for path in derived if path.exists()]
    return []


def targets(report: Report) -> list[str]:
    """Return the files that `snakemake --touch` marks: every complete run, and the figures of complete studies."""
    files = [f"results/{run.study}/runs/{run.run_id}/{name}" for run in report.complete_runs for name in EVALUATE_OUTPUTS]
    # NOTE: image studies draw other figures (and one sample grid per run); they are redrawn, not marked.
    image_studies = {run.study for run in report.complete_runs if run.params["data"]["kind"] == "images"}
    mixture_studies = [study for study in report.complete_studies if study not in image_studies]
    files += [f"results/{study}/figures/{figure}.png" for study in mixture_studies for figure in FIGURES]
    return files


def mark(files: list[str], configfiles: list[Path]) -> None:
    """Touch the targets and their upstream outputs in workflow order and record Snakemake's metadata."""
    # Targets come first: --quiet and --configfile take any number of values.
    command = [sys.executable, "-m", "snakemake", *files, "--touch", "--forceall", "--cores", "1", "--quiet", "all"]
    if configfiles:
        command += ["--configfile", *map(str, configfiles)]
    subprocess.run(command, check=True)


def check_and_mark(configfiles: list[Path]) -> int:
    """Check the copied results and mark the matching runs complete; return the exit status."""
    try:
        studies = expand(load_config(configfiles))
    except ConfigError as error:
        print(f"invalid configuration: {error}", file=sys.stderr)
        return 2
    results = Path("results")
    report = check(results, studies)

    for problem in report.problems:
        print(f"not marked: {problem}", file=sys.stderr)
    for path in report.stale_tables:
        print(f"deleted {path}: it does not cover the configured runs, and Snakemake will rebuild it")
        path.unlink()

    # Tables are only marked with complete studies; a study whose tables were deleted is rebuilt instead.
    stale_studies = {path.parts[1] for path in report.stale_tables}
    report.complete_studies = [name for name in report.complete_studies if name not in stale_studies]
    files = targets(report)
    if files:
        mark(files, configfiles)
    print(
        f"{len(report.complete_runs)} runs checked and marked complete, {report.absent_runs} configured runs "
        f"not present, {len(report.problems)} problems"
    )
    if report.problems:
        print(
            "The runs listed above do not match the current config. Move them away, or use the config they were "
            "computed with; Snakemake will otherwise recompute them.",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m heterodiff.share", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check_command = commands.add_parser(
        "check-and-mark", help="check copied runs against their spec.yaml and the config; mark matching runs complete"
    )
    check_command.add_argument(
        "--configfile", nargs="+", type=Path, default=[], help="the study's config files, as passed to snakemake (after config/config.yaml)"
    )
    arguments = parser.parse_args(argv)
    return check_and_mark(arguments.configfile)


if __name__ == "__main__":
    sys.exit(main())
