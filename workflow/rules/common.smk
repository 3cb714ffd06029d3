# Helpers only: config validation, run expansion and the input/params functions of the rules.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from snakemake.exceptions import WorkflowError

from heterodiff.config import ConfigError, expand, validate

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

    The evaluate section is left out so that changing an evaluation key never retrains.
    """
    run = get_run(wildcards)
    return {
        "study": run.study,
        "run_id": run.run_id,
        "data_id": run.data_id,
        "seed": run.seed,
        "grid_axes": list(STUDIES[run.study].axes),
        "params": {
            key: value for key, value in run.params.items() if key != "evaluate"
        },
    }


def get_evaluate_params(wildcards):
    return get_run(wildcards).params["evaluate"]


def get_run_files(name):
    """Return an input function listing one file per run of a study."""

    def run_files(wildcards):
        runs = STUDIES[wildcards.study].runs
        return [f"results/{wildcards.study}/runs/{run_id}/{name}" for run_id in runs]

    return run_files


def get_final_outputs():
    outputs = []
    for study in get_mixture_studies():
        outputs += [
            f"results/{study}/figures/{name}.png"
            for name in ("memorisation", "class_share", "mean_error", "loss")
        ]
    return outputs
