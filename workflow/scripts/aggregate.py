"""Snakemake adapter for rule aggregate: write the study tables."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the heterodiff package lives next to this folder

from heterodiff import runtime, steps

runtime.setup_logging(snakemake.log[0])
steps.aggregate_study(
    snakemake.input.specs,
    snakemake.input.evaluate_specs,
    snakemake.input.metrics,
    snakemake.input.train_logs,
    snakemake.output.runs,
    snakemake.output.metrics,
    snakemake.output.train_log,
)
