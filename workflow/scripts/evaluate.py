"""Snakemake adapter for rule evaluate: sample and measure every checkpoint of one run."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the heterodiff package lives next to this folder

from heterodiff import runtime, steps

runtime.setup_logging(snakemake.log[0])
steps.evaluate(
    snakemake.params.evaluate,
    snakemake.wildcards.run_id,
    snakemake.input.dataset,
    snakemake.input.checkpoints,
    snakemake.output.metrics,
    snakemake.output.samples,
    snakemake.output.spec,
    snakemake.threads,
    classifier_model=snakemake.input.get("classifier") or None,  # image runs only
)
