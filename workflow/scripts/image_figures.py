"""Snakemake adapter for rule image_figures: draw the figures of an image study from its tables."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the heterodiff package lives next to this folder

from heterodiff import image_steps, runtime

runtime.setup_logging(snakemake.log[0])
image_steps.figures(snakemake.input.runs, snakemake.input.metrics, snakemake.input.train_log, dict(snakemake.output.items()))
