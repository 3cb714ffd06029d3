"""Snakemake adapter for rule evaluate: sample and measure every checkpoint of one run."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the heterodiff package lives next to this folder

from heterodiff import runtime, steps

runtime.setup_logging(snakemake.log[0])
steps.evaluate(
    snakemake.params.sections,
    snakemake.wildcards.run_id,
    snakemake.input.dataset,
    snakemake.input.checkpoints,
    dict(snakemake.output.items()),
    snakemake.threads,
    classifier_model=snakemake.input.get("classifier") or None,  # image runs only
)
