# Helpers only: config validation, run expansion and the input/params functions of the rules.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from snakemake.exceptions import WorkflowError

from heterodiff.config import ConfigError, expand, validate
from heterodiff.layout import EVALUATION_SECTIONS, STUDY_FIGURES, TRAINING_SECTIONS

try:
    config.update(validate(config))
    STUDIES = expand(config)
except ConfigError as error:
    raise WorkflowError(str(error)) from None


wildcard_constraints:
    study="|".join(STUDIES) or "no-study",
    run_id="[^/]+",
    data_id="[^/]+",


def get_run(wildcards):
    try:
        return STUDIES[wildcards.study].runs[wildcards.run_id]
    except KeyError:
        raise WorkflowError(
            f"run {wildcards.run_id!r} is not part of study {wildcards.study!r} in the current config"
        ) from None


def get_data_params(wildcards):
    return STUDIES[wildcards.study].data_params(wildcards.data_id)


def get_dataset(wildcards):
    run = get_run(wildcards)
    return f"results/{run.study}/datasets/{run.data_id}.npz"


def get_run_params(wildcards):
    """Return the run's identity and training parameters as plain values (the params rerun trigger).

    Evaluation and aggregation sections are left out, so changing them never retrains.
    """
    run = get_run(wildcards)
    return {
        "study": run.study,
        "run_id": run.run_id,
        "data_id": run.data_id,
        "seed": run.seed,
        "grid_axes": list(STUDIES[run.study].axes),
        "params": {key: run.params[key] for key in TRAINING_SECTIONS},
    }


def get_evaluate_params(wildcards):
    """Return the sections that the evaluation reads; changing any other key never re-evaluates."""
    params = get_run(wildcards).params
    return {key: params[key] for key in EVALUATION_SECTIONS}


def get_evaluate_section(wildcards):
    return get_run(wildcards).params["evaluate"]


def get_timescale_params(wildcards):
    """Return the timescales section of every run of a study, by run id."""
    runs = STUDIES[wildcards.study].runs
    return {run_id: run.params["timescales"] for run_id, run in runs.items()}


def get_run_files(name):
    """Return an input function listing one file per run of a study."""

    def run_files(wildcards):
        runs = STUDIES[wildcards.study].runs
        return [f"results/{wildcards.study}/runs/{run_id}/{name}" for run_id in runs]

    return run_files


def get_final_outputs():
    outputs = []
    for study in get_mixture_studies():
        outputs += [f"results/{study}/figures/{name}.png" for name in STUDY_FIGURES]
    return outputs
