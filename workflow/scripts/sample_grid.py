"""Snakemake adapter for rule sample_grid: draw one run's samples beside their nearest training images."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the heterodiff package lives next to this folder

from heterodiff import image_steps, runtime

runtime.setup_logging(snakemake.log[0])
image_steps.sample_grid(
    snakemake.input.samples, snakemake.input.dataset, snakemake.params.evaluate, snakemake.wildcards.run_id, snakemake.output.grid
)
