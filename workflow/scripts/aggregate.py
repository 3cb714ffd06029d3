"""Snakemake adapter for rule aggregate: write the study tables."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the heterodiff package lives next to this folder

from heterodiff import runtime, steps

runtime.setup_logging(snakemake.log[0])
steps.aggregate_study(dict(snakemake.input.items()), dict(snakemake.output.items()), snakemake.params.timescales)
