"""Snakemake adapter for rule figures: draw the study figures from the tables."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the heterodiff package lives next to this folder

from heterodiff import runtime, steps

runtime.setup_logging(snakemake.log[0])
steps.figures(dict(snakemake.input.items()), dict(snakemake.output.items()))
